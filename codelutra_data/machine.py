"""The machine a run happens on: cards and results record it, because CPU-time verdicts and speed depend on it."""

from __future__ import annotations

import os
import platform
import sys
from pathlib import Path


def cpu_name() -> str:
    """CPU model and core count."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return f"{line.split(':', 1)[1].strip()} ({os.cpu_count()} cores)"
    except OSError:
        pass
    return f"{platform.processor() or platform.machine()} ({os.cpu_count()} cores)"


def machine() -> dict:
    return {"cpu": cpu_name(), "platform": f"{platform.system()} {platform.release()} ({platform.machine()})",
            "python": sys.version.split()[0]}


# Sandbox workers per usable CPU at most: programs are CPU-bound and limited by CPU time, so more only queue on
# the cores (and each worker holds memory); `--workers 100000` once started a fork storm.
WORKERS_PER_CPU = 4


def usable_cpus() -> int:
    """The cores this process may run on."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def default_threads() -> int:
    """Threads for CPU generation: OMP_NUM_THREADS when set (e.g. processes sharing the cores), else the cores
    this process may run on. Oversubscribed cores made generation about 5x slower here."""
    try:
        value = int(os.environ.get("OMP_NUM_THREADS", ""))
        if value > 0:
            return value
    except ValueError:
        pass
    return usable_cpus()


def bounded_workers(requested: int | None, cpus: int | None = None) -> int:
    """The sandbox worker processes to allow: what was asked (None: up to 4), never more than WORKERS_PER_CPU
    per CPU (of this machine, or `cpus` for another node). Below 1 is a caller's bug (settings refuse it)."""
    limit = WORKERS_PER_CPU * (cpus or usable_cpus())
    if requested is None:
        return max(1, min(4, limit))
    if requested < 1:
        raise ValueError(f"sandbox workers must be at least 1, got {requested}")
    return min(requested, limit)


def available_memory() -> int | None:
    """Bytes of memory a new allocation may still take on this machine (the kernel's MemAvailable), or None where
    it cannot be read."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None
