"""The SQL engines under the sandbox's rules: one read-only SELECT against a SQLite or DuckDB file, limited in CPU
time (from inside the engine: SQLite's progress handler, a DuckDB interrupt from a watcher thread), memory and
result size (counted as rows arrive, so a result is refused before it is held), with a status for anything but
rows. Runs inside the SQL sandbox's pool workers (see sql.py)."""

from __future__ import annotations

import os
import re
import sqlite3
import threading
import time
from dataclasses import dataclass
from functools import lru_cache
from urllib.parse import quote

from codelutra_data import duckdb_files
from codelutra_data.sandboxes.limits import DEFAULT_CPU_TIME_S, DEFAULT_WALL_TIME_S, check_time_limits

ENGINES = ("sqlite", "duckdb")
WORKER_BASE_MB = 1024
PYTHON_OBJECT_FACTOR = 8  # a result's Python objects against the bytes its values count for


@dataclass(frozen=True)
class SqlLimits:
    """Per-query limits; recorded in every Execution and in the dataset card."""

    cpu_time_s: float = DEFAULT_CPU_TIME_S
    wall_time_s: float = DEFAULT_WALL_TIME_S
    max_rows: int = 10_000
    max_bytes: int = 8 * 2**20
    memory_mb: int = 512

    def __post_init__(self):
        check_time_limits(self.cpu_time_s, self.wall_time_s)

    @property
    def worker_memory_mb(self) -> int:
        """A SQL worker's whole address space: the engine's own budget, the gold result (up to 4x max_bytes)
        as Python objects, and what the interpreter and DuckDB reserve before any query (about 750 MiB)."""
        return WORKER_BASE_MB + self.memory_mb + 4 * self.max_bytes * PYTHON_OBJECT_FACTOR // 2**20


class _Budget:
    """The time one query may take: `exceeded()` names the limit that ran out ("" while within both). CPU
    time is the worker process's own (it runs one query at a time)."""

    def __init__(self, limits: SqlLimits):
        self.limits = limits
        self.cpu_start = time.process_time()
        self.wall_end = time.monotonic() + limits.wall_time_s
        self.hit = ""

    def cpu_used(self) -> float:
        return time.process_time() - self.cpu_start

    def exceeded(self) -> str:
        if not self.hit:
            if self.cpu_used() > self.limits.cpu_time_s:
                self.hit = f"CPU time limit of {self.limits.cpu_time_s:g} s exceeded"
            elif time.monotonic() > self.wall_end:
                self.hit = f"wall-clock limit of {self.limits.wall_time_s:g} s exceeded"
        return self.hit


