"""Run programs for tasks of either domain through the right sandbox; check reference solutions."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Iterator, Sequence

from codelutra_data.errors import UserError
from codelutra_data.records import Execution, Task


@dataclass
class ExecOptions:
    """Sandbox settings shared by `build` and `doctor`."""

    cpu_time_s: float = 5.0
    wall_time_s: float = 30.0
    workers: int = 2
    isolation: str = "bwrap"
    memory_mb: int = 1024
    max_rows: int = 10_000
    compare_mode: str = "spider"


class Executor:
    """One sandbox per domain, opened on first use and closed together."""

    def __init__(self, options: ExecOptions):
        self.options = options
        self._sandboxes: dict = {}

    def sandbox(self, domain: str):
        if domain not in self._sandboxes:
            o = self.options
            if domain == "sql":
                from codelutra_data.sandboxes.sql import SqlLimits, SqlSandbox

                self._sandboxes[domain] = SqlSandbox(
                    SqlLimits(cpu_time_s=o.cpu_time_s, wall_time_s=o.wall_time_s, max_rows=o.max_rows),
                    workers=o.workers)
            elif domain == "python":
                from codelutra_data.sandboxes.python import PythonLimits, PythonSandbox

                self._sandboxes[domain] = PythonSandbox(
                    PythonLimits(cpu_time_s=o.cpu_time_s, wall_time_s=o.wall_time_s, memory_mb=o.memory_mb),
                    workers=o.workers, isolation=o.isolation)
            else:
                raise UserError(f"no sandbox for domain {domain!r}")
        return self._sandboxes[domain]

    def sandbox_info(self, domain: str) -> tuple[str, dict]:
        box = self.sandbox(domain)
        return getattr(box, "name", domain), dataclasses.asdict(box.limits)

    def run_iter(self, items: Sequence[tuple[Task, str, str | None]],
                 timeouts: dict[str, float] | None = None) -> Iterator[tuple[int, Execution]]:
        """(task, key, code) items of one domain -> (index, execution) as they finish. `timeouts` are
        per-task CPU limits (Python) where they differ from the sandbox's."""
        if not items:
            return
        domain = items[0][0].domain
        box = self.sandbox(domain)
        if domain == "sql":
            from codelutra_data.sandboxes.sql import SqlJob

            jobs = [SqlJob(key=key, engine=t.context["engine"], db_path=t.context["db_path"], gold=t.reference,
                           candidate=code or None, mode=self.options.compare_mode) for t, key, code in items]
            index = {job.key: i for i, job in enumerate(jobs)}
            for unit in box.run_iter(jobs):
                for execution in unit:
                    yield index[execution.sample_id], execution
        else:
            from codelutra_data.sandboxes.python import PyJob

            timeouts = timeouts or {}
            jobs = [PyJob.for_task(t, key, code or None, timeouts.get(t.task_id)) for t, key, code in items]
            yield from box.run_iter(jobs)

    def run(self, items: Sequence[tuple[Task, str, str | None]],
            timeouts: dict[str, float] | None = None) -> list[Execution]:
        out: list = [None] * len(items)
        for i, execution in self.run_iter(items, timeouts):
            out[i] = execution
        return out

    def close(self) -> None:
        for box in self._sandboxes.values():
            box.close()
        self._sandboxes.clear()

    def __enter__(self) -> "Executor":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def check_references(executor: Executor, tasks: Sequence[Task], progress=None) -> list[Execution]:
    """Run every task's reference solution; a suite whose references fail cannot grade anything."""
    items = [(t, f"reference:{t.task_id}", t.reference) for t in tasks]
    out: list = [None] * len(items)
    for i, execution in executor.run_iter(items):
        out[i] = execution
        if progress:
            progress(execution)
    return out


def reference_timeouts(tasks: Sequence[Task], executions: Sequence[Execution], floor_s: float,
                       factor: float = 10.0) -> dict[str, float]:
    """Per-task CPU limits scaled to the reference's own CPU time (never below the configured limit), so a
    slow-but-correct program on a heavy task is not a timeout."""
    return {t.task_id: max(floor_s, round(factor * e.cpu_s, 2)) for t, e in zip(tasks, executions)}
