"""What every task format is: rows in, Tasks out."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from codelutra_data.records import Task


@dataclass(frozen=True)
class Row:
    where: str  # how an error names it: "tasks.jsonl:3" or "hf:org/name[test]#3"
    data: dict
    split: str | None  # the dataset split it came from; None: the row says (its `split` field) or the adapter decides


@dataclass(frozen=True)
class SourceContext:
    name: str  # the source's name, recorded in every task (`Task.source`)
    label: str  # how errors name the source
    file: Callable[[str], Path]  # a file the rows name by a relative path (a database)


class Adapter:
    """One task format: the columns that identify it and how its rows become Tasks."""

    name: str = ""
    domain: str = "python"
    columns: tuple[str, ...] = ()  # the fields it reads (what `--columns` may map)
    key: tuple[str, ...] = ()  # all present: rows of this format
    description: str = ""
    # Hub datasets of this format whose repository holds a loading script (which datasets >= 4 refuses): repo ->
    # the data files to read for a config
    script_repos: dict[str, Callable[[str | None], list[str]]] = {}

    def tasks(self, rows: list[Row], source: SourceContext) -> list[Task]:
        raise NotImplementedError
