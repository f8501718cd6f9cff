"""Feedback a reviser can act on, for every status of both domains, built from real sandbox executions."""

from __future__ import annotations

import re

import pytest

from codelutra_data.builders.executors import LocalExecutor
from codelutra_data.sandboxes.settings import SandboxSettings, job_for
from codelutra_data.builders.feedback import (MESSAGE_LIMIT, attempts_shown, conversation, feedback_id,
                                               feedback_message, repeat_notice, revision_turn)
from codelutra_data.builders.tasks.python_sources import python_jsonl_task
from codelutra_data.builders.tasks.sql_sources import make_sql_task
from codelutra_data.records import STATUSES
from codelutra_data.sandboxes.python import _execution
from codelutra_data.sandboxes.pool import WorkerLost

# Nothing of our own harness may leak into what the model reads.
HARNESS_TRACES = re.compile(r'File "|Traceback|worker.py|judge.py|peer.py|sandboxes/|<test \d+>|<candidate>|<setup>|run_harness')

PY_TESTS = ["assert add(1, 2) == 3", "assert add(2, 2) == 4", "assert add(-1, 1) == 0"]
PY_PROGRAMS = {
    "passed": "def add(a, b):\n    return a + b",
    "wrong_answer": "def add(a, b):\n    return a * b",
    "syntax_error": "def add(a, b)\n    return a + b",
    "runtime_error": "def add(a, b):\n    total = a + b\n    raise ValueError('negative total ' + str(total))",
    "timeout": "def add(a, b):\n    while True:\n        pass",
    "oom": "def add(a, b):\n    block = bytearray(20 * 2**30)\n    return a + b",
    "no_code": None,
}


@pytest.fixture(scope="module")
def py_results():
    task = python_jsonl_task({"task_id": "add", "prompt": "Write add(a, b).", "tests": PY_TESTS,
                              "reference": PY_PROGRAMS["passed"], "entry_point": "add"}, "demo.jsonl:1", "demo", 0)
    with LocalExecutor(SandboxSettings(cpu_time_s=2.0, workers=2)) as executor:
        items = [(task, name, code) for name, code in PY_PROGRAMS.items()]
        executions = dict(zip(PY_PROGRAMS, executor.run(items)))
    job = job_for(task, "lost", PY_PROGRAMS["passed"], SandboxSettings())
    executions["sandbox_error"] = _execution(job, WorkerLost("worker died twice"), "python-bwrap", {"cpu_time_s": 2.0, "wall_time_s": 30.0})
    return task, executions


def check_bounded(message: str) -> None:
    assert 0 < len(message) <= MESSAGE_LIMIT
    assert not HARNESS_TRACES.search(message), message


def test_every_python_status_has_feedback(py_results):
    task, executions = py_results
    assert {name: e.status for name, e in executions.items()} == {s: s for s in STATUSES}
    for name, execution in executions.items():
        message = feedback_message(task, PY_PROGRAMS.get(name), execution)
        check_bounded(message)
    msg = lambda name: feedback_message(task, PY_PROGRAMS.get(name), executions[name])  # noqa: E731
    assert "passed every test" in msg("passed")
    wrong = msg("wrong_answer")
    assert "1 of 3 tests passed" in wrong and "assert add(1, 2) == 3" in wrong and "Your function returned: 2" in wrong
    syntax = msg("syntax_error")
    assert "SyntaxError" in syntax and "At line 1 of your program: def add(a, b)" in syntax
    runtime = msg("runtime_error")
    assert "ValueError: negative total 3" in runtime
    assert "At line 3 of your program: raise ValueError('negative total ' + str(total))" in runtime
    assert "The failing test:\nassert add(1, 2) == 3" in runtime
    assert "time limit of 2 s" in msg("timeout") and "infinite loop" in msg("timeout")
    assert "out of memory" in msg("oom") and "At line 2 of your program: block = bytearray" in msg("oom")
    assert "no Python code" in msg("no_code")
    assert "could not be checked" in msg("sandbox_error")


def test_returned_values_are_bounded_and_never_run_program_code(tmp_path):
    hostile = ("class Sneaky:\n    def __repr__(self):\n        while True:\n            pass\n"
               "def add(a, b):\n    return Sneaky()\n")
    huge = "def add(a, b):\n    return list(range(10**6))\n"
    text = "def add(a, b):\n    return 'x' * 5000\n"
    task = python_jsonl_task({"task_id": "add", "prompt": "p", "tests": PY_TESTS, "reference": PY_PROGRAMS["passed"],
                              "entry_point": "add"}, "demo.jsonl:1", "demo", 0)
    with LocalExecutor(SandboxSettings(cpu_time_s=3.0, workers=1)) as executor:
        sneaky, big, long_text = executor.run([(task, "a", hostile), (task, "b", huge), (task, "c", text)])
    assert sneaky.status == "wrong_answer" and sneaky.returned == "<Sneaky object>"
    assert big.status == "wrong_answer" and big.returned.startswith("[0, 1, 2") and len(big.returned) <= 200
    assert long_text.status == "wrong_answer" and len(long_text.returned) <= 200
    for e, code in ((sneaky, hostile), (big, huge), (long_text, text)):
        check_bounded(feedback_message(task, code, e))


