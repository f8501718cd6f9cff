"""Our text-to-SQL task format: question, db (a .sqlite/.duckdb file, relative to the task set), gold."""

from __future__ import annotations

from codelutra_data.builders.tasks.adapters.base import Adapter, Row, SourceContext
from codelutra_data.records import Task


class SqlTasks(Adapter):
    name = "sql"
    domain = "sql"
    columns = ("question", "db", "gold")
    key = ("question", "db")
    description = "codelutra SQL tasks: question, db, gold (or query/sql); id, split, hint optional"

    def tasks(self, rows: list[Row], source: SourceContext) -> list[Task]:
        from codelutra_data.builders.tasks.sql_sources import load_sql_rows

        return load_sql_rows([(r.where, r.data, r.split) for r in rows], source.name, source.file)
