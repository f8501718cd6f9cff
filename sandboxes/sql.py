"""The SQL sandbox: run model-written queries against SQLite or DuckDB files, read-only and under limits.

Isolation is layered: the database is opened read-only; SQLite gets an authorizer that allows reading and
nothing else (no ATTACH, writes, PRAGMA, extension loading); DuckDB gets read-only mode, external access off,
locked configuration, a memory limit and one thread; only a single SELECT statement runs. A query is limited
by the CPU time it consumes (so a verdict does not change with the machine's load), with a wall-clock
backstop; both fire from inside the engine (SQLite progress handler, DuckDB interrupt from a watcher thread)
and, should a query ever ignore them, from outside: queries run in pool workers killed at a hard deadline.
"""

from __future__ import annotations

import os
import re
import sqlite3
import threading
import time
from dataclasses import asdict, dataclass
from functools import lru_cache
from typing import Iterator, Sequence
from urllib.parse import quote

from codelutra_data import duckdb_files
from codelutra_data.records import Execution
from codelutra_data.sandboxes.base import Sandbox
from codelutra_data.sandboxes.limits import (DEFAULT_CPU_TIME_S, DEFAULT_WALL_TIME_S, REFERENCE_CPU_FACTOR,
                                             check_time_limits)
from codelutra_data.sandboxes.compare import MODES, describe_difference, order_matters, prepare_query, results_equal
from codelutra_data.sandboxes.pool import HardTimeout, WorkerPool

ENGINES = ("sqlite", "duckdb")
FEEDBACK_LIMIT = 600


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


@dataclass(frozen=True)
class SqlJob:
    """One candidate query for one task. The gold query is run once per (engine, db, gold, mode) per worker."""

    key: str
    engine: str
    db_path: str
    gold: str
    candidate: str | None  # None means extraction found no code
    mode: str = "spider"


