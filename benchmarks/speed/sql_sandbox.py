"""Speed of the SQL sandbox on real work, and where a default build spends its time.

    python -m codelutra_data.benchmarks.speed.sql_sandbox            # judge 1034 gold queries + wrong variants
    python -m codelutra_data.benchmarks.speed.sql_sandbox --build    # also time a small default build by stage

Side by side in one run: our sandbox (isolated workers, authorizer, limits, Spider comparison) and a naive
in-process loop (a fresh sqlite3 connection per query, no isolation, no limits) on the same jobs, so the
ratio shows what the safety costs.
"""

from __future__ import annotations

import argparse
import re
import sqlite3
import tempfile
import time
from collections import Counter

from codelutra_data.builders.tasks import load_tasks
from codelutra_data.sandboxes.compare import order_matters, prepare_query, results_equal
from codelutra_data.sandboxes.sql import SqlJob, SqlSandbox


def make_jobs(tasks) -> tuple[list[SqlJob], list[SqlJob]]:
    gold, wrong = [], []
    for t in tasks:
        db = t.context["db_path"]
        gold.append(SqlJob(f"{t.task_id}/gold", "sqlite", db, t.reference, t.reference))
        body = t.reference.strip().rstrip(";")
        wrong.append(SqlJob(f"{t.task_id}/empty", "sqlite", db, t.reference, f"SELECT * FROM ({body}) LIMIT 0"))
        wrong.append(SqlJob(f"{t.task_id}/typo", "sqlite", db, t.reference, re.sub("select", "selec", body, count=1, flags=re.I)))
    return gold, wrong


def naive(jobs: list[SqlJob]) -> Counter:
    """What an unsandboxed evaluator does: run both queries in-process and compare."""
    statuses = Counter()
    for job in jobs:
        con = sqlite3.connect(job.db_path)
        try:
            g = con.execute(prepare_query(job.gold, "spider")).fetchall()
            try:
                p = con.execute(prepare_query(job.candidate, "spider")).fetchall()
            except sqlite3.Error:
                statuses["error"] += 1
                continue
            statuses["passed" if results_equal(g, p, "spider", order_matters(job.gold, "spider")) else "wrong"] += 1
        finally:
            con.close()
    return statuses


def bench_sandbox(workers: int) -> None:
    tasks = load_tasks("spider-dev", "all")
    gold, wrong = make_jobs(tasks)
    jobs = gold + wrong
    with SqlSandbox(workers=workers) as sandbox:
        sandbox.run(gold[:4])  # start the workers outside the timed region
        t0 = time.perf_counter()
        results = sandbox.run(jobs)
        ours = time.perf_counter() - t0
    by_kind: dict[str, Counter] = {}
    for job, e in zip(jobs, results):
        by_kind.setdefault(job.key.rsplit("/", 1)[1], Counter())[e.status] += 1
    t0 = time.perf_counter()
    naive_statuses = naive(jobs)
    base = time.perf_counter() - t0
    print(f"jobs: {len(jobs)} ({len(gold)} gold-vs-gold, {len(wrong)} wrong variants), sandbox workers: {workers}")
    for kind, counts in by_kind.items():
        print(f"  {kind:<6} verdicts: {dict(counts)}")
    assert by_kind["gold"] == Counter({"passed": len(gold)}), "every gold query must pass against itself"
    print(f"ours : {len(jobs) / ours:8.1f} executions/s ({ours:.2f} s)")
    print(f"naive: {len(jobs) / base:8.1f} executions/s ({base:.2f} s)  [in-process, no isolation or limits]")
    print(f"ratio ours/naive: {base / ours:.2f}x")
    print(f"naive verdicts: {dict(naive_statuses)}")


def bench_build(limit: int) -> None:
    from codelutra_data.builders.build import run_build
    from codelutra_data.builders.build_config import BuildConfig

    with tempfile.TemporaryDirectory() as tmp:
        cfg = BuildConfig(limit=limit, name="speed", version="0.1.0", runs_dir=f"{tmp}/runs",
                          releases_dir=f"{tmp}/releases")
        t0 = time.perf_counter()
        stats = run_build(cfg).stats
        total = time.perf_counter() - t0
    t = stats["timing"]
    print(f"default build, {limit} tasks x {cfg.samples} samples: {total:.1f} s wall")
    for stage in ("model_load_s", "generation_s", "execution_s", "bookkeeping_s"):
        print(f"  {stage[:-2]:<12} {t[stage]:7.1f} s  {100 * t[stage] / t['total_s']:5.1f}%")
    print(f"  samples/s {stats['samples'] / total:.2f}, pass rate {stats['pass_rate']:.1%}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--build", action="store_true", help="also time a default build by stage")
    parser.add_argument("--build-limit", type=int, default=8)
    args = parser.parse_args()
    bench_sandbox(args.workers)
    if args.build:
        bench_build(args.build_limit)


if __name__ == "__main__":
    main()
