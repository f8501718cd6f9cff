"""Every DuckDB connection the tool opens comes from here, so that no input can make it reach the network.

DuckDB installs and loads extensions on demand by default: a SQLite file named `.duckdb` makes it download the
sqlite scanner. Offline must mean offline, so extensions are never installed or loaded behind our back, and a
file that is not what its name says gets one clear line instead of DuckDB's advice to `INSTALL sqlite`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

OFFLINE = {"autoinstall_known_extensions": False, "autoload_known_extensions": False,
           "allow_community_extensions": False}
SQLITE_MAGIC = b"SQLite format 3\x00"


def connect(path: str | Path, read_only: bool = True, **config: Any):
    """A connection with extensions off; `config` adds DuckDB settings (never turning them back on)."""
    import duckdb

    return duckdb.connect(str(path), read_only=read_only, config={**config, **OFFLINE})


def is_sqlite(path: str | Path) -> bool:
    try:
        with open(path, "rb") as f:
            return f.read(len(SQLITE_MAGIC)) == SQLITE_MAGIC
    except OSError:
        return False


def open_failure(path: str | Path, exc: BaseException) -> str:
    """Why a DuckDB file could not be opened, in one line."""
    if is_sqlite(path):
        return f"{path} is a SQLite database, not a DuckDB one: name it .sqlite (or .db)"
    lines = [line for line in str(exc).splitlines() if line.strip()]
    return lines[0] if lines else type(exc).__name__
