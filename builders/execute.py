"""Where the work runs: an executor generates batches (with a model backend) and runs programs (through the right
sandbox for their domain), here (`LocalExecutor`) or on a Ray cluster (`ray_executor.RayExecutor`). Builders and
the benchmark runner hand batches to either and get the same records back; only the driver writes them."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Iterator, Sequence

from codelutra_data.errors import UserError
from codelutra_data.models.base import Completion, GenerationWork
from codelutra_data.records import Execution, Task

EXECUTORS = ("local", "ray")


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


@dataclass
class ClusterOptions:
    """Where `--executor ray` runs; none of it changes what is built."""

    executor: str = "local"
    ray_address: str | None = None  # None: a Ray cluster started for this run on this machine; "auto": the running one
    replicas: int = 1  # model replicas (Ray actors), each holding one backend
    sandbox_workers: int | None = None  # sandbox processes across the cluster; None: each node's CPUs

    def validate(self) -> None:
        if self.executor not in EXECUTORS:
            raise UserError(f"unknown executor {self.executor!r}: use one of {', '.join(EXECUTORS)}")
        if self.replicas < 1 or (self.sandbox_workers is not None and self.sandbox_workers < 1):
            raise UserError("--replicas and --sandbox-workers must be at least 1")
        if self.executor == "local" and (self.ray_address or self.replicas != 1 or self.sandbox_workers):
            raise UserError("--ray-address, --replicas and --sandbox-workers need --executor ray")


def make_executor(options: ExecOptions, cluster: ClusterOptions | None = None):
    """The local executor, or the Ray one (connected and checked now, before any work)."""
    cluster = cluster or ClusterOptions()
    cluster.validate()
    if cluster.executor == "ray":
        from codelutra_data.builders.ray_executor import RayExecutor

        return RayExecutor(options, cluster)
    return LocalExecutor(options)


class LocalExecutor:
    """Generation in this process; one sandbox (a pool of worker processes) per domain, opened on first use
    and closed together."""

    name = "local"

    def __init__(self, options: ExecOptions):
        self.options = options
        self._sandboxes: dict = {}

    def generate(self, backend, works: Sequence[GenerationWork]) -> Iterator[tuple[int, list[list[Completion]]]]:
        """(index, completions) per work item as each finishes; here, one after another in order."""
        for i, work in enumerate(works):
            yield i, backend.generate(work.prompts, work.n, work.sampling, work.seed)

    def describe(self) -> dict:
        import os

        return {"name": "local", "nodes": 1, "resources": {"CPU": os.cpu_count() or 1},
                "sandbox_workers": self.options.workers}

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

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


Executor = LocalExecutor  # the name builders and tests used before executors were swappable


def timed_generation(executor, backend, works: Sequence[GenerationWork],
                     timing: dict) -> Iterator[tuple[int, list[list[Completion]]]]:
    """executor.generate, adding the time spent waiting for it (model loading excluded) to generation_s."""
    import time

    timing.setdefault("generation_s", 0.0)
    timing.setdefault("model_load_s", 0.0)
    results = executor.generate(backend, works)
    while True:
        t0, load_before = time.monotonic(), timing["model_load_s"]
        try:
            item = next(results)
        except StopIteration:
            return
        timing["generation_s"] += time.monotonic() - t0 - (timing["model_load_s"] - load_before)
        yield item


def check_references(executor, tasks: Sequence[Task], progress=None) -> list[Execution]:
    """Run every task's reference solution; a suite whose references fail cannot grade anything."""
    from codelutra_data.sandboxes.limits import REFERENCE_CPU_FACTOR

    items = [(t, f"reference:{t.task_id}", t.reference) for t in tasks]
    budget = {t.task_id: executor.options.cpu_time_s * REFERENCE_CPU_FACTOR for t in tasks}
    out: list = [None] * len(items)
    for i, execution in executor.run_iter(items, budget):
        out[i] = execution
        if progress:
            progress(execution)
    return out


def reference_timeouts(tasks: Sequence[Task], executions: Sequence[Execution], floor_s: float,
                       factor: float = 10.0) -> dict[str, float]:
    """Per-task CPU limits scaled to the reference's own CPU time (never below the configured limit), so a
    slow-but-correct program on a heavy task is not a timeout."""
    return {t.task_id: max(floor_s, round(factor * e.cpu_s, 2)) for t, e in zip(tasks, executions)}
