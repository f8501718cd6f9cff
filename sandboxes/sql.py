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
import time
from dataclasses import asdict, dataclass
from functools import lru_cache
from typing import Iterator, Sequence

from codelutra_data.machine import bounded_workers
from codelutra_data.records import Execution
from codelutra_data.sandboxes.address_space import check_sql_workers
from codelutra_data.sandboxes.base import Sandbox
from codelutra_data.sandboxes.compare import MODES, describe_difference, order_matters, prepare_query, results_equal
from codelutra_data.sandboxes.limits import REFERENCE_CPU_FACTOR
from codelutra_data.sandboxes.pool import HardTimeout, WorkerPool
from codelutra_data.sandboxes.sql_engines import ENGINES, QueryFailed, SqlLimits, run_query, table_columns

__all__ = ["ENGINES", "QueryFailed", "SqlJob", "SqlLimits", "SqlSandbox", "judge", "offending_line", "run_query",
           "table_columns"]

FEEDBACK_LIMIT = 600


@dataclass(frozen=True)
class SqlJob:
    """One candidate query for one task. The gold query is run once per (engine, db, gold, mode) per worker."""

    key: str
    engine: str
    db_path: str
    gold: str
    candidate: str | None  # None means extraction found no code
    mode: str = "spider"


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
        self.workers = bounded_workers(workers)
        check_sql_workers(self.limits.worker_memory_mb)
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
            self._pool = WorkerPool("codelutra_data.sandboxes.sql:judge_unit", workers=self.workers,
                                    memory_mb=self.limits.worker_memory_mb)
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
