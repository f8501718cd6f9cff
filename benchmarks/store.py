"""The results store: one DuckDB file every eval appends to and the leaderboard reads. Plain tables, so users
query it with `duckdb results/results.duckdb "SELECT ..."`. Rerunning a configuration replaces its rows.

A kill at any instant leaves the store as it was or as it should be: it is created under a partial name and
linked into place, rows change in one transaction, and an eval that finds it locked by another waits (bounded)."""

from __future__ import annotations

import os
import re
import sys
import time
from pathlib import Path

from codelutra_data import duckdb_files
from codelutra_data.errors import UserError
from codelutra_data.files import partial_name, partial_of, remove, stale_partials, writable_destination

DEFAULT_STORE = "results/results.duckdb"

# One row per (run configuration, metric): a run with --k 1,5,10 gives three rows.
COLUMNS = {
    "config_hash": "VARCHAR",
    "metric": "VARCHAR",
    "value": "DOUBLE",
    "ci_low": "DOUBLE",
    "ci_high": "DOUBLE",
    "n": "INTEGER",
    "k": "INTEGER",
    "tasks": "INTEGER",
    "suite": "VARCHAR",
    "split": "VARCHAR",
    "suite_version": "VARCHAR",
    "suite_hash": "VARCHAR",
    "compare_mode": "VARCHAR",
    "model": "VARCHAR",
    "model_revision": "VARCHAR",
    "model_path": "VARCHAR",
    "base_model": "VARCHAR",
    "dataset": "VARCHAR",
    "dataset_version": "VARCHAR",
    "method": "VARCHAR",
    "source": "VARCHAR",  # model | samples | predictions
    "temperature": "DOUBLE",
    "reference_pass_rate": "DOUBLE",
    "references_override": "BOOLEAN",
    "cpu_time_s": "DOUBLE",
    "wall_time_s": "DOUBLE",
    "date": "TIMESTAMP",
    "machine": "VARCHAR",
    "tool_version": "VARCHAR",
    "config": "VARCHAR",  # the run's full configuration as JSON text
    "results_file": "VARCHAR",
}


LOCK_WAIT_S = 120.0
_LOCK = re.compile(r"Conflicting lock is held in (?P<program>.*?) \(PID (?P<pid>\d+)\)")


def _holder(exc: Exception) -> str | None:
    """Who holds the store's lock, from DuckDB's message; None when the error is not a lock conflict."""
    match = _LOCK.search(str(exc))
    if match:
        return f"process {match['pid']} ({Path(match['program']).name})"
    return "another process" if "could not set lock" in str(exc).lower() else None


def _connect(path: Path, read_only: bool = False, wait_s: float = LOCK_WAIT_S):
    """Open the store, waiting (up to `wait_s`, saying so once) while another process holds it."""
    import duckdb

    deadline, told = time.monotonic() + wait_s, False
    while True:
        try:
            return duckdb_files.connect(path, read_only=read_only)
        except duckdb.Error as exc:
            holder = _holder(exc)
            if holder is None:
                raise UserError(f"cannot open the results store {path}: {duckdb_files.open_failure(path, exc)}") from None
            if time.monotonic() >= deadline:
                raise UserError(f"the results store {path} is in use by {holder}; waited {wait_s:g} s. Try again "
                                f"when it has finished (or give --store-wait more seconds, or another --store)") from None
            if not told:
                print(f"waiting up to {wait_s:g} s for the results store {path}, in use by {holder}", file=sys.stderr)
                told = True
            time.sleep(0.25)


def _settle(path: Path) -> None:
    """Clear what a killed run left: partial stores whose creator is gone, and an empty file under the real
    name (older versions created the store in place; an empty file is never a store, so nothing is lost)."""
    for leftover in stale_partials(path.parent):
        if partial_of(leftover)[0] in (path.name, path.name + ".wal"):
            remove(leftover)
    if path.is_file() and path.stat().st_size == 0:
        print(f"note: replacing {path}, an empty file left by an interrupted run", file=sys.stderr)
        path.unlink()


def _create(path: Path) -> None:
    """Make the store under a partial name and link it into place: the real name never holds a half-made file."""
    tmp = partial_name(path)
    for leftover in (tmp, tmp.with_name(tmp.name + ".wal")):
        leftover.unlink(missing_ok=True)
    try:
        con = duckdb_files.connect(tmp, read_only=False)
        try:
            columns = ", ".join(f"{name} {kind}" for name, kind in COLUMNS.items())
            con.execute(f"CREATE TABLE results ({columns}, PRIMARY KEY (config_hash, metric))")
            con.execute("CHECKPOINT")
        finally:
            con.close()
        try:
            os.link(tmp, path)
        except FileExistsError:  # another eval made it first: use theirs
            pass
    finally:
        for leftover in (tmp, tmp.with_name(tmp.name + ".wal")):
            leftover.unlink(missing_ok=True)


def check_store(path: str | Path) -> Path:
    """Before any grading: the store can be written (a missing one created, an empty leftover replaced)."""
    path = writable_destination(path, "the results store")
    if path.is_file() and path.stat().st_size > 0:
        import duckdb

        try:
            duckdb_files.connect(path, read_only=True).close()
        except duckdb.Error as exc:
            if _holder(exc) is None:
                raise UserError(f"cannot open the results store {path}: {duckdb_files.open_failure(path, exc)}") from None
    return path


def write_rows(path: str | Path, rows: list[dict], wait_s: float = LOCK_WAIT_S) -> None:
    """Replace the rows of these runs' configurations in one transaction: never duplicated, never half."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    _settle(path)
    if not path.exists():
        _create(path)
    con = _connect(path, wait_s=wait_s)
    try:
        con.execute("BEGIN TRANSACTION")
        for config_hash in sorted({r["config_hash"] for r in rows}):
            con.execute("DELETE FROM results WHERE config_hash = ?", [config_hash])
        names = list(COLUMNS)
        con.executemany(f"INSERT INTO results ({', '.join(names)}) VALUES ({', '.join('?' * len(names))})",
                        [[row.get(n) for n in names] for row in rows])
        con.execute("COMMIT")
    except BaseException:
        try:
            con.execute("ROLLBACK")
        except Exception:  # noqa: BLE001 - nothing open to roll back
            pass
        raise
    finally:
        con.close()


def recorded(path: str | Path, config_hash: str, date) -> bool:
    """Whether the store holds the run of `config_hash` made at `date` (how a killed commit is finished)."""
    path = Path(path)
    if not path.is_file() or path.stat().st_size == 0:
        return False
    con = _connect(path, read_only=True)
    try:
        return bool(con.execute("SELECT count(*) FROM results WHERE config_hash = ? AND date = ?",
                                [config_hash, date]).fetchone()[0])
    finally:
        con.close()


def read_rows(path: str | Path, suite: str | None = None) -> list[dict]:
    path = Path(path)
    if not path.exists() or (path.is_file() and path.stat().st_size == 0):
        raise UserError(f"no results store at {path}: run `codelutra-data eval` first (or pass --store)")
    con = _connect(path, read_only=True)
    try:
        query = "SELECT * FROM results" + (" WHERE suite = ?" if suite else "") + " ORDER BY suite, metric, value DESC"
        cursor = con.execute(query, [suite] if suite else [])
        names = [d[0] for d in cursor.description]
        return [dict(zip(names, row)) for row in cursor.fetchall()]
    finally:
        con.close()
