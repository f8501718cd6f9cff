"""The hack battery: programs that try to pass without being right (tests/forgery.py), against every kind of
harness and GRPO's reward in each mode. None earns a pass, and none passes more tests than an honest wrong program
(which is what `tests-fraction` pays)."""

from __future__ import annotations

import json
import platform
from pathlib import Path

import pytest

from codelutra_data.builders.executors import LocalExecutor
from codelutra_data.builders.tasks.adapters.base import Row, SourceContext
from codelutra_data.builders.tasks.adapters.bigcodebench import BigCodeBench
from codelutra_data.builders.tasks.adapters.evalplus import EvalPlus
from codelutra_data.builders.tasks.adapters.livecodebench import LiveCodeBench
from codelutra_data.builders.tasks.python_sources import ds1000_task, python_jsonl_task
from codelutra_data.sandboxes.settings import SandboxSettings
from codelutra_data.trainers.rewards import ExecutionReward

from bcb_fixtures import problems as bcb_problems
from evalplus_fixtures import hub_rows, humaneval_problems, mbpp_problems
from forgery import (BCB_BODIES, BCB_HONEST, BODIES, DS1000_BODIES, DS1000_HONEST, HONEST, STDIN_BODIES,
                     STDIN_HONEST, attack)
from lcb_fixtures import problems as lcb_problems

pytestmark = pytest.mark.skipif(platform.system() != "Linux", reason="bubblewrap needs Linux")

CHECK = """def check(candidate):
    assert candidate(1, 2) == 3
    assert candidate(2, 2) == 4
    assert abs(candidate(0.5, 0.25) - 0.75) < 1e-9
    assert candidate(-1, 1) == 0
    assert sorted([candidate(1, 1), candidate(2, 2)]) == [2, 4]
    for got, want in zip(map(candidate, [3, 4], [4, 5]), [7, 9]):
        assert got == want
    assert isinstance(candidate(1, 1), int) and candidate(5, 5) == 10
"""


def source(name: str):
    return SourceContext(name=name, label=name, file=lambda p: p)


def tasks() -> dict:
    """One task per kind of harness: HumanEval's check(candidate), MBPP's asserts by name, EvalPlus's HumanEval+
    and MBPP+, LiveCodeBench's LeetCode method and its stdin program."""
    out = {"check(candidate)": python_jsonl_task(
        {"task_id": "add", "prompt": "Add two numbers.", "tests": CHECK, "reference": "def add(a, b):\n    return a + b\n",
         "entry_point": "add"}, "battery:1", "battery", 0)}
    out["asserts by name"] = python_jsonl_task(
        {"task_id": "add2", "prompt": "Add two numbers.", "reference": "def add(a, b):\n    return a + b\n",
         "tests": ["assert add(1, 2) == 3", "assert add(-1, 1) == 0", "assert add('a', 'b') == 'ab'",
                   "assert add([1], [2]) == [1, 2]", "import math\nassert math.isclose(add(0.1, 0.2), 0.3)"]},
        "battery:2", "battery", 1)
    he = hub_rows(humaneval_problems()[:2])
    mbpp = hub_rows(mbpp_problems()[:2])
    ep = EvalPlus().tasks([Row(f"ep:{i}", r, "test") for i, r in enumerate(he + mbpp)], source("evalplus"))
    out["HumanEval+"], out["MBPP+"] = ep[0], ep[2]
    lcb = LiveCodeBench().tasks([Row(f"lcb:{i}", r, "test") for i, r in enumerate(lcb_problems())],
                                source("livecodebench"))
    out["LiveCodeBench method"] = next(t for t in lcb if t.task_id == "2001")
    out["LiveCodeBench stdin"] = next(t for t in lcb if t.task_id == "abc001_a")
    ds = [json.loads(line) for line in (Path(__file__).parent / "data" / "ds1000_fixture.jsonl").read_text().splitlines()]
    out["DS-1000"] = ds1000_task(ds[1], "ds1000:1", 1)
    bcb = BigCodeBench().tasks([Row("bcb:0", bcb_problems()[0], "v0.1.4")], source("bigcodebench"))
    out["BigCodeBench"] = next(t for t in bcb if t.split == "complete")
    return out


TASKS = tasks()


SHARED = {"LiveCodeBench stdin": (STDIN_BODIES, STDIN_HONEST), "DS-1000": (DS1000_BODIES, DS1000_HONEST),
          "BigCodeBench": (BCB_BODIES, BCB_HONEST)}


def programs(kind: str, task) -> dict[str, str]:
    if kind in SHARED:
        return dict(SHARED[kind][0])
    entry = task.context.get("entry_point") or "pairSum"
    return {name: attack(name, entry, method=kind == "LiveCodeBench method") for name in BODIES}


@pytest.fixture(scope="module")
def executor():
    with LocalExecutor(SandboxSettings(cpu_time_s=4.0, wall_time_s=12.0, workers=2)) as ex:
        yield ex


@pytest.mark.parametrize("kind", list(TASKS))
def test_no_attack_passes_or_beats_a_wrong_program(executor, kind):
    task = TASKS[kind]
    (reference,) = executor.run([(task, "reference", task.reference)]) if task.reference else [None]
    assert reference is None or reference.status == "passed", reference
    chosen = programs(kind, task)
    verdicts = dict(zip(chosen, executor.run([(task, name, code) for name, code in chosen.items()])))
    honest = SHARED[kind][1] if kind in SHARED else HONEST
    for name, verdict in verdicts.items():
        assert verdict.status not in ("passed", "sandbox_error"), (kind, name, verdict)
    most = max(verdicts[name].tests_passed for name in honest)
    for name, verdict in verdicts.items():
        assert verdict.tests_passed <= most, (kind, name, verdict)


@pytest.mark.parametrize("mode", ["pass", "tests-fraction"])
def test_no_attack_earns_more_reward_than_a_wrong_program(executor, mode):
    task = TASKS["check(candidate)"]
    chosen = programs("check(candidate)", task)
    reward = ExecutionReward([task], executor, {}, mode)
    got = dict(zip(chosen, reward(completions=[code + "\n```" for code in chosen.values()],
                                  task_id=[task.task_id] * len(chosen))))
    assert reward.stats.sandbox_failures == 0
    most = max(got[name] for name in HONEST)
    assert most < 1.0
    assert all(value <= most for value in got.values()), got
