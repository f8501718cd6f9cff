"""The sandbox settings (one group, shared by build, eval, refine and doctor), the one place that turns a task
and a program into a sandbox job whatever its language, and the sandbox for a domain."""

from __future__ import annotations

import sys

from codelutra_data.config import Settings, setting, settings
from codelutra_data.errors import UserError
from codelutra_data.machine import WORKERS_PER_CPU, bounded_workers
from codelutra_data.records import Task
from codelutra_data.sandboxes.base import Sandbox
from codelutra_data.sandboxes.compare import MODES
from codelutra_data.sandboxes.interpreter import probe
from codelutra_data.sandboxes.isolation import ISOLATIONS
from codelutra_data.sandboxes.limits import DEFAULT_CPU_TIME_S, DEFAULT_WALL_TIME_S, MAX_TIME_S, check_time_limits
from codelutra_data.sandboxes.python import PyJob, PythonLimits, PythonSandbox
from codelutra_data.sandboxes.sql import SqlJob, SqlLimits, SqlSandbox

MIN_MEMORY_MB, MAX_MEMORY_MB = 64, 1024 * 1024  # a Python program's address space: enough to start, at most 1 TiB


@settings(frozen=True)
class SandboxSettings(Settings):
    """How model-written programs are run and judged."""

    cpu_time_s: float = setting(DEFAULT_CPU_TIME_S, "Per-program CPU time limit in seconds; load on the machine does "
                                "not change it (Python: up to 10x the reference's CPU time).",
                                flags=("--cpu-time", "--timeout"), above=0, at_most=MAX_TIME_S)
    wall_time_s: float = setting(DEFAULT_WALL_TIME_S, "Wall-clock backstop per program for code that sleeps or blocks.",
                                 flags=("--wall-time",), above=0, at_most=MAX_TIME_S)
    max_rows: int = setting(10_000, "SQL: most rows a query's result may have.", at_least=1)
    workers: int = setting(2, "Sandbox worker processes (at most 4 per CPU are used).", at_least=1)
    isolation: str = setting("bwrap", "Python sandbox isolation; `none` runs model code unsandboxed.",
                             choices=ISOLATIONS)
    sandbox_python: str | None = setting(None, "Python: run programs under this interpreter (another environment's, e.g. "
                                   "one with BigCodeBench's libraries), bind-mounted read-only into the sandbox.",
                                   flags=("--sandbox-python",), shown="this tool's own", path="input")
    memory_mb: int = setting(1024, "Python: address-space budget per program in MiB.", at_least=MIN_MEMORY_MB,
                             at_most=MAX_MEMORY_MB)
    compare_mode: str = setting("auto", "SQL result comparison. auto: each source's own rule (spider for Spider, set "
                                "for BIRD folders, strict for everything else); spider: the official Spider match "
                                "(DISTINCT deleted, columns in any order); set: BIRD's (sets of rows); ordered: rows "
                                "in order; strict: the queries as written, rows as a multiset (in order when the "
                                "gold query orders).", choices=("auto", *MODES))

    def check(self) -> None:
        check_time_limits(self.cpu_time_s, self.wall_time_s)
        if self.sandbox_python:
            probe(self.sandbox_python, self.isolation)
        usable = bounded_workers(self.workers)
        if usable < self.workers:  # what is recorded is what runs
            print(f"note: --workers {self.workers} is more than this machine can use; using {usable} "
                  f"({WORKERS_PER_CPU} per CPU)", file=sys.stderr)
            object.__setattr__(self, "workers", usable)


def limits_for(domain: str, settings_: SandboxSettings) -> SqlLimits | PythonLimits:
    """The per-program limits a domain's sandbox applies (recorded in every Execution and in cards)."""
    if domain == "sql":
        return SqlLimits(cpu_time_s=settings_.cpu_time_s, wall_time_s=settings_.wall_time_s, max_rows=settings_.max_rows)
    if domain == "python":
        return PythonLimits(cpu_time_s=settings_.cpu_time_s, wall_time_s=settings_.wall_time_s,
                            memory_mb=settings_.memory_mb)
    raise UserError(f"no sandbox for domain {domain!r}")


def open_sandbox(domain: str, settings_: SandboxSettings) -> Sandbox:
    """A sandbox (a pool of worker processes) for programs of one domain."""
    if domain == "sql":
        return SqlSandbox(limits_for(domain, settings_), workers=settings_.workers)
    return PythonSandbox(limits_for(domain, settings_), workers=settings_.workers, isolation=settings_.isolation,
                         python=settings_.sandbox_python)


def compare_mode_for(task: Task, setting_: str) -> str:
    """The SQL comparison a task is graded by: the one set, or with `auto` the rule of the task's source."""
    return task.context.get("compare_mode", "strict") if setting_ == "auto" else setting_


def resolved_compare_mode(tasks: list[Task], setting_: str) -> str:
    """The comparison a set of SQL tasks is graded by (what cards and results state)."""
    modes = sorted({compare_mode_for(t, setting_) for t in tasks if t.domain == "sql"})
    if len(modes) > 1:
        raise UserError(f"these tasks are graded by different SQL comparisons ({', '.join(modes)}): choose one "
                        f"with --compare-mode")
    return modes[0] if modes else setting_


def job_for(task: Task, key: str, code: str | None, settings_: SandboxSettings,
            cpu_time_s: float | None = None) -> SqlJob | PyJob:
    """The sandbox job that runs `code` (None: nothing was extracted) as an answer to `task`. `cpu_time_s` is this
    job's own CPU limit where it differs from the sandbox's (Python: scaled to the reference's CPU time)."""
    if task.domain == "sql":
        return SqlJob(key=key, engine=task.context["engine"], db_path=task.context["db_path"], gold=task.reference,
                      candidate=code or None, mode=compare_mode_for(task, settings_.compare_mode))
    if task.domain == "python":
        ctx = task.context
        return PyJob(key=key, code=code or None, tests=tuple((src, bool(t)) for src, t in ctx["tests"]),
                     entry_point=ctx.get("entry_point") or None, setup=ctx.get("setup", ""),
                     test_setup=ctx.get("test_setup", ""), mode=ctx.get("mode", "function"),
                     insert_offset=int(ctx.get("insert_offset", -1)), cpu_time_s=cpu_time_s,
                     step_cpu_s=tuple(ctx.get("step_cpu_s") or ()), measure_steps="time_rule" in ctx,
                     fail_fast=bool(ctx.get("fail_fast")), data=ctx.get("test_data", ""),
                     memory_mb=ctx.get("memory_mb"), stack_mb=ctx.get("stack_mb"), harness=ctx.get("harness", ""),
                     harness_args=tuple(sorted((ctx.get("harness_args") or {}).items())),
                     guard=ctx.get("guard", ""), io=ctx.get("io", "keep"))
    raise UserError(f"no sandbox for domain {task.domain!r}")
