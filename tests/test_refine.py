"""`refine`: the stop rule on crafted validation sequences, configuration errors, and the real loop (2
iterations, killed during training and during evaluation, resumed), whose releases hold only train tasks."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from codelutra_data.builders.sampling import SamplingSettings
from codelutra_data.builders.tasks import load_tasks
from codelutra_data.errors import UserError
from codelutra_data.trainers.refine import RefineConfig, decide, run_refine


@pytest.mark.parametrize("scores, patience, best, stop", [
    ([0.04], 1, 0, False),                 # only the base: go on
    ([0.04, 0.15], 1, 1, False),           # improved
    ([0.04, 0.15, 0.19], 1, 2, False),
    ([0.04, 0.15, 0.19, 0.15], 1, 2, True),   # the hand run's iteration 3: worse, stop, keep iteration 2
    ([0.04, 0.15, 0.19, 0.15], 2, 2, False),  # patience 2 allows one more try
    ([0.04, 0.15, 0.19, 0.15, 0.18], 2, 2, True),
    ([0.04, 0.15, 0.19, 0.15, 0.20], 2, 4, False),
    ([0.10, 0.10], 1, 0, True),            # a tie is not an improvement
])
def test_stop_rule(scores, patience, best, stop):
    assert decide(scores, patience) == (best, stop)


@pytest.mark.parametrize("options, message", [
    ({"out": ""}, "--out is required"),
    ({"tasks": "humaneval"}, "no train or validation split"),
    ({"method": "focal"}, "add --mode trajectories"),
    ({"iterations": 0}, "at least 1"),
    ({"build": {"split": "test"}}, "set by refine itself"),
    ({"train": {"no_such_option": 1}}, "unknown train option"),
    ({"method": "grpo", "mode": "trajectories"}, "no build stage, so no --mode"),
    ({"method": "grpo", "train_from": "base"}, "grpo has no releases"),
    ({"method": "grpo", "build": {"pairs_per_task": 2}}, "build option.s. pairs_per_task do not apply"),
    ({"method": "grpo", "train": {"workers": 3}}, "set by refine itself"),
    ({"method": "grpo", "sampling": SamplingSettings(temperature=0)}, "train: temperature"),
    ({"method": "grpo", "push_to_hub": "a/b"}, "builds none"),
])
def test_bad_configurations_fail_before_any_work(tmp_path, options, message):
    with pytest.raises(UserError, match=message):
        run_refine(RefineConfig(**{"out": str(tmp_path / "r"), **options}))
    assert not (tmp_path / "r" / "refine.json").exists()


def _state(out: Path) -> dict:
    try:
        return json.loads((out / "refine.json").read_text())
    except (OSError, ValueError):
        return {}


def _run_until(args, cwd, condition, env, deadline_s=900) -> None:
    proc = subprocess.Popen(args, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env,
                            start_new_session=True)
    deadline = time.monotonic() + deadline_s
    while not condition():
        assert proc.poll() is None, "refine ended before the point it was to be killed at"
        assert time.monotonic() < deadline, "refine never reached the point it was to be killed at"
        time.sleep(0.1)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


@pytest.mark.slow
def test_two_iterations_killed_in_training_and_in_eval_then_resumed(tmp_path):
    """The real loop (real builds, sandboxes, TRL training, evals, store and pushes); the answers come from a
    scripted server, so every iteration has pairs on any machine, and its gate holds the loop inside an
    evaluation until the test has killed it there."""
    import threading

    from answer_server import answer_server
    from hub_standin import HubStandin

    hub = HubStandin(tmp_path / "hub", tokens={"hf_refineTOKEN": ("alice", "write")}).start()
    env = {k: v for k, v in os.environ.items() if not k.startswith("HF_")}
    env.update(HF_ENDPOINT=hub.url, HF_TOKEN="hf_refineTOKEN", HF_HUB_DISABLE_XET="1", HF_HOME=str(tmp_path / "hf"))
    gate = threading.Event()
    gate.set()
    try:
        with answer_server(gate=gate) as url:
            _two_iterations(tmp_path, hub, env, url, gate)
    finally:
        hub.stop()


def _two_iterations(tmp_path, hub, env, url, gate) -> None:
    out = tmp_path / "refine"
    store = tmp_path / "results" / "results.duckdb"
    args = [sys.executable, "-m", "codelutra_data.cli", "refine", "--tasks", "spider-dev", "--iterations", "2",
            "--patience", "2", "--limit", "4", "--samples", "2", "--reference-fallback", "--backend", "openai",
            "--base-url", url, "--model", "smollm2-135m", "--max-steps", "1", "--train-batch-size", "2",
            "--max-length", "384", "--eval-limit", "4", "--out", str(out), "--store", str(store), "--name", "loop",
            "--push-to-hub", "alice/loop"]
    models = out / "models"
    # 1. killed while training iteration 1 (the trainer's partial output exists, the model does not yet)
    _run_until(args, tmp_path, lambda: any(models.glob(".loop-it1.partial-*")), env)
    assert not (models / "loop-it1").exists()
    samples = out / "runs" / "loop" / "0.1.0" / "samples.jsonl"
    built = samples.read_text()
    assert "train" not in _state(out)["iterations"][1]
    refused = subprocess.run(args, cwd=tmp_path, capture_output=True, text=True, timeout=300, env=env)
    assert refused.returncode == 2 and "--resume" in refused.stderr.splitlines()[-1]
    # 2. resumed, then killed while evaluating iteration 1 (held there by the server's gate)
    def evaluating() -> bool:
        its = _state(out).get("iterations", [])
        return len(its) > 1 and "train" in its[1] and "eval" not in its[1]
    gate.clear()
    _run_until(args + ["--resume"], tmp_path, evaluating, env)
    gate.set()
    assert not list(models.glob(".loop-it1.partial-*")) and (models / "loop-it1" / "train_report.json").is_file()
    assert samples.read_text() == built  # the build was not redone
    # 3. resumed to the end
    done = subprocess.run(args + ["--resume", "--json"], cwd=tmp_path, capture_output=True, text=True, timeout=1800,
                          env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    state = json.loads(done.stdout)
    assert [it["iteration"] for it in state["iterations"]] == [0, 1, 2]
    assert state["stopped"] == "ran all 2 iterations" and state["best"] in (0, 1, 2)
    assert samples.read_text() == built
    for t in (1, 2):
        it = state["iterations"][t]
        assert Path(it["release"]).is_dir() and it["version"] == f"0.{t}.0" and it["pairs"] >= 1
        assert (models / f"loop-it{t}" / "README.md").is_file()
        assert json.loads((models / f"loop-it{t}" / "train_report.json").read_text())["data"]["version"] == f"0.{t}.0"
        assert set(it["eval"]) == {"validation", "test"} and it["train"]["steps"] == 1
    assert state["iterations"][2]["model_sampled"] == str(models / "loop-it1")  # iteration 2 samples iteration 1
    from codelutra_data.benchmarks.speed.gpu import stage_rows

    timed = {(r["iteration"], r["stage"]) for r in stage_rows(state)}  # what benchmarks/speed/gpu.py prints
    assert timed >= {("base model", "eval"), ("iteration 1", "build"), ("iteration 1", "  generation"),
                     ("iteration 1", "  execution"), ("iteration 1", "train"), ("iteration 2", "eval")}
    # each iteration's release is a version on the Hub, pushed once (the resumed runs did not push again)
    tags = hub.refs("alice/loop")["tags"]
    assert set(tags) == {"v0.1.0", "v0.2.0"} and len(hub.commits("alice/loop")) == 3
    assert [state["iterations"][t]["pushed"]["tag"] for t in (1, 2)] == ["v0.1.0", "v0.2.0"]
    # no validation or test task in any built dataset
    train_ids = {t.task_id for t in load_tasks("spider-dev", "train")}
    for release in (out / "releases" / "loop").iterdir():
        for config in ("pairs", "samples"):
            for f in (release / config).glob("*.parquet"):
                assert set(pq.read_table(f, columns=["task_id"]).column("task_id").to_pylist()) <= train_ids
    # every evaluation is a row in the results store; the report exists in all three forms
    import duckdb

    with duckdb.connect(str(store), read_only=True) as con:
        rows = con.execute("select split, model from results").fetchall()
    assert {(s, Path(m).name if "/" in m else m) for s, m in rows} >= {
        ("validation", "loop-it1"), ("test", "loop-it1"), ("validation", "loop-it2"), ("test", "loop-it2")}
    report = json.loads((out / "report.json").read_text())
    assert [r["iteration"] for r in report["rows"]] == [0, 1, 2]
    page = (out / "report.html").read_text()
    assert page.count('id="series-validation"') == 1 and page.count('id="series-test"') == 1  # matplotlib's chart
    assert page.count("<tr class=") == 3  # a table row per iteration


@pytest.mark.slow
def test_refine_with_grpo_trains_without_a_build(tmp_path):
    """`refine --method grpo`: no build stage; each iteration trains the previous model with GRPO on the train split
    (the loop's --limit and --samples as GRPO's tasks and group size) and is graded on validation and test."""
    out = tmp_path / "refine"
    done = subprocess.run([sys.executable, "-m", "codelutra_data.cli", "refine", "--method", "grpo", "--tasks",
                           "spider-dev", "--iterations", "1", "--limit", "2", "--samples", "2", "--max-steps", "1",
                           "--train-batch-size", "1", "--max-completion-length", "16", "--eval-limit", "2",
                           "--out", str(out), "--store", str(tmp_path / "results.duckdb"), "--json"],
                          capture_output=True, text=True, cwd=tmp_path, timeout=1800)
    assert done.returncode == 0, done.stderr[-3000:]
    state = json.loads(done.stdout)
    it = state["iterations"][1]
    assert "release" not in it and "build" not in it["stages_s"] and not (out / "releases").exists()
    assert it["train"]["steps"] == 1 and it["train"]["completions"] == 2 and it["tasks"] == 2
    assert 0 <= it["sampling_pass_rate"] <= 1 and it["eval"]["test"]["tasks"] == 2
    context = json.loads((Path(it["model"]) / "train_report.json").read_text())
    assert context["method"] == "grpo" and context["data"]["split"] == "train"
    assert context["config"]["num_generations"] == 2 and context["config"]["limit"] == 2
    assert context["config"]["temperature"] == 0.8  # the loop's sampling temperature
    page = (out / "report.html").read_text()
    assert "trains the previous model with GRPO" in page
