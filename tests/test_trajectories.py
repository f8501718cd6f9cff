"""The debug loop's control flow, with the real Python sandbox and a backend that replays fixed answers.

The real model cannot be steered into a chosen sequence of attempts; these tests pin down what the loop does
with each sequence (batching across tasks, stop rules, resubmissions, resume). The real model runs the same
loop end to end in test_trajectories_slow.py.
"""

from __future__ import annotations

import json

import pytest

from codelutra_data.builders.executors import LocalExecutor
from codelutra_data.sandboxes.settings import SandboxSettings
from codelutra_data.builders.tasks.python_sources import python_jsonl_task
from codelutra_data.builders.trajectories import (TrajectoryOptions, run_trajectories, sft_messages,
                                                  trajectory_stats)
from codelutra_data.models.base import Completion, SamplingParams
from codelutra_data.models.spec import ModelRef
from codelutra_data.store import RunStore

GOOD = "def add(a, b):\n    return a + b"
WRONG = "def add(a, b):\n    return a * b"
# task -> the program written at each attempt (index = earlier attempts in the chat + repeat notices)
SCRIPTS = {
    "fixed-after-a-repeat": [WRONG, WRONG, GOOD],
    "stuck": [WRONG, WRONG, WRONG, WRONG],
    "first-try": [GOOD],
    "never": ["def add(a, b):\n    return 0", "def add(a, b):\n    return 1", "def add(a, b):\n    return 2",
              "def add(a, b):\n    return 3"],
}


class ReplayBackend:
    """Answers each prompt with the scripted program for its task and attempt; records every call."""

    name = "replay"
    version = "replay 1"
    ref = ModelRef("replay", "", "replay-model", "test")

    def __init__(self):
        self.calls: list[list[str]] = []

    def generate(self, prompts, n, sampling, seed):
        out, tasks = [], []
        for prompt in prompts:
            task_id = prompt[1]["content"].split(":", 1)[0]
            attempt = sum(m["role"] == "assistant" for m in prompt) - 1 + prompt[-2]["content"].count("repeated")
            tasks.append(task_id)
            out.append([Completion(SCRIPTS[task_id][attempt] + "\n```", 8, "stop")] * n)
        self.calls.append(tasks)
        return out


@pytest.fixture(scope="module")
def tasks():
    return [python_jsonl_task({"task_id": name, "prompt": f"{name}: write add(a, b)", "entry_point": "add",
                               "tests": ["assert add(1, 2) == 3", "assert add(2, 2) == 4"], "reference": GOOD},
                              f"demo.jsonl:{n}", "demo", n - 1) for n, name in enumerate(SCRIPTS, 1)]


@pytest.fixture(scope="module")
def executor():
    with LocalExecutor(SandboxSettings(cpu_time_s=3.0, workers=2)) as ex:
        yield ex


SAMPLING = SamplingParams(0.8, 0.95, 64, stop=("```",))


def run(tasks, executor, store=None, **options):
    backend = ReplayBackend()
    opts = TrajectoryOptions(**{"max_rounds": 3, "batch_size": 32, **options})
    trajectories = run_trajectories(tasks, backend, executor, SAMPLING, opts, store=store, build_id="b")
    return backend, {t.task_id: t for t in trajectories}


def test_rounds_are_batched_across_tasks_and_stop_as_specified(tasks, executor):
    backend, traj = run(tasks, executor)
    # one generate call per round, each holding every trajectory still open (never one call per task)
    assert backend.calls == [list(SCRIPTS), ["fixed-after-a-repeat", "stuck", "never"],
                             ["fixed-after-a-repeat", "stuck", "never"], ["never"]]
    fixed = traj["fixed-after-a-repeat"]
    assert fixed.solved and fixed.solved_round == 2 and fixed.stop_reason == "passed"
    assert [r["status"] for r in fixed.rounds] == ["wrong_answer", "wrong_answer", "passed"]
    assert [r["resubmission_of"] for r in fixed.rounds] == [-1, 0, -1] and fixed.resubmissions == 1
    assert fixed.rounds[1]["feedback"] == ("Your last answer repeated your attempt number 1, which already failed. "
                                           "Write a different program.")
    assert "Your function returned: 2" in fixed.rounds[0]["feedback"] and fixed.rounds[2]["feedback"] == ""
    stuck = traj["stuck"]
    assert stuck.stop_reason == "repeated" and stuck.attempts == 3 and not stuck.solved
    first = traj["first-try"]
    assert first.solved_round == 0 and first.attempts == 1
    never = traj["never"]
    assert never.stop_reason == "max_rounds" and never.attempts == 4 and never.solved_round == -1
    stats = trajectory_stats(list(traj.values()), 3)
    assert stats["first_try_pass_rate"] == 0.25 and stats["final_solve_rate"] == 0.5
    assert stats["cumulative_solve_rate"] == [0.25, 0.25, 0.5, 0.5]
    assert stats["solved_round_histogram"] == {"0": 1, "1": 0, "2": 1, "3": 0, "unsolved": 2}
    assert stats["stop_reasons"] == {"passed": 2, "max_rounds": 1, "repeated": 1, "sandbox_error": 0}
    assert stats["resubmissions"] == 3


