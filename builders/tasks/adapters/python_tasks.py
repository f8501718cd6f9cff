"""Our Python task format: prompt (text or chat), tests (asserts or test code), reference."""

from __future__ import annotations

from codelutra_data.builders.tasks.adapters.base import Adapter, Row, SourceContext
from codelutra_data.records import Task


class PythonTasks(Adapter):
    name = "python"
    columns = ("prompt", "tests", "reference")
    key = ("tests",)
    description = "codelutra Python tasks: prompt, tests, reference (entry_point, setup, imports, split optional)"

    def tasks(self, rows: list[Row], source: SourceContext) -> list[Task]:
        from codelutra_data.builders.tasks.python_sources import python_jsonl_task

        return [python_jsonl_task(r.data, r.where, source.name, _index(r, i), r.split) for i, r in enumerate(rows)]


def _index(row: Row, i: int) -> int:
    """A JSONL row's default id counts lines (`file/3` is line 3); a dataset's counts rows."""
    line = row.where.rpartition(":")[2]
    return int(line) - 1 if line.isdigit() else i
