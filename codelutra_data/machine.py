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


def default_threads() -> int:
    """Threads for CPU generation: OMP_NUM_THREADS when set (e.g. processes sharing the cores), else the cores
    this process may run on. Oversubscribed cores made generation about 5x slower here."""
    try:
        value = int(os.environ.get("OMP_NUM_THREADS", ""))
        if value > 0:
            return value
    except ValueError:
        pass
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)
