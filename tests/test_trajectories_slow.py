"""Debug trajectories end to end with the real sandboxes: releases that load, focal pairs that train, and
resume after SIGKILL in round 2.

What a model samples depends on the CPU's floating point, so no test here asks the bundled model for luck: the
outcome that matters (a query fixed after a failed first try, so focal pairs exist and train) comes from a
scripted OpenAI-compatible server on loopback that answers by a hash of the request; the bundled model's own
trajectories are checked only for what holds whatever it samples (shapes, rounds, feedback, the card).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
import yaml

from answer_server import answer_server
from codelutra_data.builders.build import BuildConfig, run_build
from codelutra_data.builders.extract import LOCATORS
from codelutra_data.cli import main

pytestmark = pytest.mark.slow
SPIDER = dict(mode="trajectories", limit=0, trajectories_per_task=8, max_rounds=2, max_new_tokens=96,
              batch_size=16)
EASY_SPIDER = ("spider-dev-0188", "spider-dev-0260")  # "What is the total number of airlines?", "Count the number of employees"


def spider_task_file(folder):
    """The two questions as a task file (the JSONL format users write), beside copies of their bundled databases (a
    task's database must be a file of the folder that holds its task file)."""
    from codelutra_data.builders.tasks import load_tasks

    tasks = {t.task_id: t for t in load_tasks("spider-dev", "all")}
    path = folder / "easy_spider.jsonl"
    for i in EASY_SPIDER:
        shutil.copy(tasks[i].context["db_path"], folder)
    path.write_text("".join(json.dumps({"id": i, "question": tasks[i].metadata["question"], "split": "train",
                                        "db": Path(tasks[i].context["db_path"]).name, "gold": tasks[i].reference})
                            + "\n" for i in EASY_SPIDER))
    return str(path)


def read_rows(release, config):
    import datasets

    return datasets.load_dataset(str(release), config)["train"]


def check_trajectories(release, stats):
    """What holds for any trajectories release, whatever the model sampled."""
    assert stats["trajectories"] == 16 and stats["tasks"] == 2
    trajectories = read_rows(release, "trajectories")
    assert trajectories.num_rows == 16
    for t in trajectories:
        rounds = t["rounds"]
        assert [r["round"] for r in rounds] == list(range(len(rounds))) and len(rounds) <= 3
        assert all(r["feedback"] for r in rounds if r["status"] != "passed")
        assert t["solved"] == (rounds[-1]["status"] == "passed")
        assert t["solved_round"] == (len(rounds) - 1 if t["solved"] else -1)
    samples = read_rows(release, "samples")
    assert samples.num_rows == sum(len(t["rounds"]) for t in trajectories) == stats["samples"]
    assert stats["cumulative_solve_rate"][-1] >= stats["first_try_pass_rate"]
    build = yaml.safe_load((release / "build_config.yaml").read_text())
    assert set(build["stats"]["filters"]) == {"no_error_lines", "comments_or_blank_only", "too_many_error_lines",
                                              "too_long", "same_structure", "cosmetic_only"}
    assert "samples" not in build["config"] and build["config"]["max_rounds"] == 2
    card = (release / "README.md").read_text()
    assert "Cumulative solve rate after each round" in card and "cosmetic_only" in card
    return trajectories


def test_spider_trajectories_of_the_bundled_model(tmp_path):
    cfg = BuildConfig(**SPIDER, tasks=spider_task_file(tmp_path), seed=3, name="flow", version="0.1.0",
                      runs_dir=str(tmp_path / "runs"), releases_dir=str(tmp_path / "releases"))
    result = run_build(cfg)
    trajectories = check_trajectories(result.release_dir, result.stats)
    assert {t["model"] for t in trajectories} == {"HuggingFaceTB/SmolLM2-135M-Instruct"}


def test_spider_trajectories_fix_a_query_and_the_focal_pairs_train(tmp_path, capsys):
    from codelutra_data.builders.tasks import load_tasks

    tasks = spider_task_file(tmp_path)
    references = {t.prompt[-1]["content"]: t.reference for t in load_tasks(tasks, "all")}
    with answer_server(references) as url:
        cfg = BuildConfig(**SPIDER, tasks=tasks, seed=0, name="flow", version="0.1.0", backend="openai",
                          base_url=url, model="served-model", tokenizer="smollm2-135m",
                          runs_dir=str(tmp_path / "runs"), releases_dir=str(tmp_path / "releases"))
        result = run_build(cfg)
    stats, release = result.stats, result.release_dir
    trajectories = check_trajectories(release, stats)
    assert stats["cumulative_solve_rate"][-1] > stats["first_try_pass_rate"]  # debugging solved something
    assert stats["focal_pairs"] >= 1
    assert [t for t in trajectories if t["solved_round"] >= 1]
    assert {r["round"] for r in read_rows(release, "samples")} >= {0, 1}

    pairs = read_rows(release, "focal_pairs")  # also the default config
    assert pairs.num_rows == stats["focal_pairs"] == read_rows(release, None).num_rows
    for p in pairs:
        rejected = p["rejected"][0]["content"]
        start, end = LOCATORS["sql"](rejected)
        assert p["rejected_error_spans"] and p["chosen_status"] == "passed" and p["rejected_status"] != "passed"
        for s, e in p["rejected_error_spans"]:
            assert start <= s < e <= end and rejected[s:e].strip()  # inside the code, never the fence
        assert p["prompt"][-1]["role"] == "user" and "Fix the query" not in p["prompt"][-1]["content"]
    sft = read_rows(release, "sft")
    assert sft.num_rows == sum(t["solved"] for t in trajectories)
    conversation = next(m["messages"] for m in sft if len(m["messages"]) > 3)
    assert conversation[-1]["role"] == "assistant" and "Fix the query" in conversation[3]["content"]
    header = yaml.safe_load((release / "README.md").read_text().split("---")[1])
    assert [c["config_name"] for c in header["configs"]][0] == "focal_pairs" and "iterpref" in header["tags"]

    out = tmp_path / "model"
    code = main(["train", "--method", "focal", "--data", str(release), "--model", "smollm2-135m", "--out", str(out),
                 "--max-steps", "2", "--max-length", "1024", "--batch-size", "1", "--json"])
    captured = capsys.readouterr()
    assert code == 0, captured.err[-2000:]
    report = json.loads(captured.out)
    assert report["metrics"]["steps"] == 2 and report["pairs_used"] >= 1
    assert report["focal_span_tokens"] > 0 and "flow" in (out / "README.md").read_text()


def test_mbpp_trajectories_run_in_the_python_sandbox_with_a_reviser(tmp_path):
    """Another model writes the fixes; answers from a scripted server, so first tries fail on any machine."""
    from codelutra_data.builders.tasks import load_tasks

    references = {t.prompt[-1]["content"]: t.reference for t in load_tasks("mbpp", "train", 2)}
    with answer_server(references) as url:
        cfg = BuildConfig(mode="trajectories", tasks="mbpp", split="train", limit=2, trajectories_per_task=2,
                          max_rounds=1, name="pyflow", version="0.1.0", backend="openai", base_url=url,
                          model="served-model", reviser="reviser-model", tokenizer="smollm2-135m",
                          runs_dir=str(tmp_path / "runs"), releases_dir=str(tmp_path / "releases"))
        stats = run_build(cfg).stats
    assert stats["sandbox"] == "python-bwrap" and stats["trajectories"] == 4 and stats["reviser"] == "reviser-model"
    trajectories = read_rows(tmp_path / "releases" / "pyflow" / "0.1.0", "trajectories")
    assert stats["samples"] == sum(len(t["rounds"]) for t in trajectories)
    assert all(len(t["rounds"]) == (1 if t["solved_round"] == 0 else 2) for t in trajectories)
    statuses = set()
    for t in trajectories:
        for r in t["rounds"]:
            statuses.add(r["status"])
            if r["resubmission_of"] >= 0:
                assert r["feedback"].startswith("Your last answer repeated your attempt number")
            elif r["status"] == "wrong_answer":
                assert "The failing test:\nassert " in r["feedback"], r["feedback"]
            elif r["status"] == "runtime_error":
                assert r["feedback"].startswith("The program raised an error: "), r["feedback"]
    assert "wrong_answer" in statuses and "passed" in statuses  # pinned by the server: a failure fixed
    assert {t["model"] for t in trajectories} == {"served-model"}
    assert {t["reviser"] for t in trajectories} == {"reviser-model"}
    samples = read_rows(tmp_path / "releases" / "pyflow" / "0.1.0", "samples")
    revisions = [r for r in samples if r["round"] == 1]
    assert revisions and all(r["parent_id"] and r["template"].startswith("revise-v1+feedback-v1@")
                             and r["model"] == "reviser-model" for r in revisions)
    assert {r["model"] for r in samples if r["round"] == 0} == {"served-model"}


def read_lines(path):
    return path.read_text().splitlines() if path.exists() else []


def test_resume_after_sigkill_in_round_2(tmp_path):
    """Killed in round 2 (the scripted server answers round 2's first chunk and holds the rest until the kill,
    on any machine), refused without --resume, resumed into the same release as an uninterrupted build."""
    import threading

    from answer_server import revision_round

    round_2 = []
    def hold(body: dict) -> bool:  # noqa: E306
        if revision_round(body) != 2:
            return False
        round_2.append(1)
        return len(round_2) > 4  # the first chunk (--batch-size 4) of round 2 is answered
    gate = threading.Event()
    with answer_server(gate=gate, hold=hold) as url:
        _resume_in_round_2(tmp_path, url, gate)


def _resume_in_round_2(tmp_path, url, gate) -> None:
    engine = ["--backend", "openai", "--base-url", url, "--model", "served-model", "--tokenizer", "smollm2-135m"]
    args = [sys.executable, "-m", "codelutra_data.cli", "build", "--mode", "trajectories", "--limit", "4",
            "--trajectories-per-task", "2", "--max-rounds", "3", "--batch-size", "4", *engine,
            "--name", "kill", "--version", "0.1.0", "--json"]
    samples_file = tmp_path / "runs" / "kill" / "0.1.0" / "samples.jsonl"
    proc = subprocess.Popen(args, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            start_new_session=True)
    deadline = time.monotonic() + 900
    in_round_2 = lambda: any(json.loads(line)["round"] == 2 for line in read_lines(samples_file))  # noqa: E731
    while not in_round_2() and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    gate.set()
    before = read_lines(samples_file)
    assert in_round_2(), "the kill must land in round 2"
    assert not (tmp_path / "releases" / "kill" / "0.1.0").exists()

    again = subprocess.run(args, cwd=tmp_path, capture_output=True, text=True, timeout=900)
    assert again.returncode != 0 and "--resume" in again.stderr  # refuses to silently restart
    resumed = subprocess.run(args + ["--resume"], cwd=tmp_path, capture_output=True, text=True, timeout=1200)
    assert resumed.returncode == 0, resumed.stderr
    stats = json.loads(resumed.stdout)
    assert stats["resumed_samples"] >= len(before)
    after = read_lines(samples_file)
    assert after[: len(before)] == before  # what was recorded before the kill stays byte-identical
    records = [json.loads(line) for line in after]
    per_attempt = Counter((r["task_id"], r["sample_index"], r["round"]) for r in records)
    assert set(per_attempt.values()) == {1} and len(per_attempt) == stats["samples"]
    executions = [json.loads(line) for line in read_lines(samples_file.parent / "executions.jsonl")]
    assert Counter(e["sample_id"] for e in executions) == Counter(r["sample_id"] for r in records)

    # the same release as a run that was never interrupted
    cfg = BuildConfig(mode="trajectories", limit=4, trajectories_per_task=2, max_rounds=3, batch_size=4,
                      backend="openai", base_url=url, model="served-model", tokenizer="smollm2-135m", name="kill",
                      version="0.1.0", runs_dir=str(tmp_path / "clean-runs"),
                      releases_dir=str(tmp_path / "clean-releases"))
    clean = run_build(cfg)
    resumed_rows = read_rows(tmp_path / "releases" / "kill" / "0.1.0", "trajectories").to_list()
    assert resumed_rows == read_rows(clean.release_dir, "trajectories").to_list()
