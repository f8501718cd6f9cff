"""Executions per second through the local executor and through the Ray executor, on the same machine and jobs.

    python -m codelutra_data.benchmarks.speed.executors                  # 2,000 MBPP and 2,000 Spider jobs
    python -m codelutra_data.benchmarks.speed.executors --jobs 500 --ray-address auto   # on a running cluster

The jobs are real: MBPP references with their tests (bubblewrap sandbox) and Spider gold queries judged
against themselves (SQLite sandbox), repeated under distinct keys up to --jobs. Both executors use the same
number of sandbox worker processes (--workers), so the ratio is Ray's overhead per job on one node: the
actor calls, pickling of tasks and records, and the object store. What predicts scaling is printed too: the
driver's own CPU time per job (it dispatches batches and decodes records; nodes do the work). N nodes give
about N times one node's rate until that rate reaches 1000 / (driver ms per job) jobs/s, the driver's ceiling.
"""

from __future__ import annotations

import argparse
import time

from codelutra_data.builders.executors import ExecutorSettings, make_executor
from codelutra_data.builders.tasks import load_tasks
from codelutra_data.sandboxes.settings import SandboxSettings


def jobs_for(source: str, split: str, count: int) -> list:
    tasks = [t for t in load_tasks(source, split) if source != "spider-dev" or t.context["engine"] == "sqlite"]
    return [(t, f"job{i}", t.reference) for i, t in enumerate(tasks[i % len(tasks)] for i in range(count))]


def measure(executor, items: list) -> tuple[float, int, float]:
    """Wall seconds, programs passed, and this process's CPU seconds (the driver's share of the work)."""
    executor.run(items[:8])  # workers started, databases staged, modules imported: not what is measured
    t0, c0 = time.perf_counter(), time.process_time()
    statuses = [e.status for e in executor.run(items)]
    return time.perf_counter() - t0, statuses.count("passed"), time.process_time() - c0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=2000)
    parser.add_argument("--workers", type=int, default=2, help="sandbox worker processes, both executors")
    parser.add_argument("--ray-address", default=None, help="a running cluster (default: a local Ray instance)")
    args = parser.parse_args()

    rows = []
    for label, source, split in (("MBPP references", "mbpp", "all"), ("Spider gold", "spider-dev", "all")):
        items = jobs_for(source, split, args.jobs)
        options = SandboxSettings(workers=args.workers)
        with make_executor(options) as local:
            local_s, local_ok, _ = measure(local, items)
        cluster = ExecutorSettings(executor="ray", ray_address=args.ray_address, sandbox_workers=args.workers)
        with make_executor(options, cluster) as ray_executor:
            nodes = ray_executor.describe()["nodes"]
            ray_s, ray_ok, driver_s = measure(ray_executor, items)
        rows.append((label, len(items), local_s, ray_s, local_ok, ray_ok, nodes, driver_s))

    print(f"{'jobs':<16} {'n':>5} {'local/s':>9} {'ray/s':>9} {'ray/local':>10} {'ms/job local':>13} "
          f"{'ms/job ray':>11} {'driver CPU ms/job':>18} {'passed (local, ray)':>20}")
    for label, n, local_s, ray_s, local_ok, ray_ok, nodes, driver_s in rows:
        print(f"{label:<16} {n:>5} {n / local_s:>9.1f} {n / ray_s:>9.1f} {local_s / ray_s:>9.2f}x "
              f"{1000 * local_s / n:>13.2f} {1000 * ray_s / n:>11.2f} {1000 * driver_s / n:>18.3f} "
              f"{f'{local_ok}, {ray_ok}':>20}")
    print(f"Ray: {rows[0][6]} node(s), {args.workers} sandbox workers; local: {args.workers} workers")


if __name__ == "__main__":
    main()
