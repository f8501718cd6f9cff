"""`eval --suite humaneval+ / mbpp+` gives EvalPlus's own verdicts: the same programs (references and broken
variants of them) graded by our sandbox, from the Hub copy's layout served by the stand-in, and by EvalPlus's own
grader (`evalplus.eval.untrusted_check`, PyPI 0.3.1, in .venv-evalplus) from its release-record form, base and plus,
program by program."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from evalplus_fixtures import hub_rows, humaneval_problems, mbpp_problems, parquet, program
from hub_standin import HubStandin

ROOT = Path(__file__).resolve().parent.parent
EVALPLUS = ROOT / ".venv-evalplus" / "bin" / "python"
PINNED = {"humaneval+": ("evalplus/humanevalplus", "d32357cf319e50e9c8d8dab5ea876c72b0fd321b"),
          "mbpp+": ("evalplus/mbppplus", "b2d74c91837c3f2a20c1299ae98133cbe7cfa077")}
OFFICIAL = '''
import ast, json, sys
from evalplus.eval import untrusted_check
from evalplus.gen.util import trusted_exec

job = json.load(open(sys.argv[1]))
verdicts = {}
for p in job:
    base = [ast.literal_eval(x) for x in p["base_input"]]
    plus = [ast.literal_eval(x) for x in p["plus_input"]]
    expected_base, base_time = trusted_exec(p["reference"], base, p["entry_point"], record_time=True)
    expected_plus, plus_time = trusted_exec(p["reference"], plus, p["entry_point"], record_time=True)
    for i, code in enumerate(p["programs"]):
        b = untrusted_check(p["dataset"], code, base, p["entry_point"], expected_base, p["atol"], base_time,
                            fast_check=True)[0]
        q = untrusted_check(p["dataset"], code, plus, p["entry_point"], expected_plus, p["atol"], plus_time,
                            fast_check=True)[0]
        verdicts[p["task_id"] + "#" + str(i)] = [b, q]
print(json.dumps(verdicts))
'''


def programs(problem: dict) -> list[str]:
    """The reference, and variants that break on a base input, on a plus input (wrong, raising; one looping),
    that are off by a little or a lot on every float, or return a set-equal reordering."""
    first_base, first_plus = problem["base_input"][0], problem["plus_input"][0]
    out = [program(problem, "reference"), program(problem, "wrong", first_base),
           program(problem, "wrong", first_plus), program(problem, "raises", first_plus),
           program(problem, "close"), program(problem, "far")]
    if problem["task_id"] == "HumanEval/13":
        out.append(program(problem, "loops", first_plus))
    if problem["task_id"] == "Mbpp/2":
        out.append(program(problem, "reordered"))
    return out + rule_programs(problem)


def rule_programs(problem: dict) -> list[str]:
    """Honest programs whose verdicts depend on what EvalPlus's harness does to the program's process: its guard
    (open, exit, os functions, blocked modules), swallowed output and unreadable stdin, fresh processes for base and
    plus inputs, room for threads, and a solution graded without the task's prompt."""
    reference, entry = problem["reference"], problem["entry_point"]
    wrapped = reference.replace(f"def {entry}(", "def _reference(", 1)
    calls = len(problem["base_input"]) + 1  # the first plus input's call, were both graded in one process
    out = ["open('scratch.txt', 'w').write('x')\n" + reference,  # open is None there: fails
           "try:\n    exit(0)\nexcept Exception:\n    pass\n" + reference,  # exit is None: a TypeError, caught
           "import os\nos.getcwd()\n" + reference,  # disabled: fails
           "import resource\n" + reference,  # blocked: fails
           "import sys\nsys.stdin.read()\n" + reference,  # reading stdin raises: fails
           "import threading\n_t = [threading.Thread(target=abs, args=(1,)) for _ in range(40)]\n"
           "[t.start() for t in _t]\n[t.join() for t in _t]\n" + reference,  # 40 threads: fine
           wrapped + f"\n\ndef {entry}(*args):\n    print('x' * 350000)\n    return _reference(*args)\n",  # prints
           wrapped + f"\n\n_calls = [0]\n\n\ndef {entry}(*args):\n    _calls[0] += 1\n    out = _reference(*args)\n"
                     f"    return None if _calls[0] == {calls} else out\n"]  # a state kept across calls
    if "from typing import" in reference:
        out.append("\n".join(line for line in reference.splitlines() if not line.startswith("from typing")))
    return out


