"""Time limits shared by both sandboxes.

Verdicts must not depend on how busy the machine is: a correct program that needs 1 s of CPU takes 1 s on a
quiet machine and 5 s when four other processes share the core. So programs are limited by the CPU time
they consume, and the wall-clock limit is only a generous backstop for programs that sleep or block.
"""

from __future__ import annotations

from codelutra_data.errors import UserError

DEFAULT_CPU_TIME_S = 5.0
DEFAULT_WALL_TIME_S = 30.0
# Reference solutions are trusted and run only to prove the task gradable, so they get this multiple of the CPU
# limit: CPU time itself grows under load (shared caches and cores), and mbpp/123's reference (about 4 s) went
# over 5 s of CPU with every core busy. Samples then get up to SAMPLE_CPU_FACTOR x the reference's own CPU time
# (never less than the configured limit).
REFERENCE_CPU_FACTOR = 4.0
SAMPLE_CPU_FACTOR = 10.0


MAX_TIME_S = 24 * 3600.0  # a program's limits, CPU or wall: a day is already far past any test's


def check_time_limits(cpu_time_s: float, wall_time_s: float) -> None:
    if not cpu_time_s > 0:
        raise UserError(f"the CPU time limit must be positive, got {cpu_time_s!r}")
    if not (cpu_time_s <= MAX_TIME_S and wall_time_s <= MAX_TIME_S):
        raise UserError(f"time limits are at most {MAX_TIME_S:g} s per program, got CPU {cpu_time_s:g} s, "
                        f"wall {wall_time_s:g} s")
    if not wall_time_s >= cpu_time_s:
        raise UserError(f"the wall-clock limit ({wall_time_s:g} s) must be at least the CPU time limit "
                        f"({cpu_time_s:g} s): it is only a backstop for programs that sleep or block")
