"""The executor interface: where generation and program execution run. Builders and the benchmark runner hand an
executor chunks of generation work and batches of (task, key, program) items, and get the same records back
whether it runs them here (`local.LocalExecutor`) or on a Ray cluster (`ray.RayExecutor`); only the driver
(the process that called it) writes them."""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from typing import Iterator, Sequence

from codelutra_data.config import Settings, setting, settings
from codelutra_data.errors import UserError
from codelutra_data.models.base import Completion, GenerationWork
from codelutra_data.records import Execution, Task
from codelutra_data.sandboxes.settings import SandboxSettings

EXECUTORS = ("local", "ray")
Item = tuple[Task, str, "str | None"]  # a task, the key its execution is recorded under, the program (None: none)


@settings(frozen=True)
class ExecutorSettings(Settings):
    """Where the work runs; never what is built or graded, so a resumed run may move."""

    executor: str = setting("local", "Where the work runs: in this process, or on a Ray cluster (model replicas and "
                            "sandbox pools as actors; pip install 'codelutra-data[ray]'). Results are the same.",
                            choices=EXECUTORS)
    ray_address: str | None = setting(None, "ray: the cluster to join (auto: the one `ray start` runs here; or "
                                      "host:port).", shown="a Ray instance started for this run")
    replicas: int = setting(1, "ray: model replicas, one backend each (vllm replicas take --tensor-parallel-size "
                            "GPUs, others --threads CPUs).", at_least=1, at_most=10_000)
    sandbox_workers: int | None = setting(None, "ray: sandbox processes across the cluster, split over its nodes.",
                                          shown="each node's CPUs", at_least=1)

    def check(self) -> None:
        if self.executor == "local" and (self.ray_address or self.replicas != 1 or self.sandbox_workers):
            raise UserError("--ray-address, --replicas and --sandbox-workers need --executor ray")


class Executor(ABC):
    """Generation and execution, somewhere. Use it as a context manager: `close` stops its workers."""

    name: str
    settings: SandboxSettings  # how programs run, wherever they run

    @abstractmethod
    def generate(self, backend, works: Sequence[GenerationWork]) -> Iterator[tuple[int, list[list[Completion]]]]:
        """(index, completions) per work item as each finishes; each item runs whole on one backend with its
        own seed, so a seeded backend gives the same samples wherever it runs."""

    @abstractmethod
    def run_iter(self, items: Sequence[Item], timeouts: dict[str, float] | None = None) -> Iterator[tuple[int, Execution]]:
        """(index, execution) per item of one domain as each finishes. `timeouts` are per-task CPU limits
        where they differ from the sandbox's."""

    @abstractmethod
    def sandbox_info(self, domain: str) -> tuple[str, dict]:
        """The sandbox's name and limits for a domain, as records and cards state them."""

    @abstractmethod
    def describe(self) -> dict:
        """Where it ran (recorded in stats and results; never in releases)."""

    @abstractmethod
    def close(self) -> None:
        ...

    def run(self, items: Sequence[Item], timeouts: dict[str, float] | None = None) -> list[Execution]:
        """Executions in the order of `items`."""
        out: list = [None] * len(items)
        for i, execution in self.run_iter(items, timeouts):
            out[i] = execution
        return out

    def __enter__(self) -> "Executor":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def timed_generation(executor: Executor, backend, works: Sequence[GenerationWork],
                     timing: dict) -> Iterator[tuple[int, list[list[Completion]]]]:
    """executor.generate, adding the time spent waiting for it (model loading excluded) to generation_s."""
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