class QueryFailed(Exception):
    def __init__(self, status: str, message: str, line: int | None = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.line = line  # the engine's own line number, where it gives one (DuckDB)



# ---------------------------------------------------------------- SQLite
_SQLITE_ALLOWED = {sqlite3.SQLITE_SELECT, sqlite3.SQLITE_READ, sqlite3.SQLITE_FUNCTION, sqlite3.SQLITE_RECURSIVE}
_SQLITE_DENIED_FUNCTIONS = {"load_extension", "readfile", "writefile", "edit", "fts3_tokenizer"}
_SQLITE_ACTIONS = {getattr(sqlite3, n): n[7:].lower() for n in dir(sqlite3)
                   if n.startswith("SQLITE_") and isinstance(getattr(sqlite3, n), int) and n not in
                   ("SQLITE_OK", "SQLITE_DENY", "SQLITE_IGNORE")}


def _sqlite_authorizer(action, arg1, arg2, dbname, source):
    if action not in _SQLITE_ALLOWED:
        return sqlite3.SQLITE_DENY
    if action == sqlite3.SQLITE_FUNCTION and (arg2 or "").lower() in _SQLITE_DENIED_FUNCTIONS:
        return sqlite3.SQLITE_DENY
    return sqlite3.SQLITE_OK


def _sqlite_status(exc: Exception) -> str:
    msg = str(exc).lower()
    if "interrupted" in msg:
        return "timeout"
    if "out of memory" in msg:
        return "oom"
    if "syntax error" in msg or "incomplete input" in msg or "unrecognized token" in msg:
        return "syntax_error"
    return "runtime_error"


def _value_size(value) -> int:
    """What a value counts for in the result-size limit: its length for text and bytes (without copying it)."""
    if isinstance(value, (str, bytes, bytearray, memoryview)):
        return len(value) + 8
    if isinstance(value, (list, tuple)):
        return sum(_value_size(v) for v in value) + 8
    if isinstance(value, dict):
        return sum(_value_size(k) + _value_size(v) for k, v in value.items()) + 8
    return len(str(value)) + 8


def _fetch_bounded(cursor, limits: SqlLimits) -> list[tuple]:
    """The rows, counted as they arrive: each fetch asks only for as many rows as the room left can hold at
    the size seen so far, so a result of huge values is refused after its first too-big row, not a batch."""
    rows: list[tuple] = []
    size, batch = 0, 1
    while True:
        got = cursor.fetchmany(batch)
        if not got:
            return rows
        for row in got:
            rows.append(row)
            size += sum(_value_size(v) for v in row)
            if len(rows) > limits.max_rows:
                raise QueryFailed("runtime_error", f"result too large: more than {limits.max_rows} rows")
            if size > limits.max_bytes:
                raise QueryFailed("runtime_error", f"result too large: more than {limits.max_bytes} bytes")
        room = limits.max_bytes - size
        batch = int(max(1, min(512, 2 * len(rows), room // max(1, size // len(rows)))))


def _run_sqlite(db_path: str, sql: str, limits: SqlLimits) -> list[tuple]:
    con = sqlite3.connect(f"file:{quote(db_path)}?mode=ro", uri=True, check_same_thread=False)
    try:
        con.execute(f"PRAGMA hard_heap_limit={limits.memory_mb * 2**20}")
        con.set_authorizer(_sqlite_authorizer)
        budget = _Budget(limits)
        con.set_progress_handler(lambda: 1 if budget.exceeded() else 0, 2000)
        try:
            cursor = con.execute(sql)
            return _fetch_bounded(cursor, limits)
        except (sqlite3.Error, sqlite3.Warning) as exc:
            if budget.hit:
                raise QueryFailed("timeout", budget.hit) from None
            status = _sqlite_status(exc)
            message = str(exc)
            if "not authorized" in message.lower():
                message = "not authorized: only a single read-only SELECT may run"
            raise QueryFailed(status, message) from None
        except MemoryError:
            raise QueryFailed("oom", "out of memory") from None
    finally:
        con.close()


# ---------------------------------------------------------------- DuckDB
def _duckdb_status(exc: Exception) -> str:
    import duckdb

    if isinstance(exc, duckdb.InterruptException):
        return "timeout"
    if isinstance(exc, duckdb.OutOfMemoryException):
        return "oom"
    if isinstance(exc, duckdb.ParserException):
        return "syntax_error"
    return "runtime_error"


def _duckdb_failure(exc: Exception) -> QueryFailed:
    """The message up to DuckDB's blank line (error, then hints such as 'Did you mean'), and its LINE n."""
    text = str(exc).split("Traceback (most recent call last)")[0]  # a conversion that failed in Python
    head = text.split("\n\n")[0]
    line = re.search(r"^LINE (\d+):", text, re.M)
    return QueryFailed(_duckdb_status(exc), " ".join(p.strip() for p in head.splitlines() if p.strip()),
                       int(line.group(1)) if line else None)


def _run_duckdb(db_path: str, sql: str, limits: SqlLimits) -> list[tuple]:
    import duckdb

    try:
        con = duckdb_files.connect(db_path, enable_external_access=False, threads=1,
                                   memory_limit=f"{limits.memory_mb}MB")
    except duckdb.Error as exc:
        raise QueryFailed("sandbox_error", f"cannot open database: {duckdb_files.open_failure(db_path, exc)}") from None
    try:
        con.execute("SET TimeZone = 'UTC'")  # the same instants on every machine, whatever its local zone
        con.execute("SET lock_configuration = true")
    except duckdb.Error as exc:
        con.close()
        raise QueryFailed("sandbox_error", f"cannot configure the database: {exc}") from None
    budget, stop = _Budget(limits), threading.Event()

    def watch() -> None:
        while not stop.wait(0.01):
            if budget.exceeded():
                con.interrupt()
                return

    watcher = threading.Thread(target=watch, daemon=True)
    try:
        try:
            statements = con.extract_statements(sql)
        except duckdb.Error as exc:
            raise _duckdb_failure(exc) from None
        if len(statements) != 1:
            raise QueryFailed("runtime_error", f"expected exactly one statement, got {len(statements)}")
        if statements[0].type != duckdb.StatementType.SELECT:
            raise QueryFailed("runtime_error", "not authorized: only a single read-only SELECT may run")
        watcher.start()
        try:
            cursor = con.execute(sql)
            return _fetch_bounded(cursor, limits)
        except duckdb.Error as exc:
            if budget.hit:
                raise QueryFailed("timeout", budget.hit) from None
            raise _duckdb_failure(exc) from None
        except MemoryError:
            raise QueryFailed("oom", "out of memory") from None
    finally:
        stop.set()
        if watcher.is_alive():
            watcher.join()
        con.close()


def run_query(engine: str, db_path: str, sql: str, limits: SqlLimits) -> list[tuple]:
    """Run one query under the sandbox's rules; raise QueryFailed with a status for anything but rows."""
    if engine == "sqlite":
        return _run_sqlite(db_path, sql, limits)
    if engine == "duckdb":
        return _run_duckdb(db_path, sql, limits)
    raise ValueError(f"unknown SQL engine {engine!r}; expected one of {ENGINES}")


@lru_cache(maxsize=64)
def _table_columns(engine: str, db_path: str, mtime: float) -> dict[str, list[str]]:
    if engine == "sqlite":
        con = sqlite3.connect(f"file:{quote(db_path)}?mode=ro", uri=True)
        try:
            tables = [r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type IN ('table', 'view') "
                                                "AND name NOT LIKE 'sqlite_%' ORDER BY rowid")]
            return {t: [r[1] for r in con.execute(f'PRAGMA table_info("{t.replace(chr(34), chr(34) * 2)}")')]
                    for t in tables}
        finally:
            con.close()
    import duckdb

    try:
        con = duckdb_files.connect(db_path, enable_external_access=False)
    except duckdb.Error as exc:
        raise QueryFailed("sandbox_error", f"cannot open database: {duckdb_files.open_failure(db_path, exc)}") from None
    try:
        out: dict[str, list[str]] = {}
        for table, column in con.execute("SELECT table_name, column_name FROM information_schema.columns "
                                          "ORDER BY table_name, ordinal_position").fetchall():
            out.setdefault(table, []).append(column)
        return out
    finally:
        con.close()


def table_columns(engine: str, db_path: str) -> dict[str, list[str]]:
    """Tables (and views) of a database with their columns, in schema order: the names that do exist, for
    feedback on a query that used one that does not."""
    return _table_columns(engine, db_path, os.stat(db_path).st_mtime)


