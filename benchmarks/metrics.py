"""Benchmark metrics: the unbiased pass@k estimator, execution accuracy, status histograms and bootstrap
intervals over tasks. Pure functions of per-task counts, so results files can be re-scored by anyone."""

from __future__ import annotations

from collections import Counter
from typing import Iterable, Sequence

from codelutra_data.records import STATUSES


def pass_at_k(n: int, c: int, k: int) -> float:
    """Chance that at least one of k samples drawn without replacement from n (c of them correct) passes:
    1 - C(n-c, k) / C(n, k) (Chen et al., 2021), as a product so large n cannot overflow."""
    if not 0 <= c <= n:
        raise ValueError(f"need 0 <= c <= n, got n={n}, c={c}")
    if not 1 <= k <= n:
        raise ValueError(f"pass@{k} needs at least {k} samples per task, got n={n}")
    if n - c < k:
        return 1.0
    miss = 1.0
    for i in range(n - c + 1, n + 1):
        miss *= 1.0 - k / i
    return 1.0 - miss


def per_task_pass_at_k(counts: Sequence[tuple[int, int]], k: int) -> list[float]:
    """pass@k of each task from its (n, c); k must not exceed any task's n (the estimator is undefined)."""
    short = [n for n, _ in counts if n < k]
    if short:
        raise ValueError(f"pass@{k} needs at least {k} samples per task; {len(short)} task(s) have {min(short)}")
    return [pass_at_k(n, c, k) for n, c in counts]


def bootstrap_interval(values: Sequence[float], confidence: float = 0.95, resamples: int = 2000,
                       seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean over tasks: tasks are resampled with replacement, which is
    the uncertainty a leaderboard reader cares about (another draw of tasks of the same kind)."""
    import numpy as np

    if len(values) == 0:
        raise ValueError("no values to bootstrap")
    data = np.asarray(values, dtype=float)
    rng = np.random.default_rng(seed)
    means = np.empty(resamples)
    for start in range(0, resamples, 256):  # bounded memory for large suites
        stop = min(resamples, start + 256)
        idx = rng.integers(0, len(data), size=(stop - start, len(data)))
        means[start:stop] = data[idx].mean(axis=1)
    alpha = (1 - confidence) / 2
    low, high = np.quantile(means, [alpha, 1 - alpha])
    return float(low), float(high)


def status_histogram(statuses: Iterable[str]) -> dict[str, int]:
    """Counts of every status, in the canonical order, zeros included (tables line up across runs)."""
    counts = Counter(statuses)
    unknown = set(counts) - set(STATUSES)
    if unknown:
        raise ValueError(f"unknown status(es): {', '.join(sorted(unknown))}")
    return {s: counts.get(s, 0) for s in STATUSES}
