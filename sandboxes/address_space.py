"""A Python program's address space against the shell's `ulimit -v`. Each program's process sets its address-space
limit to the worker's own size plus its budget (`--memory-mb`, or a suite's own, e.g. BigCodeBench's 8 GiB); a
process cannot raise its hard limit, so under a smaller `ulimit -v` every program died before its first line
("exited (code 70)") with no word of why. The budget is compared with the limit before any worker starts."""

from __future__ import annotations

import resource
import sys
from functools import lru_cache

from codelutra_data.errors import UserError
from codelutra_data.sandboxes.interpreter import Interpreter, worker_size

MARGIN = 64 * 2**20  # what a worker grows by between its start and a job's fork (buffers, pipes), generously


@lru_cache(maxsize=4)
def _own_worker_size(isolation: str) -> int:
    return worker_size(sys.executable, isolation)


def check_address_space(memory_mb: int, setting_mb: int, interpreter: Interpreter | None, isolation: str) -> None:
    """Refuse in one line when a program's budget (`memory_mb`; `setting_mb` is --memory-mb's value) cannot be
    given under this process's hard address-space limit, which every worker and program inherits."""
    hard = resource.getrlimit(resource.RLIMIT_AS)[1]
    if hard == resource.RLIM_INFINITY or memory_mb <= 0:
        return
    size = interpreter.size if interpreter else _own_worker_size(isolation)
    need = size + memory_mb * 2**20 + MARGIN
    if need <= hard:
        return
    mib = lambda n: n // 2**20  # noqa: E731
    asks = (f"--memory-mb {memory_mb}" if memory_mb <= setting_mb else
            f"this suite's own budget of {memory_mb} MiB per program (above --memory-mb {setting_mb})")
    fix = "raise it" + (" or lower --memory-mb" if memory_mb <= setting_mb else "")
    raise UserError(f"your shell's `ulimit -v` ({hard // 1024} KiB, {mib(hard)} MiB) is below what {asks} needs: "
                    f"{memory_mb} MiB per program on top of the sandbox's Python ({mib(size)} MiB), about "
                    f"{mib(need)} MiB in all; {fix} (`ulimit -v unlimited`, or at least {need // 1024 + 1})")


def check_sql_workers(worker_mb: int) -> None:
    """A SQL worker sets its whole address space to `worker_mb` after its imports; under a smaller hard limit it
    cannot, and every worker died ("sandbox worker died twice on this unit") with no word of why."""
    hard = resource.getrlimit(resource.RLIMIT_AS)[1]
    if hard != resource.RLIM_INFINITY and hard < worker_mb * 2**20:
        raise UserError(f"your shell's `ulimit -v` ({hard // 1024} KiB, {hard // 2**20} MiB) is below the {worker_mb} "
                        f"MiB of address space each SQL sandbox worker sets itself (the engine's budget, the gold "
                        f"result, what Python and DuckDB reserve): raise it (`ulimit -v unlimited`, or at least "
                        f"{worker_mb * 1024})")
