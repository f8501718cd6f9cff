"""The local executor: generation in this process, one sandbox (a pool of worker processes) per domain, opened on
first use and closed together."""

from __future__ import annotations

import dataclasses
import os
from typing import Iterator, Sequence

from codelutra_data.builders.executors.base import Executor, Item
from codelutra_data.models.base import Completion, GenerationWork
from codelutra_data.records import Execution
from codelutra_data.sandboxes.base import Sandbox
from codelutra_data.sandboxes.settings import SandboxSettings, job_for, open_sandbox


class LocalExecutor(Executor):
    name = "local"

    def __init__(self, sandbox: SandboxSettings | None = None):
        self.settings = sandbox or SandboxSettings()
        self._sandboxes: dict[str, Sandbox] = {}

    def generate(self, backend, works: Sequence[GenerationWork]) -> Iterator[tuple[int, list[list[Completion]]]]:
        for i, work in enumerate(works):  # one after another, in order
            yield i, backend.generate(work.prompts, work.n, work.sampling, work.seed)

    def describe(self) -> dict:
        return {"name": "local", "nodes": 1, "resources": {"CPU": os.cpu_count() or 1},
                "sandbox_workers": self.settings.workers}

    def sandbox(self, domain: str) -> Sandbox:
        if domain not in self._sandboxes:
            self._sandboxes[domain] = open_sandbox(domain, self.settings)
        return self._sandboxes[domain]

    def sandbox_info(self, domain: str) -> tuple[str, dict]:
        box = self.sandbox(domain)
        return box.name, dataclasses.asdict(box.limits)

    def run_iter(self, items: Sequence[Item], timeouts: dict[str, float] | None = None) -> Iterator[tuple[int, Execution]]:
        if not items:
            return
        timeouts = timeouts or {}
        jobs = [job_for(task, key, code, self.settings, timeouts.get(task.task_id)) for task, key, code in items]
        yield from self.sandbox(items[0][0].domain).run_iter(jobs)

    def close(self) -> None:
        for box in self._sandboxes.values():
            box.close()
        self._sandboxes.clear()