def official_verdicts(problems: list[dict], tmp_path: Path) -> dict[str, tuple[bool, bool]]:
    assert EVALPLUS.exists(), "EvalPlus's grader runs from its own environment: `make test` builds .venv-evalplus"
    job = [{**p, "base_input": [repr(i) for i in p["base_input"]], "plus_input": [repr(i) for i in p["plus_input"]],
            "programs": programs(p)} for p in problems]
    (tmp_path / "job.json").write_text(json.dumps(job))
    (tmp_path / "official.py").write_text(OFFICIAL)
    done = subprocess.run([str(EVALPLUS), str(tmp_path / "official.py"), str(tmp_path / "job.json")],
                          capture_output=True, text=True, timeout=900, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    raw = json.loads(done.stdout.strip().splitlines()[-1])
    return {key: (b == "pass", b == "pass" and q == "pass") for key, (b, q) in raw.items()}


def our_verdicts(suite: str, problems: list[dict], tmp_path: Path) -> tuple[dict[str, tuple[bool, bool]], dict]:
    repo, commit = PINNED[suite]
    with HubStandin(tmp_path / "hub") as hub:
        hub.seed(repo, {"data/test-00000-of-00001.parquet": parquet(hub_rows(problems))}, oid=commit)
        samples = tmp_path / "samples.jsonl"
        samples.write_text("".join(json.dumps({"task_id": p["task_id"], "solution": code}) + "\n"
                                   for p in problems for code in programs(p)))
        env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "HUGGING"))}
        env.update(HF_ENDPOINT=hub.url, HF_HOME=str(tmp_path / "hf"), HF_HUB_CACHE=str(tmp_path / "hf" / "hub"),
                   HF_DATASETS_CACHE=str(tmp_path / "hf" / "datasets"), HF_HUB_DISABLE_XET="1")
        done = subprocess.run([sys.executable, "-m", "codelutra_data.cli", "eval", "--suite", suite, "--samples",
                               str(samples), "--json"], cwd=tmp_path, env=env, capture_output=True, text=True,
                              timeout=900)
        assert done.returncode == 0, done.stderr[-3000:]
        assert hub.errors == []
    result = json.loads(done.stdout)
    verdicts = {}
    for row in map(json.loads, Path(result["per_task_file"]).read_text().splitlines()):
        for i, (base, plus) in enumerate(zip(row["base_statuses"], row["passed"])):
            verdicts[f"{row['task_id']}#{i}"] = (base == "passed", plus)
    return verdicts, result


@pytest.mark.parametrize("suite, problems", [("humaneval+", humaneval_problems), ("mbpp+", mbpp_problems)])
def test_verdicts_equal_evalplus_own_grader(suite, problems, tmp_path):
    chosen = problems()
    ours, result = our_verdicts(suite, chosen, tmp_path)
    official = official_verdicts(chosen, tmp_path)
    assert ours == official
    # the comparison means something: every kind of verdict occurs
    assert {v for v in official.values()} == {(True, True), (True, False), (False, False)}
    assert result["suite"]["revision"] == PINNED[suite][1] and result["suite"]["variants"] == ["base"]
    assert set(result["metrics"]) == {"pass@1", "base_pass@1"}
    assert result["metrics"]["base_pass@1"]["value"] > result["metrics"]["pass@1"]["value"]
