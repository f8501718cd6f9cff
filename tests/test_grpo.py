"""`train --method grpo`: TRL's real GRPOTrainer with the bundled model, rewarded by our sandboxes, for two steps
on a few Spider and MBPP train tasks; its report and card carry the per-step rewards, and no validation or test task
reaches it. The bundled model at this size rarely writes a passing answer, so the test asserts shapes, not scores
(the reward's verdicts are checked against eval's in tests/test_rewards.py)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from codelutra_data.builders.tasks import load_tasks


def train(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "codelutra_data.cli", "train", "--method", "grpo", *args],
                          capture_output=True, text=True, cwd=tmp_path, timeout=1800)


@pytest.mark.parametrize("source", ["spider-dev", "mbpp"])
def test_two_grpo_steps_with_the_real_trainer(tmp_path, source):
    out = tmp_path / "model"
    done = train(tmp_path, "--tasks", source, "--limit", "2", "--max-steps", "2", "--num-generations", "2",
                 "--batch-size", "1", "--max-completion-length", "24", "--seed",
                 "0", "--out", str(out), "--json")
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout)
    assert report["method"] == "grpo" and report["metrics"]["steps"] == 2 and "GRPO" in report["loss"]
    context = json.loads((out / "train_report.json").read_text())
    grpo = context["grpo"]
    assert [s["step"] for s in grpo["steps"]] == [1, 2]
    for step in grpo["steps"]:
        assert {"reward", "reward_std", "kl", "completions/mean_length", "pass_rate"} <= set(step)
        assert 0 <= step["pass_rate"] <= 1 and step["completions/mean_length"] <= 24
    assert grpo["reward_stats"]["completions"] == 2 * 2 * 1  # steps x generations x prompts per step
    assert grpo["reward_stats"]["sandbox_failures"] == 0 and grpo["tasks"] == 2
    train_ids = {t.task_id for t in load_tasks(source, "train", 2)}
    assert context["data"]["split"] == "train" and len(train_ids) == 2
    card = (out / "README.md").read_text()
    assert "## Reward (GRPO)" in card and "| 2 |" in card
    assert (out / "model.safetensors").exists()


def test_multi_turn_grpo_trains_on_the_models_own_tokens(tmp_path):
    out = tmp_path / "model"
    done = train(tmp_path, "--tasks", "spider-dev", "--turns", "2", "--limit", "2", "--max-steps", "1",
                 "--num-generations", "2", "--max-completion-length", "16", "--out", str(out), "--json")
    assert done.returncode == 0, done.stderr[-3000:]
    # --batch-size 4 (the default) asks for more prompts than the 2 tasks: lowered, so the step runs
    assert json.loads(done.stdout)["batch_size_lowered_to"] == 2 and "lowered to 2" in done.stderr
    context = json.loads((out / "train_report.json").read_text())
    grpo = context["grpo"]
    assert context["config"]["batch_size"] == 2 and context["metrics"]["steps"] == 1
    assert grpo["turns"] == 2 and grpo["rollout"]["rollouts"] == 4
    assert sum(grpo["rollout"]["turns"].values()) == 4 and set(grpo["rollout"]["turns"]) <= {"1", "2"}
    step = grpo["steps"][0]
    assert 1 <= step["turns"] <= 2 and 0 <= step["first_pass_rate"] <= step["pass_rate"] + 1e-9
    # the logged length counts the model's tokens only: at most 16 per attempt, feedback turns excluded
    assert step["completions/mean_length"] <= 16 * step["turns"]
    assert grpo["reward_stats"]["completions"] == 4  # the final attempts, graded once (by the rollout)
    card = (out / "README.md").read_text()
    assert "up to 2 attempts per completion" in card and "feedback tokens carry no loss" in card


@pytest.mark.parametrize("args, says", [
    (["--tasks", "spider-dev", "--split", "test"], "train split only"),
    (["--tasks", "spider-dev", "--split", "validation"], "train split only"),
    (["--data", "releases/x/0.1.0"], "add --tasks"),
    (["--tasks", "mbpp", "--data", "releases/x/0.1.0"], "--data is for the offline methods"),
    (["--tasks", "humaneval"], "no tasks in split 'train'"),
    # no option value may take the machine down: a step that cannot fit is refused before it starts
    (["--tasks", "mbpp", "--limit", "2", "--batch-size", "512", "--num-generations", "1024"], "generated at once"),
    (["--tasks", "mbpp", "--limit", "2", "--batch-size", "8", "--num-generations", "16", "--micro-batch-size",
      "4096"], "lower --micro-batch-size"),
])
def test_grpo_refusals_are_one_line(tmp_path, args, says):
    done = train(tmp_path, *args, "--out", str(tmp_path / "m"))
    assert done.returncode == 2 and says in done.stderr, done.stderr
    lines = done.stderr.strip().splitlines()
    errors = [line for line in lines if line.startswith("error:")]
    assert errors == [lines[-1]] and says in errors[0] and not (tmp_path / "m").exists()
    if "at once" not in says and "micro" not in says:  # refused before the model loads: nothing else is said
        assert len(lines) == 1


@pytest.mark.parametrize("option", [["--tasks", "mbpp"], ["--turns", "2"]])
def test_grpo_options_belong_to_grpo(tmp_path, option):
    done = subprocess.run([sys.executable, "-m", "codelutra_data.cli", "train", "--method", "dpo", *option,
                           "--data", "x", "--out", str(tmp_path / "m")], capture_output=True, text=True, cwd=tmp_path,
                          timeout=300)
    assert done.returncode == 2 and f"{option[0]} is for --method grpo" in done.stderr, done.stderr