@pytest.fixture(scope="module")
def sql_results(tmp_path_factory):
    import shutil

    from conftest import SPIDER_DBS

    folder = tmp_path_factory.mktemp("sql")
    db = folder / "concert_singer.sqlite"
    shutil.copy(SPIDER_DBS / "concert_singer.sqlite", db)
    task = make_sql_task("q1", "demo", "How many singers are there?", "SELECT count(*) FROM singer", db, "train")
    gone = folder / "gone.sqlite"
    shutil.copy(db, gone)
    missing_task = make_sql_task("q2", "demo", "How many singers are there?", "SELECT count(*) FROM singer", gone,
                                 "train")
    gone.unlink()
    programs = {
        "passed": "SELECT count(*) FROM singer",
        "wrong_answer": "SELECT count(*) FROM stadium",
        "syntax_error": "SELECT count(*)\nFRM singer",
        "runtime_error": "SELECT count(*)\nFROM singers",
        "timeout": "WITH RECURSIVE r(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM r) SELECT count(*) FROM r",
        "oom": "SELECT randomblob(600 * 1024 * 1024)",
        "no_code": None,
    }
    with LocalExecutor(SandboxSettings(cpu_time_s=1.0, workers=2)) as executor:
        executions = dict(zip(programs, executor.run([(task, n, c) for n, c in programs.items()])))
        executions["sandbox_error"] = executor.run([(missing_task, "x", "SELECT 1")])[0]
    programs["sandbox_error"] = "SELECT 1"
    return task, programs, executions


def test_every_sql_status_has_feedback(sql_results):
    task, programs, executions = sql_results
    assert {name: e.status for name, e in executions.items()} == {s: s for s in STATUSES}
    msg = {name: feedback_message(task, programs[name], e) for name, e in executions.items()}
    for message in msg.values():
        check_bounded(message)
    assert "correct result" in msg["passed"]
    assert "expected 1 rows x 1 columns" in msg["wrong_answer"] and "(9,)" in msg["wrong_answer"]
    assert 'near "singer": syntax error' in msg["syntax_error"] and "At line 2 of your query: FRM singer" in msg["syntax_error"]
    runtime = msg["runtime_error"]
    assert "no such table: singers" in runtime and "At line 2 of your query: FROM singers" in runtime
    assert "singer: Singer_ID, Name, Country" in runtime and "stadium:" in runtime
    assert "time limit of 1 s" in msg["timeout"]
    assert "out of memory" in msg["oom"]
    assert "no SQL query" in msg["no_code"]
    assert "could not be checked" in msg["sandbox_error"] and "cannot open database" in msg["sandbox_error"]


def test_repeat_notice_and_the_revision_chat(sql_results):
    task, programs, executions = sql_results
    feedback = feedback_message(task, programs["runtime_error"], executions["runtime_error"])
    attempt = "```sql\nSELECT count(*)\nFROM singers\n```"
    rounds = [{"raw_output": attempt, "feedback": feedback, "resubmission_of": -1},
              {"raw_output": attempt, "feedback": repeat_notice("sql", 1), "resubmission_of": 0}]
    assert attempts_shown(rounds[:1]) == [(attempt, feedback)]
    # the repeat stays out of the chat; its notice joins the feedback on the attempt it repeated
    (shown,) = attempts_shown(rounds)
    assert shown == (attempt, f"{feedback}\nYour last answer repeated your attempt number 1, which already "
                              f"failed. Write a different query.")
    chat = conversation(task, [shown])
    assert [m["role"] for m in chat] == ["system", "user", "assistant", "user"]
    assert chat[:2] == task.prompt and chat[3]["content"] == revision_turn(shown[1], "sql")
    assert chat[3]["content"].endswith("Reply with the complete corrected query in one ```sql code block.")
    assert re.fullmatch(r"revise-v1\+feedback-v1@[0-9a-f]{16}", feedback_id())


def test_feedback_is_bounded_for_huge_errors(tmp_path):
    task = python_jsonl_task({"task_id": "add", "prompt": "p", "tests": PY_TESTS, "reference": PY_PROGRAMS["passed"],
                              "entry_point": "add"}, "demo.jsonl:1", "demo", 0)
    program = "def add(a, b):\n    raise RuntimeError('x' * 100000)\n"
    with LocalExecutor(SandboxSettings(cpu_time_s=3.0, workers=1)) as executor:
        (execution,) = executor.run([(task, "big", program)])
    message = feedback_message(task, program, execution)
    check_bounded(message)
    assert "RuntimeError: xxx" in message and "At line 2" in message


def test_returned_numpy_and_pandas_values_are_shown_unless_they_hold_objects():
    programs = {"array": "import numpy as np\ndef f():\n    return np.arange(3)",
                "frame": "import pandas as pd\ndef f():\n    return pd.DataFrame({'a': [1, 2]})",
                "objects": "import pandas as pd\nclass Loop:\n    def __repr__(self):\n        while True:\n"
                           "            pass\ndef f():\n    return pd.Series([Loop()])"}
    task = python_jsonl_task({"task_id": "f", "prompt": "p", "tests": ["assert f() is None"],
                              "reference": "def f():\n    return None", "entry_point": "f"}, "demo.jsonl:1", "demo", 0)
    with LocalExecutor(SandboxSettings(cpu_time_s=3.0, workers=1)) as executor:
        results = dict(zip(programs, executor.run([(task, n, c) for n, c in programs.items()])))
    assert {e.status for e in results.values()} == {"wrong_answer"}
    assert results["array"].returned == "array([0, 1, 2])"
    assert "a" in results["frame"].returned and "2" in results["frame"].returned
    assert results["objects"].returned == "<Series object>"  # its repr would run the program's __repr__
