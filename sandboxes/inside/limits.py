"""Entering a job's process: its own session, descriptors, folder and resource limits, and no way for another
process of the sandbox to read its memory."""

from __future__ import annotations

import math
import os
import resource
import signal
import sys

PR_SET_DUMPABLE = 4
THREADS_PER_PROCESS = 16


def no_dumps() -> bool:
    """Mark this process non-dumpable: processes without CAP_SYS_PTRACE (the sandbox drops every capability) can
    then neither ptrace it nor open its /proc/<pid>/mem, fd or environ. Inherited by forks."""
    try:
        import ctypes
        return ctypes.CDLL(None, use_errno=True).prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) == 0
    except (OSError, AttributeError, ImportError):
        return False


def vm_size_bytes() -> int:
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmSize:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def enter_job(output: int, workdir: str, keep: tuple = ()) -> None:
    """Own session; stdin empty, stdout and stderr the job's output pipe; every other descriptor closed but
    `keep`; the job's scratch folder as working directory; default signal handling."""
    os.setsid()
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.dup2(output, 1)
    os.dup2(output, 2)
    low = 3
    for fd in sorted(keep):
        os.closerange(low, fd)
        low = fd + 1
    os.closerange(low, 4096)
    os.chdir(workdir)
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGCHLD):
        signal.signal(sig, signal.SIG_DFL)


def apply(limits: dict) -> None:
    """The job's resource limits on this process (the supervisor counts the job's CPU time and output too)."""
    cpu = int(math.ceil(limits["cpu_time_s"])) + 1  # per-process backstop; the supervisor counts the job's total
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))
    resource.setrlimit(resource.RLIMIT_AS, (vm_size_bytes() + limits["memory_mb"] * 2**20,) * 2)
    # Threads count against RLIMIT_NPROC: room for them; processes are counted by the supervisor's watchdog.
    resource.setrlimit(resource.RLIMIT_NPROC, (limits["max_procs"] * THREADS_PER_PROCESS,) * 2)
    if limits.get("stack_mb"):
        stack = limits["stack_mb"] * 2**20
        hard = resource.getrlimit(resource.RLIMIT_STACK)[1]
        resource.setrlimit(resource.RLIMIT_STACK, (stack if hard == resource.RLIM_INFINITY else min(stack, hard), hard))
    resource.setrlimit(resource.RLIMIT_NOFILE, (limits["max_files"],) * 2)
    resource.setrlimit(resource.RLIMIT_FSIZE, (limits["max_file_bytes"],) * 2)
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    sys.stdout = open(1, "w", buffering=1, closefd=False, errors="replace")
    sys.stderr = open(2, "w", buffering=1, closefd=False, errors="replace")
    sys.stdin = open(0, "r", closefd=False)
    sys.argv = ["candidate"]
    sys.setrecursionlimit(1000)
