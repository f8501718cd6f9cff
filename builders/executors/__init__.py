"""Where the work runs (see `base.Executor`): here, or on a Ray cluster."""

from __future__ import annotations

from codelutra_data.builders.executors.base import (EXECUTORS, OVERLAP, Executor, ExecutorSettings, Item,
                                                    generated_chunks, overlap_choice, timed_generation)
from codelutra_data.builders.executors.local import LocalExecutor
from codelutra_data.sandboxes.settings import SandboxSettings

__all__ = ["EXECUTORS", "OVERLAP", "Executor", "ExecutorSettings", "Item", "LocalExecutor", "generated_chunks",
           "make_executor", "overlap_choice", "timed_generation"]


def make_executor(sandbox: SandboxSettings, where: ExecutorSettings | None = None) -> Executor:
    """The local executor, or the Ray one (connected and checked now, before any work)."""
    where = where or ExecutorSettings()
    where.validate()
    if where.executor == "ray":
        from codelutra_data.builders.executors.ray import RayExecutor

        return RayExecutor(sandbox, where)
    return LocalExecutor(sandbox)
