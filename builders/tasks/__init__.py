"""Task sources. A source spec is a registered name (`spider-dev`), a Spider/BIRD-layout folder, or a JSONL
file; `load_tasks` turns any of them into Task records."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from codelutra_data.errors import UserError
from codelutra_data.records import Task


@dataclass(frozen=True)
class SourceInfo:
    name: str
    domain: str
    description: str
    license: str
    loader: Callable[[], list[Task]]


def _registry() -> dict[str, SourceInfo]:
    from codelutra_data.builders.tasks import sql_sources as sql

    return {
        "spider-dev": SourceInfo("spider-dev", "sql", "Spider 1.0 dev: 1034 questions over 20 SQLite databases "
                                 "(bundled; split by database into train/test)", sql.SPIDER_LICENSE,
                                 sql.load_spider_dev),
    }


def registered() -> dict[str, SourceInfo]:
    return _registry()


def load_tasks(spec: str, split: str = "all", limit: int | None = None) -> list[Task]:
    """Tasks of a source, filtered by split ('all' keeps every split) and cut to `limit` in source order."""
    from codelutra_data.builders.tasks import sql_sources as sql

    sources = _registry()
    path = Path(spec).expanduser()
    if spec in sources:
        tasks = sources[spec].loader()
    elif path.is_dir():
        tasks = sql.load_spider_folder(path)
    elif path.is_file() and path.suffix == ".jsonl":
        tasks = sql.load_sql_jsonl(path)
    elif path.suffix == ".jsonl":
        raise UserError(f"task file not found: {spec}")
    else:
        raise UserError(f"unknown task source {spec!r}: use one of {', '.join(sorted(sources))}, "
                        f"a Spider/BIRD folder, or a .jsonl file")
    if split != "all":
        splits = sorted({t.split for t in tasks})
        tasks = [t for t in tasks if t.split == split]
        if not tasks:
            raise UserError(f"source {spec!r} has no tasks in split {split!r} (splits: {', '.join(splits)})")
    return tasks[:limit] if limit else tasks


def source_license(spec: str) -> str:
    sources = _registry()
    return sources[spec].license if spec in sources else "user-provided (see the source's own licence)"


def bundled_summary(name: str) -> dict:
    """Facts recorded when the bundled data was converted (e.g. databases whose gold results are empty)."""
    from codelutra_data.builders.tasks.sql_sources import BUNDLED_SPIDER

    if name != "spider-dev":
        return {}
    return json.loads((BUNDLED_SPIDER / "summary.json").read_text(encoding="utf-8"))
