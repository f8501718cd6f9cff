"""The executor interface: where generation and program execution run. Builders and the benchmark runner hand an
executor chunks of generation work and batches of (task, key, program) items, and get the same records back
whether it runs them here (`local.LocalExecutor`) or on a Ray cluster (`ray.RayExecutor`); only the driver
(the process that called it) writes them."""

from __future__ import annotations

import queue
import threading
import time
from abc import ABC, abstractmethod
from typing import Iterator, Sequence

from codelutra_data.config import Settings, setting, settings
from codelutra_data.errors import UserError
from codelutra_data.models.base import Completion, GenerationWork
from codelutra_data.records import Execution, Task
from codelutra_data.sandboxes.settings import SandboxSettings

EXECUTORS = ("local", "ray")
OVERLAP = ("auto", "on", "off")
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
    overlap: str = setting("auto", "Execute chunk k while chunk k+1 generates (a queue of one chunk). The records are "
                           "the same either way.", choices=OVERLAP,
                           shown="auto: on where generation does not use this machine's cores (a GPU engine, an "
                           "openai server, a Ray cluster), off on a CPU-only machine, where taking turns measured "
                           "faster")

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


def overlap_choice(asked: str, backend, executor: Executor) -> tuple[bool, str]:
    """Whether generation runs a chunk ahead of execution, and why: what `--overlap auto` means here."""
    if asked != "auto":
        return asked == "on", f"--overlap {asked}"
    if executor.name == "ray":
        return True, "auto: a Ray cluster generates on its replicas"
    if backend.name == "openai":
        return True, "auto: the openai backend generates on its server"
    if backend.name in ("vllm", "transformers"):
        import torch

        if torch.cuda.is_available():
            return True, f"auto: {backend.name} generates on the GPU"
    return False, "auto: generation and execution share this machine's CPU cores"


_DONE = object()


def generated_chunks(executor: Executor, backend, works: Sequence[GenerationWork], timing: dict,
                     overlap: bool) -> Iterator[tuple[int, list[list[Completion]]]]:
    """timed_generation, run one chunk ahead in a thread when `overlap`: the caller executes and stores chunk k
    while chunk k+1 generates. The queue holds one chunk, so at most two are in memory (and lost to a kill);
    only the caller writes the store. `timing["overlapped_s"]` is the generation time the caller did not wait for."""
    if not overlap or len(works) < 2:
        yield from timed_generation(executor, backend, works, timing)
        return
    ahead: queue.Queue = queue.Queue(maxsize=1)
    stop = threading.Event()

    def produce() -> None:
        try:
            for item in timed_generation(executor, backend, works, timing):
                while not stop.is_set():
                    try:
                        ahead.put((item, None), timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            ahead.put((_DONE, None))
        except BaseException as exc:  # noqa: BLE001 - handed to the caller, who raises it as its own
            ahead.put((_DONE, exc))

    thread = threading.Thread(target=produce, name="generation", daemon=True)
    timing.setdefault("overlapped_s", 0.0)
    waited = 0.0
    before = timing.get("generation_s", 0.0)
    thread.start()
    try:
        while True:
            t0 = time.monotonic()
            item, error = ahead.get()
            waited += time.monotonic() - t0
            if error is not None:
                raise error
            if item is _DONE:
                return
            yield item
    finally:
        stop.set()
        while thread.is_alive():
            try:
                ahead.get(timeout=0.1)
            except queue.Empty:
                pass
        timing["overlapped_s"] += max(0.0, timing.get("generation_s", 0.0) - before - waited)
