"""Debugging versus resampling at equal generation budget (IterPref's comparison), with our own builders.

    python -m codelutra_data.benchmarks.experiments.debug_vs_resample --tasks mbpp --split train --max-rounds 3
    python -m codelutra_data.benchmarks.experiments.debug_vs_resample --tasks spider-dev --limit 150 --max-rounds 3
    ... --resample-limit 40      # resample only the first 40 tasks and compare on those (CPU generation is slow)

Runs a `--mode trajectories` build (each task: a first attempt, then up to R revisions fed with the failure),
then a `--mode pairs` build that samples 1 + R independent answers per task from the same model, seed and
sampling. It reports, per task: solved on the first try, solved after debugging, and solved by resampling
with the same number of generations the trajectories actually used (and with the maximum, 1 + R); pairs per
task of each builder; and where the time went. Both builds are ordinary releases under `--out`; rerunning
the command resumes or reuses them.
"""

from __future__ import annotations

import argparse
import json
import math
from collections import defaultdict
from pathlib import Path

from codelutra_data.builders.build import run_build
from codelutra_data.builders.build_config import BuildConfig
from codelutra_data.builders.release import release_stats


def _build(cfg: BuildConfig) -> dict:
    """Stats of the release: reused when it exists, resumed when a run of it was interrupted."""
    release = Path(cfg.releases_dir) / cfg.name / cfg.version
    if release.exists():
        return release_stats(release)
    run = Path(cfg.runs_dir) / cfg.name / cfg.version
    cfg.resume = run.exists()
    return run_build(cfg).stats


def _table(release: Path, config: str) -> list[dict]:
    import pyarrow.parquet as pq

    return [r for f in sorted((release / config).glob("*.parquet")) for r in pq.read_table(f).to_pylist()]


def resample_solved(release: Path, budget: int) -> float:
    """Fraction of tasks with a passing answer among their first `budget` samples (by sample index)."""
    by_task: dict[str, list[tuple[int, str]]] = defaultdict(list)
    for r in _table(release, "samples"):
        by_task[r["task_id"]].append((r["sample_index"], r["status"]))
    solved = sum(any(s == "passed" for i, s in sorted(v)[:budget]) for v in by_task.values())
    return solved / len(by_task)


def debug_outcomes(release: Path, task_ids: set[str], max_rounds: int) -> dict:
    """Per-task outcomes of the trajectories on `task_ids` (all trajectories of a task count together)."""
    rows = [r for r in _table(release, "trajectories") if r["task_id"] in task_ids]
    tasks = sorted({r["task_id"] for r in rows})
    first = {t: False for t in tasks}
    by_round = [{t: False for t in tasks} for _ in range(max_rounds + 1)]
    for r in rows:
        first[r["task_id"]] |= r["rounds"][0]["status"] == "passed"
        if r["solved"]:
            for k in range(r["solved_round"], max_rounds + 1):
                by_round[k][r["task_id"]] = True
    attempts = sum(len(r["rounds"]) for r in rows)
    return {"tasks": len(tasks), "first_try_solved": sum(first.values()) / len(tasks),
            "solved": sum(by_round[-1].values()) / len(tasks),
            "cumulative_by_round": [round(sum(x.values()) / len(tasks), 4) for x in by_round],
            "generations_per_task": round(attempts / len(tasks), 3),
            "resubmissions": sum(r["resubmissions"] for r in rows)}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", default="mbpp")
    parser.add_argument("--split", default="train")
    parser.add_argument("--limit", type=int, default=0)
    parser.add_argument("--resample-limit", type=int, default=0,
                        help="resample only the first N of the tasks and compare on those (generation is slow on CPU)")
    parser.add_argument("--max-rounds", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--max-new-tokens", type=int, default=None)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--out", default="experiments/debug-vs-resample")
    args = parser.parse_args(argv)

    out = Path(args.out)
    common = dict(tasks=args.tasks, split=args.split, limit=args.limit, seed=args.seed, model=args.model,
                  max_new_tokens=args.max_new_tokens, batch_size=args.batch_size, version="0.1.0",
                  runs_dir=str(out / "runs"), releases_dir=str(out / "releases"))
    slug = Path(args.tasks).stem if args.tasks.endswith(".jsonl") else Path(args.tasks).name
    scale = f"-l{args.limit}" if args.limit else ""  # a release is reused by name: the name carries the scale
    trajectories = BuildConfig(**common, mode="trajectories", max_rounds=args.max_rounds,
                               name=f"{slug}-debug-r{args.max_rounds}-s{args.seed}{scale}")
    resample_limit = args.resample_limit or args.limit
    resampling = BuildConfig(**{**common, "limit": resample_limit}, mode="pairs", samples=1 + args.max_rounds,
                             name=f"{slug}-resample-m{1 + args.max_rounds}-s{args.seed}"
                                  + (f"-l{resample_limit}" if resample_limit else ""))
    t_stats = _build(trajectories)
    p_stats = _build(resampling)
    t_release = Path(trajectories.releases_dir) / trajectories.name / trajectories.version
    p_release = Path(resampling.releases_dir) / resampling.name / resampling.version
    compared = {r["task_id"] for r in _table(p_release, "samples")}
    debug = debug_outcomes(t_release, compared, args.max_rounds)
    tasks = debug["tasks"]
    budget = debug["generations_per_task"]
    low, high = math.floor(budget), math.ceil(budget)
    at_low, at_high = resample_solved(p_release, low), resample_solved(p_release, high)
    at_budget = at_low + (at_high - at_low) * (budget - low)  # linear between the two whole budgets
    result = {
        "tasks": tasks, "source": args.tasks, "split": args.split, "max_rounds": args.max_rounds, "seed": args.seed,
        "debug": {**debug, "focal_pairs_per_task_all": t_stats["pairs_per_task"], "tasks_built": t_stats["tasks"],
                  "filters": t_stats["filters"], "timing": t_stats["timing"]},
        "resample": {"solved_at_equal_budget": round(at_budget, 4),
                     f"solved_at_{1 + args.max_rounds}": resample_solved(p_release, 1 + args.max_rounds),
                     "solved_at_1": resample_solved(p_release, 1),
                     "pairs_per_task": round(p_stats["pairs"] / tasks, 4), "timing": p_stats["timing"]},
    }
    d, r = result["debug"], result["resample"]
    print(f"{tasks} tasks of {args.tasks} ({args.split}), model {args.model}, max rounds {args.max_rounds}, "
          f"seed {args.seed}")
    print(f"debugging:  first try {d['first_try_solved']:.1%} -> solved {d['solved']:.1%} "
          f"({d['generations_per_task']:.2f} generations/task, {d['resubmissions']} resubmissions); "
          f"focal pairs/task {d['focal_pairs_per_task_all']:.3f} (over all {d['tasks_built']} tasks built)")
    print(f"resampling: 1 sample {r['solved_at_1']:.1%}, equal budget {r['solved_at_equal_budget']:.1%}, "
          f"{1 + args.max_rounds} samples {r[f'solved_at_{1 + args.max_rounds}']:.1%}; "
          f"CodeLutra pairs/task {r['pairs_per_task']:.3f}")
    for name, timing in (("debugging", d["timing"]), ("resampling", r["timing"])):
        total = timing["total_s"] or 1
        print(f"time, {name}: {timing['total_s']:.0f} s = " + ", ".join(
            f"{k[:-2]} {100 * v / total:.1f}%" for k, v in timing.items() if k != "total_s"))
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