class QueryFailed(Exception):
    def __init__(self, status: str, message: str, line: int | None = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.line = line  # the engine's own line number, where it gives one (DuckDB)


_NAMED = [re.compile(p, re.I) for p in (
    r"no such (?:column|table|function): ([\w.$]+)", r"ambiguous column name: ([\w.$]+)",
    r'near "([^"]+)": syntax error', r'column "([^"]+)" not found', r"Table with name (\S+) does not exist",
    r"Function with name (\w+) does not exist", r'at or near "([^"]+)"', r"misuse of (?:aggregate|window function):? (\w+)")]


def offending_line(sql: str, message: str, engine_line: int | None = None) -> int | None:
    """The 1-based line of the candidate query that the engine's message points at: the line the engine
    names, else the first line that contains the name in the message (a missing column, table, function or
    the token a syntax error stopped at)."""
    lines = sql.splitlines()
    if engine_line and 1 <= engine_line <= len(lines):
        return engine_line
    for pattern in _NAMED:
        match = pattern.search(message)
        if not match:
            continue
        name = match.group(1)
        for needle in dict.fromkeys((name, name.split(".")[-1])):
            word = re.compile(rf"(?<![\w$]){re.escape(needle)}(?![\w$])", re.I)
            for number, text in enumerate(lines, 1):
                if word.search(text):
                    return number
    return None


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


def _fetch_bounded(cursor, limits: SqlLimits) -> list[tuple]:
    rows: list[tuple] = []
    size = 0
    while True:
        batch = cursor.fetchmany(512)
        if not batch:
            return rows
        rows.extend(batch)
        if len(rows) > limits.max_rows:
            raise QueryFailed("runtime_error", f"result too large: more than {limits.max_rows} rows")
        size += sum(len(str(v)) + 8 for row in batch for v in row)
        if size > limits.max_bytes:
            raise QueryFailed("runtime_error", f"result too large: more than {limits.max_bytes} bytes")


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


# ---------------------------------------------------------------- judging (runs inside pool workers)
@lru_cache(maxsize=512)
def _gold_rows(engine: str, db_path: str, gold: str, mode: str, limits: SqlLimits, mtime: float):
    gold_limits = SqlLimits(limits.cpu_time_s * REFERENCE_CPU_FACTOR, limits.wall_time_s * REFERENCE_CPU_FACTOR,
                            limits.max_rows * 10, limits.max_bytes * 4, limits.memory_mb)
    return run_query(engine, db_path, prepare_query(gold, mode), gold_limits)


def judge(job: SqlJob, limits: SqlLimits) -> dict:
    """Execute one candidate and compare with the gold result; always returns an Execution as a dict."""
    start, cpu = time.monotonic(), [0.0]

    def verdict(status: str, feedback: str = "", error: str = "", line: int | None = None) -> dict:
        passed = status == "passed"
        return Execution(sample_id=job.key, status=status, tests_passed=int(passed), tests_total=1,
                         feedback=feedback[:FEEDBACK_LIMIT], error_lines=[line] if line else [],
                         duration_s=round(time.monotonic() - start, 6), sandbox=job.engine,
                         limits=asdict(limits), compare_mode=job.mode, error=error[:300],
                         cpu_s=round(cpu[0], 6)).to_dict()

    if job.candidate is None or not job.candidate.strip():
        return verdict("no_code", "no SQL query found in the answer")
    try:
        mtime = os.stat(job.db_path).st_mtime
        gold = _gold_rows(job.engine, job.db_path, job.gold, job.mode, limits, mtime)
    except QueryFailed as exc:
        return verdict("sandbox_error", f"the reference query failed ({exc.status}): {exc.message}")
    except OSError as exc:
        return verdict("sandbox_error", f"cannot open database: {exc}")
    cpu_start = time.process_time()
    try:
        rows = run_query(job.engine, job.db_path, prepare_query(job.candidate, job.mode), limits)
        cpu[0] = time.process_time() - cpu_start
    except QueryFailed as exc:
        cpu[0] = time.process_time() - cpu_start
        line = offending_line(job.candidate, exc.message, exc.line) if exc.status != "timeout" else None
        return verdict(exc.status, exc.message, exc.message, line)
    if results_equal(gold, rows, job.mode, order_matters(job.gold, job.mode)):
        return verdict("passed")
    return verdict("wrong_answer", describe_difference(gold, rows, FEEDBACK_LIMIT))


def judge_unit(unit: tuple[list[SqlJob], SqlLimits]) -> list[dict]:
    """Pool entry point: a unit is the jobs of one task, so the gold query runs once for all of them."""
    jobs, limits = unit
    return [judge(job, limits) for job in jobs]


class SqlSandbox(Sandbox):
    """`run_iter(jobs)` through a bounded pool of worker processes. Never raises for a bad query."""

    name = "sql"

    def __init__(self, limits: SqlLimits | None = None, workers: int | None = None):
        self.limits = limits or SqlLimits()
        self.workers = workers or max(1, min(4, os.cpu_count() or 1))
        self._pool: WorkerPool | None = None

    def _units(self, jobs: Sequence[SqlJob]) -> list[list[int]]:
        """Job indices grouped by task (engine, database, gold query, mode): a unit runs the gold query once."""
        groups: dict[tuple, list[int]] = {}
        for index, job in enumerate(jobs):
            if job.engine not in ENGINES:
                raise ValueError(f"unknown SQL engine {job.engine!r}; expected one of {ENGINES}")
            if job.mode not in MODES:
                raise ValueError(f"unknown comparison mode {job.mode!r}; expected one of {MODES}")
            groups.setdefault((job.engine, job.db_path, job.gold, job.mode), []).append(index)
        return list(groups.values())

    def run_iter(self, jobs: Sequence[SqlJob]) -> Iterator[tuple[int, Execution]]:
        if self._pool is None:
            self._pool = WorkerPool("codelutra_data.sandboxes.sql:judge_unit", workers=self.workers)
        groups = self._units(jobs)
        units = [([jobs[i] for i in group], self.limits) for group in groups]
        outer = lambda unit: 10.0 + self.limits.wall_time_s * (4 + len(unit[0]))  # noqa: E731
        broken: list[int] = []
        for u, result in self._pool.map(units, outer):
            if isinstance(result, list):
                yield from ((i, Execution.from_dict(r)) for i, r in zip(groups[u], result))
            else:
                broken.extend(groups[u])
        # A unit the pool had to kill is rerun one job at a time, so one hostile query cannot fail its siblings.
        retry = [([jobs[i]], self.limits) for i in broken]
        for u, result in (self._pool.map(retry, outer) if retry else ()):
            if isinstance(result, list):
                yield broken[u], Execution.from_dict(result[0])
                continue
            job = jobs[broken[u]]
            status = "timeout" if isinstance(result, HardTimeout) else "sandbox_error"
            yield broken[u], Execution(sample_id=job.key, status=status, tests_passed=0, tests_total=1,
                                       feedback=str(result)[:FEEDBACK_LIMIT], error_lines=[], duration_s=0.0,
                                       sandbox=job.engine, limits=asdict(self.limits), compare_mode=job.mode)

    def close(self) -> None:
        if self._pool is not None:
            self._pool.close()
            self._pool = None
