"""MBPP's format (mbpp, its sanitized subset, evalplus/mbppplus, and sets made like them)."""

from __future__ import annotations

from codelutra_data.builders.tasks.adapters.base import Adapter, Row, SourceContext
from codelutra_data.records import Task


class Mbpp(Adapter):
    name = "mbpp"
    columns = ("task_id", "code", "test_list")  # and prompt or text
    key = ("test_list",)
    description = "MBPP: a described function, graded by its asserts (or by MBPP+'s `test` program)"

    def tasks(self, rows: list[Row], source: SourceContext) -> list[Task]:
        from codelutra_data.builders.tasks.python_sources import mbpp_task

        return [mbpp_task(r.data, r.where, source.name, r.data.get("split") or r.split) for r in rows]
