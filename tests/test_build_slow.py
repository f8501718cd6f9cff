"""End to end: the real bundled model's samples (shapes and records, whatever it sampled), and resume after
SIGKILL (answers from a scripted server, held after the first chunk, so the kill lands mid-build anywhere)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter

import pytest
import yaml

from codelutra_data.builders.build import BuildConfig, run_build

pytestmark = pytest.mark.slow


def test_pair_builder_on_real_samples(tmp_path):
    import datasets

    cfg = BuildConfig(limit=3, samples=4, max_new_tokens=48, batch_size=12, reference_fallback=True,
                      name="real", version="0.1.0", runs_dir=str(tmp_path / "runs"),
                      releases_dir=str(tmp_path / "releases"), threads=1)
    result = run_build(cfg)
    stats = result.stats
    assert stats["threads"] == 1 and "1 generation thread(s)" in (result.release_dir / "README.md").read_text()
    assert stats["tasks"] == 3 and stats["samples"] == 12
    assert sum(stats["status_histogram"].values()) == 12
    samples = datasets.load_dataset(str(result.release_dir), "samples")["train"]
    assert samples.num_rows == 12
    assert all(r["raw_output"].startswith("```sql") for r in samples)
    assert {r["extractor"] for r in samples} == {"sql-extract-v1"}
    assert all(r["template"].startswith("sql-v1@") for r in samples)
    pairs = datasets.load_dataset(str(result.release_dir), "pairs")["train"]
    # whatever the model sampled: every task has pairs or exactly one counted reason for having none
    assert pairs.num_rows == stats["pairs"]
    assert len(set(pairs["task_id"])) + sum(stats["tasks_without_pairs"].values()) == 3
    for p in pairs:
        assert p["chosen_status"] in ("passed", "reference") and p["rejected_status"] != "passed"
        assert p["chosen"][0]["content"] != p["rejected"][0]["content"]
    card = (result.release_dir / "README.md").read_text()
    yaml.safe_load(card.split("---")[1])
    summary = _summary(cfg, result)
    assert f"pairs {stats['pairs']}" in summary and "tasks without pairs: all_correct" in summary
    assert "generation: ctranslate2 " in summary and "tokens/s on 1 thread(s)" in summary
    assert "this was 3 of 524 tasks" in summary and "pip install 'codelutra-data[vllm]'" in summary
    # same seed, same config elsewhere: identical samples (determinism under --seed)
    again = run_build(BuildConfig(**{**cfg.__dict__, "runs_dir": str(tmp_path / "runs2"),
                                     "releases_dir": str(tmp_path / "releases2")}))
    other = datasets.load_dataset(str(again.release_dir), "samples")["train"]
    assert [r["raw_output"] for r in other] == [r["raw_output"] for r in samples]


def _summary(cfg, result) -> str:
    from rich.console import Console

    from codelutra_data.builders.commands import print_summary

    console = Console(record=True, width=400, file=open(os.devnull, "w"))
    print_summary(console, cfg, result.stats, result.release_dir)
    return console.export_text()


def read_lines(path):
    return path.read_text().splitlines() if path.exists() else []


def test_resume_after_sigkill(tmp_path):
    """Killed mid-build, on any machine: the scripted server answers the first chunk (2 tasks x 4 samples) and
    holds every later request until the kill, the next chunk being generated ahead (overlap) meanwhile."""
    import threading

    from answer_server import answer_server

    requests = []
    def hold(body: dict) -> bool:  # noqa: E306
        requests.append(1)
        return len(requests) > 2
    gate = threading.Event()
    with answer_server(gate=gate, hold=hold) as url:
        _resume_after_sigkill(tmp_path, url, gate)


def _resume_after_sigkill(tmp_path, url, gate) -> None:
    args = [sys.executable, "-m", "codelutra_data.cli", "build", "--limit", "6", "--samples", "4",
            "--batch-size", "8", "--backend", "openai", "--base-url", url, "--model", "served-model",
            "--name", "kill", "--version", "0.1.0", "--json"]
    samples_file = tmp_path / "runs" / "kill" / "0.1.0" / "samples.jsonl"
    proc = subprocess.Popen(args, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            start_new_session=True)
    deadline = time.monotonic() + 600
    while len(read_lines(samples_file)) < 8 and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    gate.set()
    before = read_lines(samples_file)
    assert 8 <= len(before) < 24, "the kill must land mid-build"
    assert not (tmp_path / "releases" / "kill" / "0.1.0").exists()

    again = subprocess.run(args, cwd=tmp_path, capture_output=True, text=True, timeout=900)
    assert again.returncode != 0 and "--resume" in again.stderr  # refuses to silently restart

    resumed = subprocess.run(args + ["--resume"], cwd=tmp_path, capture_output=True, text=True, timeout=900)
    assert resumed.returncode == 0, resumed.stderr
    stats = json.loads(resumed.stdout)
    assert stats["resumed_samples"] >= len(before)
    assert stats["generation"]["overlap"] is True  # auto with a server: the kill landed while generating ahead
    after = read_lines(samples_file)
    assert after[: len(before)] == before  # samples completed before the kill are kept byte-identical
    records = [json.loads(line) for line in after]
    per_key = Counter((r["task_id"], r["sample_index"]) for r in records)
    assert len(per_key) == 24 and set(per_key.values()) == {1}
    executions = [json.loads(line) for line in read_lines(samples_file.parent / "executions.jsonl")]
    assert Counter(e["sample_id"] for e in executions) == Counter(r["sample_id"] for r in records)

    import datasets

    release = tmp_path / "releases" / "kill" / "0.1.0"
    rows = datasets.load_dataset(str(release), "samples")["train"]
    assert rows.num_rows == 24 and len(set(rows["sample_id"])) == 24


def test_python_build_on_mbpp_with_the_real_model(tmp_path):
    """The same builder on Python tasks: real samples run in the real sandbox, references checked first."""
    import datasets

    cfg = BuildConfig(tasks="mbpp", limit=2, samples=4, max_new_tokens=96, batch_size=8, reference_fallback=True,
                      name="py", version="0.1.0", runs_dir=str(tmp_path / "runs"),
                      releases_dir=str(tmp_path / "releases"))
    result = run_build(cfg)
    stats = result.stats
    assert stats["tasks"] == 2 and stats["samples"] == 8 and stats["reference_pass_rate"] == 1.0
    assert stats["sandbox"] == "python-bwrap"
    samples = datasets.load_dataset(str(result.release_dir), "samples")["train"]
    assert all(r["raw_output"].startswith("```python") and r["extractor"] == "py-extract-v1" for r in samples)
    assert all(r["tests_total"] == 3 and r["domain"] == "python" for r in samples)
    assert stats["pairs"] + sum(stats["tasks_without_pairs"].values()) >= 2
    card = (result.release_dir / "README.md").read_text()
    assert "python-bwrap" in card and "CC BY 4.0" in card and "reference pass rate: 100.0%" in card
