"""Task formats. A task set's rows (from a JSONL file or a Hub dataset) are turned into Tasks by the adapter of
their format (one module each): recognised from the first row's columns (the first adapter whose key columns are
all there), or named with `--format` (then every field it reads must be there); `--columns FIELD=COLUMN,...` maps
a user's own column names onto an adapter's fields."""

from __future__ import annotations

from codelutra_data.builders.tasks.adapters.base import Adapter, Row, SourceContext
from codelutra_data.config import Settings, setting, settings
from codelutra_data.errors import UserError
from codelutra_data.records import Task


def adapters() -> dict[str, Adapter]:
    """Registered formats, most specific first (recognition takes the first match)."""
    from codelutra_data.builders.tasks.adapters import (bigcodebench, ds1000, evalplus, humaneval, livecodebench,
                                                        mbpp, python_tasks, sql_tasks)

    found = [livecodebench.LiveCodeBench(), bigcodebench.BigCodeBench(), ds1000.DS1000(), humaneval.HumanEval(), mbpp.Mbpp(),
             python_tasks.PythonTasks(), sql_tasks.SqlTasks(),
             evalplus.EvalPlus()]
    return {a.name: a for a in found}


FORMAT_NAMES = ("auto", "bigcodebench", "ds1000", "evalplus", "humaneval", "livecodebench", "mbpp", "python", "sql")


@settings(frozen=True)
class TaskFormatSettings(Settings):
    """How a task set's rows are read (JSONL files and Hub datasets)."""

    format: str = setting("auto", "Task format: auto (recognised from the columns), bigcodebench, ds1000, evalplus (HumanEval+ "
                          "and MBPP+ graded by EvalPlus's rules, one test per input), humaneval, livecodebench, mbpp, python "
                          "(prompt, tests, reference) or sql (question, db, gold).", choices=FORMAT_NAMES)
    columns: str = setting("", "Map your column names onto the format's fields: FIELD=COLUMN,... (e.g. "
                           "prompt=question,tests=asserts).", shown="")

    def check(self) -> None:
        parse_columns(self.columns)

    def mapping(self) -> dict[str, str]:
        return parse_columns(self.columns)


def parse_columns(text: str) -> dict[str, str]:
    mapping: dict[str, str] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        field, eq, column = (s.strip() for s in part.partition("="))
        if not eq or not field or not column:
            raise UserError(f"--columns takes FIELD=COLUMN pairs separated by commas, got {part!r}")
        if field in mapping:
            raise UserError(f"--columns maps {field!r} twice")
        mapping[field] = column
    return mapping


def _renamed(rows: list[Row], mapping: dict[str, str], label: str) -> list[Row]:
    if not mapping or not rows:
        return rows
    have = set(rows[0].data)
    missing = sorted(c for c in mapping.values() if c not in have)
    if missing:
        raise UserError(f"{label}: --columns names column(s) {', '.join(missing)} that the data does not have "
                        f"(columns: {', '.join(sorted(have))})")
    return [Row(r.where, {**r.data, **{f: r.data.get(c) for f, c in mapping.items()}}, r.split) for r in rows]


def to_tasks(rows: list[Row], source: SourceContext, fmt: TaskFormatSettings | None = None) -> list[Task]:
    """Rows of one task set as Tasks, by their (recognised or named) format."""
    fmt = fmt or TaskFormatSettings()
    if not rows:
        raise UserError(f"{source.label}: no tasks in it")
    rows = _renamed(rows, fmt.mapping(), source.label)
    registry = adapters()
    have = set(rows[0].data)
    if fmt.format != "auto":
        adapter = registry[fmt.format]
        missing = [c for c in adapter.columns if c not in have]
        if missing:
            raise UserError(f"{source.label}: format {adapter.name} needs column(s) {', '.join(missing)} (columns: "
                            f"{', '.join(sorted(have))}); map yours with --columns "
                            + ",".join(f"{c}=YOUR_COLUMN" for c in missing))
    else:
        adapter = next((a for a in registry.values() if a.key and all(c in have for c in a.key)), None)
        if adapter is None:
            raise UserError(f"{source.label}: unknown task layout (columns: {', '.join(sorted(have)) or 'none'}); "
                            f"name its format with --format ({', '.join(registry)}) and map columns with "
                            f"--columns FIELD=COLUMN")
    tasks = adapter.tasks(rows, source)
    ids = [(t.split, t.task_id) for t in tasks]  # BigCodeBench: one id in split complete and in split instruct
    if len(set(ids)) != len(ids):
        dup = next(i for i in ids if ids.count(i) > 1)[1]
        raise UserError(f"{source.label}: duplicate task id {dup!r}")
    return tasks
