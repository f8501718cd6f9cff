"""HumanEval's format (openai_humaneval, evalplus/humanevalplus, and sets made like them)."""

from __future__ import annotations

from codelutra_data.builders.tasks.adapters.base import Adapter, Row, SourceContext
from codelutra_data.records import Task


class HumanEval(Adapter):
    name = "humaneval"
    columns = ("task_id", "prompt", "canonical_solution", "test", "entry_point")
    key = ("canonical_solution", "entry_point", "test")
    description = "HumanEval: a function to complete, graded by test code with check(candidate)"

    def tasks(self, rows: list[Row], source: SourceContext) -> list[Task]:
        from codelutra_data.builders.tasks.python_sources import humaneval_task

        return [humaneval_task(r.data, r.where, source.name, r.data.get("split") or r.split or "test") for r in rows]
