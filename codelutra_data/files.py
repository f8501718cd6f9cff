"""Files written whole or not at all, and JSONL read with line-numbered errors."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
from pathlib import Path
from typing import Iterator

from codelutra_data.errors import UserError


def partial_name(path: Path) -> Path:
    """Where `path` is written before it is renamed into place (a reader never sees it half-written)."""
    return path.with_name(f".{path.name}.partial-{os.getpid()}")


def atomic_write(path: str | Path, data: str | bytes) -> Path:
    """Write a file under a temporary name in its folder, then rename it over `path`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = partial_name(path)
    try:
        if isinstance(data, bytes):
            tmp.write_bytes(data)
        else:
            tmp.write_text(data, encoding="utf-8")
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


@contextlib.contextmanager
def atomic_directory(path: str | Path) -> Iterator[Path]:
    """A folder filled under a temporary name and renamed to `path` when the block ends without error; on any
    error (or a kill) no folder appears at `path`. `path` must not exist, unless as an empty folder."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = partial_name(path)
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        yield tmp
        if path.is_dir() and not any(path.iterdir()):
            path.rmdir()
        os.rename(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def read_jsonl(path: str | Path) -> list[tuple[int, dict]]:
    """(line number, object) for every non-blank line; a line that is not a JSON object is one clear error."""
    path = Path(path)
    rows = []
    with path.open(encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                item = json.loads(line)
            except json.JSONDecodeError as exc:
                raise UserError(f"{path}:{lineno}: not valid JSON ({exc.msg})") from None
            if not isinstance(item, dict):
                raise UserError(f"{path}:{lineno}: expected a JSON object")
            rows.append((lineno, item))
    return rows
