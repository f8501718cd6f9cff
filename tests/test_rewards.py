"""The execution reward GRPO trains on: its verdicts are `eval`'s for the same answers (SQL through Spider
predictions, Python through an EvalPlus samples file), hostile programs are contained and earn 0, a broken sandbox
gives None (counted), and an answer with no code earns minus the format weight."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from codelutra_data.builders.executors import LocalExecutor
from codelutra_data.builders.pipeline import References
from codelutra_data.builders.tasks import load_tasks
from codelutra_data.sandboxes.settings import SandboxSettings
from codelutra_data.trainers.rewards import ExecutionReward

HOSTILE = [
    "import os\nwhile True:\n    os.fork()",  # a fork bomb
    "import socket\nsocket.create_connection(('1.1.1.1', 80), timeout=2)",  # the network
    "open('/etc/passwd', 'a').write('x')",  # the host's files
    "import os\nos.kill(1, 9)",  # the worker
]


def completions(task, answers: list[str]) -> list[str]:
    """Text completions as GRPO's generation gives them: the continuation of the build's opened code fence."""
    return [a + "\n```" for a in answers]


def eval_statuses(tmp_path: Path, args: list[str]) -> list[str]:
    done = subprocess.run([sys.executable, "-m", "codelutra_data.cli", "eval", *args, "--json", "--store",
                           str(tmp_path / "store" / "results.duckdb")], capture_output=True, text=True, cwd=tmp_path,
                          timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout)
    return [s for row in map(json.loads, Path(result["per_task_file"]).read_text().splitlines())
            for s in row["statuses"]]


def test_rewards_agree_with_eval_and_contain_hostile_programs(tmp_path):
    sql = load_tasks("spider-dev", "train", 3)
    py = load_tasks("mbpp", "train", 2)
    sql_answers = [sql[0].reference, "SELECT count(*) FROM pets", "SELEC nonsense", sql[2].reference]
    py_answers = [py[0].reference, "def first_repeated_char(s):\n    return None", *HOSTILE]
    with LocalExecutor(SandboxSettings(workers=2)) as executor:
        timeouts = {}
        for tasks in (sql, py):
            refs = References.check(executor, tasks)
            assert refs.pass_rate == 1.0
            timeouts.update(refs.timeouts(executor.settings.cpu_time_s))
        reward = ExecutionReward(sql + py, executor, timeouts, "pass", 0.5)
        task_ids = [sql[0].task_id, sql[0].task_id, sql[1].task_id, sql[2].task_id] + [py[0].task_id] * len(py_answers)
        texts = completions(None, sql_answers) + completions(None, py_answers) + ["```"]  # closes the fence at once
        got = reward(prompts=[""] * len(texts), completions=texts, task_id=task_ids + [py[1].task_id])
        executions = reward.executions(task_ids, completions(None, sql_answers + py_answers))
        fraction = ExecutionReward(py, executor, timeouts, "tests-fraction")
        partial = fraction(completions=completions(None, [
            "def first_repeated_char(s):\n    return 'a' if s.startswith('a') else None"]), task_id=[py[0].task_id])
    assert got[0] == 1.0 and got[1] == 0.0 and got[2] == 0.0 and got[3] == 1.0
    assert got[4] == 1.0 and got[5] == 0.0
    assert got[6:6 + len(HOSTILE)] == [0.0] * len(HOSTILE)  # contained, and scored as failures
    assert got[-1] == -0.5  # no code: minus the format weight
    assert reward.stats.to_dict()["no_code"] == 1 and reward.stats.sandbox_failures == 0
    assert 0 < partial[0] < 1  # tests-fraction: some of the asserts pass
    assert not os.path.exists("/etc/passwd") or "x" != open("/etc/passwd").read()[-1:]

    # eval's verdicts for the same answers
    (tmp_path / "pred.txt").write_text("\n".join(" ".join(a.split()) for a in [sql_answers[0], sql_answers[2],
                                                                               sql_answers[3]]) + "\n")
    sql_eval = eval_statuses(tmp_path, ["--suite", "spider-dev", "--split", "train", "--limit", "3", "--predictions",
                                        str(tmp_path / "pred.txt")])
    assert sql_eval == [executions[0].status, executions[2].status, executions[3].status]
    samples = tmp_path / "samples.jsonl"
    samples.write_text("".join(json.dumps({"task_id": py[0].task_id, "solution": a}) + "\n" for a in py_answers)
                       + json.dumps({"task_id": py[1].task_id, "solution": py[1].reference}) + "\n")
    py_eval = eval_statuses(tmp_path, ["--suite", "mbpp", "--split", "train", "--limit", "2", "--samples",
                                       str(samples)])
    assert py_eval[:len(py_answers)] == [e.status for e in executions[4:]]


def test_a_broken_sandbox_gives_no_reward(tmp_path, monkeypatch):
    """A sandbox that cannot run anything (every worker dies at its start: here its script is missing) is not the
    program's fault: None, counted. (A wrapper script that failed so once served here; --sandbox-python now
    refuses scripts before any worker starts.)"""
    monkeypatch.setattr("codelutra_data.sandboxes.python.WORKER_SCRIPT", tmp_path / "no_worker.py")
    py = load_tasks("mbpp", "train", 1)
    with LocalExecutor(SandboxSettings(workers=1)) as executor:
        reward = ExecutionReward(py, executor, {}, "pass")
        got = reward(completions=completions(None, [py[0].reference]), task_id=[py[0].task_id])
    assert got == [None] and reward.stats.sandbox_failures == 1


def test_unknown_reward_kind_is_refused():
    from codelutra_data.errors import UserError

    with pytest.raises(UserError, match="unknown reward"):
        ExecutionReward([], None, {}, "vibes")
