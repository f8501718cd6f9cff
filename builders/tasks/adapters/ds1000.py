"""DS-1000's format (xlangai/DS-1000): a prompt, a reference and the problem's own test harness."""

from __future__ import annotations

from codelutra_data.builders.tasks.adapters.base import Adapter, Row, SourceContext
from codelutra_data.records import Task


class DS1000(Adapter):
    name = "ds1000"
    columns = ("prompt", "reference_code", "code_context")
    key = ("code_context",)
    description = "DS-1000: data-science code inserted into code_context, graded by its test_execution"

    def tasks(self, rows: list[Row], source: SourceContext) -> list[Task]:
        from codelutra_data.builders.tasks.python_sources import ds1000_task

        return [ds1000_task(r.data, r.where, i, r.split) for i, r in enumerate(rows)]
