"""What every sandbox is: `run_iter(jobs)` yields (index, Execution) as jobs finish, whatever the language, and
never raises for a bad program (only `SandboxError` for a broken sandbox)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Iterator, Sequence

from codelutra_data.records import Execution


class Sandbox(ABC):
    name: str
    limits: object  # a frozen dataclass of the limits, recorded in every Execution and in cards

    @abstractmethod
    def run_iter(self, jobs: Sequence) -> Iterator[tuple[int, Execution]]:
        """(index into `jobs`, its execution) in the order they finish: progress for long batches."""

    @abstractmethod
    def close(self) -> None:
        ...

    def run(self, jobs: Sequence) -> list[Execution]:
        """Executions in the order of `jobs`."""
        out: list = [None] * len(jobs)
        for index, execution in self.run_iter(jobs):
            out[index] = execution
        return out

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()
