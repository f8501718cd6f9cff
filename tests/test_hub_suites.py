"""The registered suites bound to Hub datasets at pinned commits (humaneval+, mbpp+, ds1000): fetched once, run
offline at exactly that commit, and DS-1000 graded as its own evaluation script grades."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from evalplus_fixtures import hub_rows, humaneval_problems, mbpp_problems, parquet
from hub_standin import HubStandin

DS1000 = Path(__file__).parent / "data" / "ds1000_fixture.jsonl"
PINNED = {"evalplus/humanevalplus": "d32357cf319e50e9c8d8dab5ea876c72b0fd321b",
          "evalplus/mbppplus": "b2d74c91837c3f2a20c1299ae98133cbe7cfa077",
          "xlangai/DS-1000": "4416080ac5cb80bdf7576aefb8f9a0b4d5426a44"}


def env_for(url: str, tmp_path: Path, **extra) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "HUGGING"))}
    env.update(HF_ENDPOINT=url, HF_HOME=str(tmp_path / "hf"), HF_HUB_CACHE=str(tmp_path / "hf" / "hub"),
               HF_DATASETS_CACHE=str(tmp_path / "hf" / "datasets"), HF_HUB_DISABLE_XET="1",
               HF_HUB_ETAG_TIMEOUT="5", **extra)
    return env


def cli(args: list[str], tmp_path: Path, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "codelutra_data.cli", *args], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=600)


def official_ds1000(code_context: str, answer: str, tmp_path: Path) -> bool:
    """DS-1000's own rule (its test_ds1000.py and execution.py): the problem's code_context, the answer as `code`,
    then test_execution(code) and, where the context defines it, test_string(code), under swallow_io (output kept
    in a WriteOnlyStringIO, stdin raising when read); correct when it runs through."""
    swallow = ("import io, sys\nclass _WriteOnly(io.StringIO):\n    def read(self, *a, **k):\n        raise OSError\n"
               "    readline = readlines = read\n    def readable(self, *a, **k):\n        return False\n"
               "sys.stdout = sys.stderr = sys.stdin = _WriteOnly()\n")
    program = (swallow + code_context + "\n" + f"code = {answer!r}\n" + "test_execution(code)\n"
               + ("test_string(code)\n" if "test_string(" in code_context else "\n"))
    path = tmp_path / "official_ds1000.py"
    path.write_text(program)
    return subprocess.run([sys.executable, str(path)], capture_output=True, timeout=120, cwd=tmp_path).returncode == 0


def test_registered_suites_fetch_once_then_run_offline_at_their_pinned_commit(tmp_path):
    rows = [json.loads(line) for line in DS1000.read_text().splitlines()]
    with HubStandin(tmp_path / "hub") as hub:
        hub.seed("evalplus/humanevalplus", {"data/test-00000-of-00001.parquet": parquet(hub_rows(humaneval_problems()))},
                 oid=PINNED["evalplus/humanevalplus"])
        hub.seed("evalplus/mbppplus", {"data/test-00000-of-00001.parquet": parquet(hub_rows(mbpp_problems()))},
                 oid=PINNED["evalplus/mbppplus"])
        hub.seed("xlangai/DS-1000", {"test.jsonl": DS1000.read_bytes()}, oid=PINNED["xlangai/DS-1000"])
        # upstream moves on after the pin: the suites stay where they were pinned
        hub.seed("xlangai/DS-1000", {"test.jsonl": b""})
        env = env_for(hub.url, tmp_path)
        done = cli(["tasks", "fetch", "humaneval+", "mbpp+", "ds1000"], tmp_path, env)
        assert done.returncode == 0, done.stderr[-2000:]
        assert f"ds1000: commit {PINNED['xlangai/DS-1000']} (test 3 rows) cached" in done.stdout
        assert hub.errors == []
    listed = json.loads(cli(["tasks", "list", "--json"], tmp_path, env).stdout)
    assert {c["repo"]: c["commit"] for c in listed["cached"]} == PINNED
    assert {s["name"]: s.get("hub") for s in listed["sources"]}["mbpp+"].endswith(PINNED["evalplus/mbppplus"])

    offline = env_for("http://127.0.0.1:9", tmp_path, HF_HUB_OFFLINE="1")
    answers = {0: ["result = df.sort_values('a').reset_index(drop=True)\n",  # the reference
                   "result = df.sort_values('a')\n",  # index not reset
                   "x = 1\nresult = df.no_such_column_attr\n"],  # raises
               1: ["result = a.sum(axis=0)\n", "result = np.array([sum(r) for r in a.T])\n",  # a loop: test_string
                   "result = a.sum(axis=1)\n"],
               # [insert] inside a function: only ever compiled there, so an indented answer is right
               2: ["    return df.sort_values('a').reset_index(drop=True)\n",
                   "    print('x' * 1100000)\n    return df.sort_values('a').reset_index(drop=True)\n",  # swallowed
                   "    try:\n        input()\n    except EOFError:\n        pass\n"
                   "    return df.sort_values('a').reset_index(drop=True)\n",  # stdin raises OSError there: fails
                   "    return df.sort_values('a')\n",
                   "    return df.sort_values('a').reset_index(drop=True\n"]}  # does not parse
    samples = tmp_path / "samples.jsonl"
    samples.write_text("".join(json.dumps({"task_id": f"ds1000/{p}", "solution": a}) + "\n"
                               for p, some in answers.items() for a in some))
    done = cli(["eval", "--suite", "ds1000", "--samples", str(samples), "--json"], tmp_path, offline)
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout)
    assert result["suite"]["revision"] == PINNED["xlangai/DS-1000"] and result["suite"]["name"] == "ds1000"
    ours = [s == "passed" for row in map(json.loads, Path(result["per_task_file"]).read_text().splitlines())
            for s in row["statuses"]]
    official = [official_ds1000(rows[p]["code_context"], a, tmp_path) for p, some in answers.items() for a in some]
    assert ours == official == [True, False, False, True, False, False, True, True, False, False, False]
    statuses = [s for row in map(json.loads, Path(result["per_task_file"]).read_text().splitlines())
                for s in row["statuses"]]
    assert statuses[-1] == "syntax_error"  # inside the inserted lines: the program's own syntax error
