"""`eval --suite bigcodebench` gives BigCodeBench's own verdicts: the same programs graded by our sandbox (under
another environment's interpreter, `--sandbox-python`) and by BigCodeBench's grader (`bigcodebench.eval.
untrusted_check`, PyPI 0.2.5, in .venv-bigcodebench, with its evaluate.py's calibration) agree program by program.
The data is served by the Hub stand-in in the upstream layout (one parquet file per version split)."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from bcb_fixtures import PROGRAMS, SKIPPED, problems
from hub_standin import HubStandin

ROOT = Path(__file__).resolve().parent.parent
BCB_PYTHON = ROOT / ".venv-bigcodebench" / "bin" / "python"
REPO, COMMIT = "bigcode/bigcodebench", "b74c0d0bf70d2c0bc459be537895cca163007f1a"
HARD, HARD_COMMIT = "bigcode/bigcodebench-hard", "298d2cc7b96612e15e47313c3603ee124cee0c1f"

OFFICIAL = '''
import json, sys
from bigcodebench.eval import untrusted_check

problems, programs = json.load(open(sys.argv[1]))
verdicts = {}
for p in problems:
    for i, code in enumerate(programs[p["task_id"]]):
        solution = p["code_prompt"] + "\\n    pass\\n" + code  # evaluate.py's calibration (its default)
        stat, details = untrusted_check(solution, p["test"], p["entry_point"], 30 * 1024, 30 * 1024, 10,
                                        min_time_limit=1, gt_time_limit=20)
        verdicts[p["task_id"] + "#" + str(i)] = stat
print(json.dumps(verdicts))
'''


def parquet(rows: list[dict]) -> bytes:
    buffer = io.BytesIO()
    pq.write_table(pa.Table.from_pylist(rows), buffer)
    return buffer.getvalue()


def seed(hub: HubStandin, repo: str, commit: str, rows: list[dict]) -> None:
    old = [dict(r, instruct_prompt="an older wording") for r in rows]  # an older version split, never read
    hub.seed(repo, {"data/v0.1.3-00000-of-00001.parquet": parquet(old),
                    "data/v0.1.4-00000-of-00001.parquet": parquet(rows)}, oid=commit)


def hub_env(hub: HubStandin, tmp_path: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "HUGGING"))}
    env.update(HF_ENDPOINT=hub.url, HF_HOME=str(tmp_path / "hf"), HF_HUB_CACHE=str(tmp_path / "hf" / "hub"),
               HF_DATASETS_CACHE=str(tmp_path / "hf" / "datasets"), HF_HUB_DISABLE_XET="1")
    return env


def cli(args: list[str], env: dict, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "codelutra_data.cli", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=900)


def samples_file(tmp_path: Path, rows: list[dict]) -> Path:
    path = tmp_path / "samples.jsonl"
    path.write_text("".join(json.dumps({"task_id": r["task_id"], "solution": code}) + "\n"
                            for r in rows for code in PROGRAMS[r["task_id"]]))
    return path


def official_verdicts(rows: list[dict], tmp_path: Path) -> dict[str, bool]:
    assert BCB_PYTHON.exists(), "BigCodeBench's grader runs from its own environment: `make test` builds it"
    (tmp_path / "job.json").write_text(json.dumps([rows, PROGRAMS]))
    (tmp_path / "official.py").write_text(OFFICIAL)
    done = subprocess.run([str(BCB_PYTHON), str(tmp_path / "official.py"), str(tmp_path / "job.json")],
                          capture_output=True, text=True, timeout=900, cwd=tmp_path, stdin=subprocess.DEVNULL)
    assert done.returncode == 0, done.stderr[-3000:]
    return {k: v == "pass" for k, v in json.loads(done.stdout.strip().splitlines()[-1]).items()}


def test_verdicts_equal_bigcodebench_own_grader(tmp_path):
    rows = problems()
    with HubStandin(tmp_path / "hub") as hub:
        seed(hub, REPO, COMMIT, rows)
        seed(hub, HARD, HARD_COMMIT, rows[1:3])
        env = hub_env(hub, tmp_path)
        samples = samples_file(tmp_path, rows)
        # our own environment lacks wordninja: the reference check refuses, naming it
        refused = cli(["eval", "--suite", "bigcodebench", "--samples", str(samples)], env, tmp_path)
        done = cli(["eval", "--suite", "bigcodebench", "--samples", str(samples), "--sandbox-python",
                    str(BCB_PYTHON), "--json"], env, tmp_path)
        instruct = cli(["eval", "--suite", "bigcodebench", "--split", "instruct", "--subset", "hard",
                        "--samples", str(samples_file(tmp_path, rows[1:3])), "--sandbox-python", str(BCB_PYTHON),
                        "--json"], env, tmp_path)
        both = cli(["eval", "--suite", "bigcodebench", "--split", "all", "--samples", str(samples)], env, tmp_path)
        assert hub.errors == []
    assert refused.returncode == 2, refused.stderr
    assert "need libraries the sandbox's Python lacks: wordninja (1)" in refused.stderr
    assert "--sandbox-python" in refused.stderr and len(refused.stderr.strip().splitlines()) == 1
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout)
    ours = {}
    for row in map(json.loads, Path(result["per_task_file"]).read_text().splitlines()):
        for i, passed in enumerate(row["passed"]):
            ours[f"{row['task_id']}#{i}"] = passed
    official = official_verdicts(rows, tmp_path)
    assert {k: v for k, v in ours.items() if k not in SKIPPED} == {k: v for k, v in official.items()
                                                                   if k not in SKIPPED}
    assert all(official[k] and not ours[k] for k in SKIPPED)  # a skipped test: passes there, not here
    assert result["official_rule"] == {"passed": sum(ours.values()) + len(SKIPPED), "ours": sum(ours.values()),
                                       "samples": len(ours), "step": "_bcb_official()"}
    assert sum(official.values()) >= 5 and sum(not v for v in official.values()) >= 6
    assert result["suite"]["split"] == "complete" and result["suite"]["tasks"] == 4
    assert result["suite"]["revision"] == COMMIT
    assert "python 3." in result["sandbox"] and str(BCB_PYTHON) in result["sandbox"]
    assert result["references"]["pass_rate"] == 1.0

    assert instruct.returncode == 0, instruct.stderr[-3000:]
    hard = json.loads(instruct.stdout)
    assert hard["suite"]["name"] == "bigcodebench-hard" and hard["suite"]["split"] == "instruct"
    assert hard["suite"]["tasks"] == 2 and hard["suite"]["revision"] == HARD_COMMIT
    assert both.returncode == 2 and "choose one with --split" in both.stderr, both.stderr


def test_subset_applies_to_bigcodebench_only(tmp_path):
    done = cli(["eval", "--suite", "humaneval", "--subset", "hard", "--samples", "x.jsonl"], dict(os.environ), tmp_path)
    assert done.returncode == 2 and "--subset hard applies to --suite bigcodebench" in done.stderr, done.stderr


@pytest.mark.parametrize("path, says", [("/nonexistent/python", "no file or folder at /nonexistent/python"),
                                        ("/bin/true", "not a Python interpreter")])
def test_sandbox_python_must_be_a_python(tmp_path, path, says):
    done = cli(["eval", "--suite", "humaneval", "--limit", "1", "--samples", "x.jsonl", "--sandbox-python", path],
               dict(os.environ), tmp_path)
    assert done.returncode == 2 and says in done.stderr and len(done.stderr.strip().splitlines()) == 1, done.stderr


# ---------------------------------------------------------------- --sandbox-python is checked inside the sandbox
WORDNINJA_TASK = {"task_id": "wn/0", "prompt": "Split thisisatest into words with wordninja.",
                  "tests": ["assert f() == ['this', 'is', 'a', 'test']"], "entry_point": "f",
                  "reference": "import wordninja\ndef f():\n    return wordninja.split('thisisatest')\n"}
ADD_TASK = {"task_id": "add/0", "prompt": "Add two numbers.", "tests": ["assert add(1, 2) == 3"],
            "reference": "def add(a, b):\n    return a + b\n", "entry_point": "add"}


def task_eval(tmp_path: Path, task: dict, *extra: str) -> subprocess.CompletedProcess:
    (tmp_path / "tasks.jsonl").write_text(json.dumps(task) + "\n")
    (tmp_path / "solutions.jsonl").write_text(json.dumps({"task_id": task["task_id"],
                                                          "solution": task["reference"]}) + "\n")
    return cli(["eval", "--suite", str(tmp_path / "tasks.jsonl"), "--samples", str(tmp_path / "solutions.jsonl"),
                "--store", str(tmp_path / "results.duckdb"), "--json", *extra], dict(os.environ), tmp_path)


def test_an_environment_reached_through_a_link_keeps_its_libraries(tmp_path):
    """ENVLINK -> the environment: the sandbox bound the link's folder, not the environment, so its Python lost its
    libraries there and the reference check said it lacked wordninja."""
    assert BCB_PYTHON.exists(), "`make test` builds .venv-bigcodebench"
    (tmp_path / "envlink").symlink_to(BCB_PYTHON.parent.parent)
    done = task_eval(tmp_path, WORDNINJA_TASK, "--sandbox-python", str(tmp_path / "envlink" / "bin" / "python"))
    assert done.returncode == 0, done.stderr[-2000:]
    assert json.loads(done.stdout)["metrics"]["pass@1"]["value"] == 1.0


def test_a_wrapper_script_is_refused_and_the_probe_runs_nothing_outside_the_sandbox(tmp_path):
    """The check used to run the given file on the host, outside the sandbox; a wrapper script passed it and then
    every worker died. A script is refused in one line (and never run); an environment whose start-up writes a file
    (a .pth line) is checked inside the sandbox: the file never appears here, but with --isolation none, which
    says so, it does."""
    marker = tmp_path / "ran-outside-the-sandbox"
    wrapper = tmp_path / "python"
    wrapper.write_text(f"#!/bin/sh\ntouch {marker}\nexec {BCB_PYTHON} \"$@\"\n")
    wrapper.chmod(0o755)
    done = task_eval(tmp_path, WORDNINJA_TASK, "--sandbox-python", str(wrapper))
    assert done.returncode == 2 and len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert "is a script (#!/bin/sh), not a Python interpreter" in done.stderr and not marker.exists()

    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(tmp_path / "env")], check=True, timeout=300)
    (site,) = (tmp_path / "env" / "lib").glob("python3*/site-packages")
    (site / "marker.pth").write_text(f"import pathlib; pathlib.Path({str(marker)!r}).write_text('here')\n")
    env_python = str(tmp_path / "env" / "bin" / "python")
    done = task_eval(tmp_path, ADD_TASK, "--sandbox-python", env_python)
    assert done.returncode == 0, done.stderr[-2000:]
    assert json.loads(done.stdout)["metrics"]["pass@1"]["value"] == 1.0 and not marker.exists()
    done = task_eval(tmp_path, ADD_TASK, "--sandbox-python", env_python, "--isolation", "none")
    assert done.returncode == 0, done.stderr[-2000:]
    assert f"--sandbox-python {env_python} is checked by running it here, unsandboxed" in done.stderr
    assert marker.exists()


def test_a_ulimit_below_the_suites_own_memory_budget_is_one_line(tmp_path):
    """BigCodeBench's programs ask 8 GiB of address space each (the job's own budget, above --memory-mb): under a
    6 GiB `ulimit -v` every one of them exited with code 70; now one line names the limit and the budget."""
    import resource

    limit = 6 * 2**30

    def below() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))

    rows = problems()
    with HubStandin(tmp_path / "hub") as hub:
        seed(hub, REPO, COMMIT, rows)
        done = subprocess.run([sys.executable, "-m", "codelutra_data.cli", "eval", "--suite", "bigcodebench",
                               "--samples", str(samples_file(tmp_path, rows)), "--store",
                               str(tmp_path / "results.duckdb")], cwd=tmp_path, env=hub_env(hub, tmp_path),
                              capture_output=True, text=True, timeout=900, preexec_fn=below)
    assert done.returncode == 2, done.stderr[-2000:]
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in done.stderr, done.stderr
    assert f"`ulimit -v` ({limit // 1024} KiB" in lines[0], lines[0]
    assert "this suite's own budget of 8192 MiB per program (above --memory-mb 1024)" in lines[0], lines[0]
    assert not (tmp_path / "results.duckdb").exists()