def test_resubmissions_are_not_executed_again(tasks, executor, tmp_path):
    store = RunStore(tmp_path / "run")
    _, traj = run(tasks, executor, store)
    repeat = traj["stuck"].rounds[1]
    earlier = store.executions.get(traj["stuck"].rounds[0]["sample_id"])
    copied = store.executions.get(repeat["sample_id"])
    assert copied["duration_s"] == 0.0 and copied["status"] == earlier["status"] and copied["feedback"] == earlier["feedback"]
    revision = store.samples.get(repeat["sample_id"])
    assert revision["round"] == 1 and revision["parent_id"] == traj["stuck"].rounds[0]["sample_id"]
    assert revision["template"].startswith("revise-v1+feedback-v1@")


def test_sft_view_is_the_conversation_that_led_to_the_fix(tasks, executor):
    _, traj = run(tasks, executor)
    task = next(t for t in tasks if t.task_id == "fixed-after-a-repeat")
    messages = sft_messages(task, traj["fixed-after-a-repeat"])
    # the repeated attempt is not shown twice: its notice joins the feedback on the first attempt
    assert [m["role"] for m in messages] == ["system", "user", "assistant", "user", "assistant"]
    assert messages[-1]["content"] == f"```python\n{GOOD}\n```"
    assert "Fix the program" in messages[3]["content"] and "Your function returned" in messages[3]["content"]
    assert "Your last answer repeated your attempt number 1" in messages[3]["content"]


def test_resume_after_a_torn_store_redoes_only_what_is_missing(tasks, executor, tmp_path):
    full_backend, full = run(tasks, executor, RunStore(tmp_path / "full"))
    store_dir = tmp_path / "cut"
    run(tasks, executor, RunStore(store_dir))
    lines = (store_dir / "samples.jsonl").read_text().splitlines(keepends=True)
    kept = [json.loads(line) for line in lines[:6]]
    (store_dir / "samples.jsonl").write_text("".join(lines[:6]) + lines[6][:20])  # a torn write, as after kill -9
    backend, resumed = run(tasks, executor, RunStore(store_dir))
    assert resumed == full
    regenerated = [t for call in backend.calls for t in call]
    assert len(regenerated) < sum(len(c) for c in full_backend.calls)
    records = [json.loads(line) for line in (store_dir / "samples.jsonl").read_text().splitlines()]
    assert records[:6] == kept
    per_attempt = [(r["task_id"], r["sample_index"], r["round"]) for r in records]
    assert len(per_attempt) == len(set(per_attempt)) == sum(t.attempts for t in full.values())
    again, _ = run(tasks, executor, RunStore(store_dir))
    assert again.calls == []  # everything recorded: nothing generated


def test_max_rounds_zero_and_several_trajectories_per_task(tasks, executor):
    backend, traj = run(tasks[:1], executor, max_rounds=0)
    assert backend.calls == [["fixed-after-a-repeat"]] and traj["fixed-after-a-repeat"].stop_reason == "max_rounds"
    backend = ReplayBackend()
    many = run_trajectories(tasks[:2], backend, executor, SAMPLING,
                            TrajectoryOptions(trajectories_per_task=3, max_rounds=1, batch_size=4))
    assert [(t.task_id, t.trajectory_index) for t in many] == [(tasks[0].task_id, i) for i in range(3)] + [
        (tasks[1].task_id, i) for i in range(3)]
    # round 0: chunks of batch_size // 3 = 1 task (3 sequences); round 1: chunks of 4 trajectories
    assert [len(c) for c in backend.calls] == [1, 1, 4, 2]


def test_a_build_that_solved_nothing_keeps_the_focal_pairs_as_its_default_config(tmp_path, capsys):
    """Six MBPP tasks, every attempt wrong (a scripted server given no references): the release still has its
    focal_pairs and sft configs, empty with their schemas, focal_pairs the default; the summary says so."""
    import pyarrow.parquet as pq
    import yaml

    from answer_server import answer_server
    from codelutra_data.builders.release import pairs_schema
    from codelutra_data.cli import main

    with answer_server() as url:
        code = main(["build", "--mode", "trajectories", "--tasks", "mbpp", "--split", "train", "--limit", "6",
                     "--trajectories-per-task", "1", "--max-rounds", "1", "--backend", "openai", "--base-url", url,
                     "--model", "served-model", "--tokenizer", "smollm2-135m", "--name", "none", "--version", "0.1.0",
                     "--runs-dir", str(tmp_path / "runs"), "--releases-dir", str(tmp_path / "releases")])
    captured = capsys.readouterr()
    assert code == 0, captured.err[-2000:]
    assert "no focal pairs were made" in captured.out + captured.err
    release = tmp_path / "releases" / "none" / "0.1.0"
    text = (release / "README.md").read_text()
    configs = yaml.safe_load(text.split("---")[1])["configs"]
    assert [c["config_name"] for c in configs] == ["focal_pairs", "trajectories", "sft", "samples"]
    assert configs[0]["default"] is True and "This build made no focal pairs" in text
    focal = pq.read_table(next((release / "focal_pairs").glob("*.parquet")))
    assert focal.num_rows == 0 and focal.schema.equals(pairs_schema())
    assert pq.read_table(next((release / "sft").glob("*.parquet"))).num_rows == 0
    assert sum(pq.read_table(f).num_rows for f in (release / "trajectories").glob("*.parquet")) == 6
    code = main(["train", "--data", str(release), "--out", str(tmp_path / "model")])
    assert code == 2 and capsys.readouterr().err.strip().endswith("has no pairs")
    assert not (tmp_path / "model").exists()
