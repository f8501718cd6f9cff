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


@pytest.mark.parametrize("args, says", [
    (["--tasks", "spider-dev", "--split", "test"], "train split only"),
    (["--tasks", "spider-dev", "--split", "validation"], "train split only"),
    (["--data", "releases/x/0.1.0"], "add --tasks"),
    (["--tasks", "mbpp", "--data", "releases/x/0.1.0"], "--data is for the offline methods"),
    (["--tasks", "humaneval"], "no tasks in split 'train'"),
])
def test_grpo_refusals_are_one_line(tmp_path, args, says):
    done = train(tmp_path, *args, "--out", str(tmp_path / "m"))
    assert done.returncode == 2 and says in done.stderr, done.stderr
    assert len(done.stderr.strip().splitlines()) == 1 and not (tmp_path / "m").exists()


def test_tasks_option_belongs_to_grpo(tmp_path):
    done = subprocess.run([sys.executable, "-m", "codelutra_data.cli", "train", "--method", "dpo", "--tasks", "mbpp",
                           "--data", "x", "--out", str(tmp_path / "m")], capture_output=True, text=True, cwd=tmp_path,
                          timeout=300)
    assert done.returncode == 2 and "--tasks is for --method grpo" in done.stderr, done.stderr
