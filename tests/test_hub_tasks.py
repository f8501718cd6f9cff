"""Task sets from the Hub (`hf:ORG/NAME[:CONFIG][@REVISION]`): fixture datasets in each upstream layout, served by
the Hub stand-in on loopback and loaded by id through the real `datasets` client, as a user's machine loads them:
formats recognised or named, columns mapped, revisions resolved to commits and recorded, offline runs held to the
commit they fetched, and every failure one line."""

from __future__ import annotations

import io
import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from hub_standin import HubStandin


TOKEN = "hf_read_token"


def parquet(rows: list[dict]) -> bytes:
    out = io.BytesIO()
    pq.write_table(pa.Table.from_pylist(rows), out)
    return out.getvalue()


# A user's own Python tasks, in columns of their own naming.
MY_TASKS = [{"id": f"add-{i}", "question": f"Write add(a) returning a + {i}.",
             "solution": f"def add(a):\n    return a + {i}\n", "asserts": [f"assert add(1) == {1 + i}",
                                                                            f"assert add(-1) == {i - 1}"]}
            for i in range(3)]
MY_COLUMNS = "prompt=question,tests=asserts,reference=solution,task_id=id"

# HumanEval's layout, with test code in the shape EvalPlus's HF copies use (an `assertion` helper, input lists).
HE_TEST = '''
import numpy as np

def assertion(out, exp, atol):
    if atol == 0:
        assert out == exp, f"{out} != {exp}"
    else:
        assert np.allclose(out, exp, rtol=1e-07, atol=atol)


def check(candidate):
    inputs = [[1, 2], [0, 0], [-3, 3]]
    results = [3, 0, 0]
    for i, (inp, exp) in enumerate(zip(inputs, results)):
        assertion(candidate(*inp), exp, 0)
'''
HUMANEVAL_LIKE = [{"task_id": "Plus/0", "prompt": 'def add(a: int, b: int) -> int:\n    """Sum of a and b."""\n',
                   "canonical_solution": "    return a + b\n", "entry_point": "add", "test": HE_TEST}]

# MBPP+'s layout: the original asserts, and a `test` program that runs at module level.
MBPP_TEST = '''
def assertion(out, exp, atol):
    assert out == exp

inputs = [[[1, 2, 3]], [[]], [[5]]]
results = [6, 0, 5]
for i, (inp, exp) in enumerate(zip(inputs, results)):
    assertion(total(*inp), exp, 0)
'''
MBPP_LIKE = [{"task_id": 2, "code": "def total(xs):\n    return sum(xs)\n", "prompt": "Sum a list.",
              "source_file": "x", "test_imports": [], "test_list": ["assert total([1, 2]) == 3"], "test": MBPP_TEST}]

DS1000_CONTEXT = '''
import numpy as np
import copy


def generate_test_case(test_case_id):
    a = np.arange(test_case_id + 3)
    return a, a * 2


def exec_test(result, ans):
    np.testing.assert_array_equal(result, ans)
    return 1


exec_context = r"""
import numpy as np
a = test_input
[insert]
"""


def test_execution(solution: str):
    code = exec_context.replace("[insert]", solution)
    for i in range(2):
        test_input, expected = generate_test_case(i + 1)
        env = {"test_input": test_input}
        exec(code, env)
        assert exec_test(env["result"], expected)
'''
DS1000_LIKE = [{"prompt": "Double every element of a into result.", "reference_code": "result = a * 2",
                "code_context": DS1000_CONTEXT,
                "metadata": {"problem_id": 7, "library_problem_id": 0, "library": "Numpy", "test_case_cnt": 2,
                             "perturbation_type": "Origin", "perturbation_origin_id": 7}}]


def sqlite_bytes(tmp_path: Path) -> bytes:
    db = tmp_path / "shop.sqlite"
    con = sqlite3.connect(db)
    con.executescript("CREATE TABLE customers (id INTEGER, city TEXT);"
                      "INSERT INTO customers VALUES (1, 'Oslo'), (2, 'Oslo'), (3, 'Rome');")
    con.commit()
    con.close()
    return db.read_bytes()


@pytest.fixture
def hub(tmp_path):
    with HubStandin(tmp_path / "hub", tokens={TOKEN: ("alice", "read")}) as server:
        server.tags = {"v1.2": server.seed("my-org/my-tasks", {"data/train-00000-of-00001.parquet": parquet(MY_TASKS)},
                                           tag="v1.2")}
        server.seed("my-org/plus", {"data/test-00000-of-00001.parquet": parquet(HUMANEVAL_LIKE)})
        server.seed("my-org/mbppplus", {"data/test-00000-of-00001.parquet": parquet(MBPP_LIKE)})
        server.seed("my-org/ds", {"data/test-00000-of-00001.parquet": parquet(DS1000_LIKE)})
        sql_rows = [{"question": "How many customers?", "db": "dbs/shop.sqlite",
                     "gold": "SELECT count(*) FROM customers", "split": "test"},
                    {"question": "Which cities?", "db": "dbs/shop.sqlite",
                     "gold": "SELECT DISTINCT city FROM customers", "split": "test"}]
        server.seed("my-org/sql", {"data/test-00000-of-00001.parquet": parquet(sql_rows),
                                   "dbs/shop.sqlite": sqlite_bytes(tmp_path)})
        yield server
        assert server.errors == []


def env_for(hub: HubStandin | None, tmp_path: Path, **extra) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "HUGGING"))}
    env.update(HF_ENDPOINT=hub.url if hub else "http://127.0.0.1:9", HF_HOME=str(tmp_path / "hf_home"),
               HF_HUB_CACHE=str(tmp_path / "hf_hub_cache"), HF_DATASETS_CACHE=str(tmp_path / "hf_datasets_cache"),
               HF_HUB_DISABLE_XET="1", HF_HUB_DISABLE_TELEMETRY="1", HF_HUB_DISABLE_PROGRESS_BARS="1",
               HF_TOKEN=TOKEN, HF_HUB_ETAG_TIMEOUT="5", HF_HUB_DOWNLOAD_TIMEOUT="5", **extra)
    return env


def cli(args: list[str], tmp_path: Path, env: dict, check: bool = True) -> subprocess.CompletedProcess:
    done = subprocess.run([sys.executable, "-m", "codelutra_data.cli", *args], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=600)
    if check:
        assert done.returncode == 0, done.stderr[-3000:]
    return done


def one_line_error(done: subprocess.CompletedProcess, *needles: str) -> str:
    assert done.returncode == 2, (done.stdout, done.stderr[-2000:])
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in done.stderr, done.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


def samples_file(tmp_path: Path, rows: list[dict]) -> Path:
    path = tmp_path / "samples.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_every_upstream_layout_is_recognised_and_its_references_pass(hub, tmp_path):
    env = env_for(hub, tmp_path)
    for spec, extra, count in [("hf:my-org/my-tasks@v1.2", ["--columns", MY_COLUMNS], 3),
                               ("hf:my-org/plus", [], 1), ("hf:my-org/mbppplus", [], 1), ("hf:my-org/ds", [], 1),
                               ("hf:my-org/sql", [], 2)]:
        done = cli(["doctor", "--tasks", spec, "--split", "all", "--json", *extra], tmp_path, env)
        report = json.loads(done.stdout)["references"]
        assert (report["tasks"], report["passed"]) == (count, count), (spec, report)
    shown = json.loads(cli(["tasks", "show", "hf:my-org/plus", "--json"], tmp_path, env).stdout)
    assert shown["splits"] == {"test": 1} and len(shown["revision"]) == 40


def test_the_evalplus_style_tests_count_each_input(hub, tmp_path):
    """The `assertion` helper is what tests in EvalPlus's layout call: a wrong answer on one input fails the task."""
    env = env_for(hub, tmp_path)
    rows = [{"task_id": "Plus/0", "solution": HUMANEVAL_LIKE[0]["prompt"] + "    return a + b\n"},
            {"task_id": "Plus/0", "solution": HUMANEVAL_LIKE[0]["prompt"] + "    return a - b if a < 0 else a + b\n"}]
    done = cli(["eval", "--suite", "hf:my-org/plus", "--samples", str(samples_file(tmp_path, rows)), "--k", "1",
                "--json"], tmp_path, env)
    result = json.loads(done.stdout)
    assert result["metrics"]["pass@1"]["value"] == pytest.approx(0.5)
    mbpp = [{"task_id": "mbpp/2", "solution": "def total(xs):\n    return sum(xs) if xs else 1\n"}]
    done = cli(["eval", "--suite", "hf:my-org/mbppplus", "--samples", str(samples_file(tmp_path, mbpp)), "--json"],
               tmp_path, env)
    assert json.loads(done.stdout)["metrics"]["pass@1"]["value"] == 0.0  # passes test_list, fails the plus input


def test_a_revision_is_resolved_recorded_and_never_silently_moved(hub, tmp_path):
    env = env_for(hub, tmp_path)
    v12 = hub.tags["v1.2"]
    good = [{"task_id": t["id"], "solution": t["solution"]} for t in MY_TASKS]
    samples = samples_file(tmp_path, good)
    args = ["eval", "--suite", "hf:my-org/my-tasks@v1.2", "--columns", MY_COLUMNS, "--samples", str(samples),
            "--json"]
    first = json.loads(cli(args, tmp_path, env).stdout)
    assert first["suite"]["revision"] == v12 and first["metrics"]["pass@1"]["value"] == 1.0

    # main moves on upstream: a fourth task; v1.2 still names the old commit
    moved = MY_TASKS + [{"id": "add-9", "question": "Write add(a) returning a + 9.",
                         "solution": "def add(a):\n    return a + 9\n", "asserts": ["assert add(1) == 10"]}]
    new = hub.seed("my-org/my-tasks", {"data/train-00000-of-00001.parquet": parquet(moved)})
    again = json.loads(cli(args, tmp_path, env).stdout)
    assert again["suite"]["revision"] == v12 and again["suite"]["hash"] == first["suite"]["hash"]
    on_main = cli(["tasks", "show", "hf:my-org/my-tasks", "--columns", MY_COLUMNS, "--json"], tmp_path, env)
    assert json.loads(on_main.stdout)["revision"] == new and json.loads(on_main.stdout)["tasks"] == 4

    # offline: each revision loads exactly the commit it named when fetched, never the newest cached copy
    offline = {**env, "HF_HUB_OFFLINE": "1"}
    off = json.loads(cli(args, tmp_path, offline).stdout)
    assert off["suite"]["revision"] == v12 and off["suite"]["hash"] == first["suite"]["hash"]
    assert off["suite"]["tasks"] == 3
    shown = json.loads(cli(["tasks", "show", f"hf:my-org/my-tasks@{new}", "--columns", MY_COLUMNS, "--json"],
                           tmp_path, offline).stdout)
    assert (shown["revision"], shown["tasks"]) == (new, 4)
    one_line_error(cli(["tasks", "show", "hf:my-org/plus@some-tag"], tmp_path, offline, check=False),
                   "offline", "never fetched here", "tasks fetch")

    # the Hub unreachable: the cache still answers for what was fetched, one line for what was not
    down = env_for(None, tmp_path)
    off = json.loads(cli(args, tmp_path, down).stdout)
    assert off["suite"]["revision"] == v12
    one_line_error(cli(["tasks", "show", "hf:my-org/never"], tmp_path, down, check=False),
                   "cannot be reached", "tasks fetch hf:my-org/never", "HF_ENDPOINT")


def test_tasks_fetch_then_list_then_offline(hub, tmp_path):
    env = env_for(hub, tmp_path)
    done = cli(["tasks", "fetch", "hf:my-org/plus", "hf:my-org/my-tasks@v1.2"], tmp_path, env)
    assert "hf:my-org/my-tasks@v1.2: commit " + hub.tags["v1.2"] in done.stdout
    listed = json.loads(cli(["tasks", "list", "--json"], tmp_path, env).stdout)["cached"]
    by_repo = {c["repo"]: c for c in listed}
    assert by_repo["my-org/my-tasks"]["commit"] == hub.tags["v1.2"] and "v1.2" in by_repo["my-org/my-tasks"]["refs"]
    assert by_repo["my-org/plus"]["refs"] == ["main"] and by_repo["my-org/plus"]["config"] == "default"
    text = cli(["tasks", "list"], tmp_path, env).stdout
    assert f"hf:my-org/my-tasks:default@{hub.tags['v1.2']} (v1.2)" in text
    offline = {**env, "HF_HUB_OFFLINE": "1"}
    rows = [{"task_id": "Plus/0", "completion": "    return a + b\n"}]
    done = cli(["eval", "--suite", "hf:my-org/plus", "--samples", str(samples_file(tmp_path, rows)), "--json"],
               tmp_path, offline)
    assert json.loads(done.stdout)["metrics"]["pass@1"]["value"] == 1.0
    one_line_error(cli(["tasks", "fetch", "humaneval"], tmp_path, env, check=False), "Hub datasets")


@pytest.mark.parametrize("args, needles", [
    (["tasks", "show", "hf:my-org/my-tasks"], ["unknown task layout", "asserts, id, question, solution", "--format"]),
    (["tasks", "show", "hf:my-org/my-tasks", "--format", "python"],
     ["format python needs column(s) prompt, tests, reference", "--columns prompt=YOUR_COLUMN"]),
    (["tasks", "show", "hf:my-org/my-tasks", "--columns", "prompt=nope"], ["names column(s) nope"]),
    (["tasks", "show", "hf:my-org/my-tasks", "--columns", "prompt"], ["FIELD=COLUMN"]),
    (["tasks", "show", "hf:my-org/missing"], ["no such dataset", "HF_TOKEN"]),
    (["tasks", "show", "hf:my-org/my-tasks@v9"], ["no revision 'v9'"]),
    (["tasks", "show", "hf:not a repo"], ["not a Hub dataset id"]),
    (["doctor", "--tasks", "hf:my-org/my-tasks", "--columns", "prompt=question,tests=asserts"],
     ["missing field(s) reference"]),
])
def test_bad_hub_sources_are_one_line(hub, tmp_path, args, needles):
    one_line_error(cli(args, tmp_path, env_for(hub, tmp_path), check=False), *needles)


def test_a_local_dataset_folder_loads_as_hf_path(tmp_path):
    folder = tmp_path / "my-dataset" / "data"
    folder.mkdir(parents=True)
    (folder / "train-00000-of-00001.parquet").write_bytes(parquet(MY_TASKS))
    env = env_for(None, tmp_path, HF_HUB_OFFLINE="1")
    shown = json.loads(cli(["tasks", "show", f"hf:{tmp_path / 'my-dataset'}", "--columns", MY_COLUMNS, "--json"],
                           tmp_path, env).stdout)
    assert shown["tasks"] == 3 and "revision" not in shown


@pytest.mark.parametrize("db", ["ABSOLUTE", "../../../../secret.sqlite", "dbs/../../secret.sqlite"])
def test_a_hub_task_database_outside_the_dataset_is_refused(hub, tmp_path, db):
    """A Hub dataset's SQL row names its database: a path outside the repository (absolute, or climbing with `..`)
    would open a database of this machine. One line naming the row and the path; nothing written."""
    db = str(tmp_path / "shop.sqlite") if db == "ABSOLUTE" else db  # a database of this machine (the fixture's)
    rows = [{"question": "How many customers?", "db": db, "gold": "SELECT count(*) FROM customers", "split": "test"}]
    hub.seed("my-org/escape", {"data/test-00000-of-00001.parquet": parquet(rows)})
    env = env_for(hub, tmp_path)
    (tmp_path / "pred.txt").write_text("SELECT 1\n")
    for args in (["doctor", "--tasks", "hf:my-org/escape"],
                 ["eval", "--suite", "hf:my-org/escape", "--predictions", "pred.txt", "--store", "r.duckdb"]):
        line = one_line_error(cli(args, tmp_path, env, check=False), "hf:my-org/escape@", "[test]#0", repr(db))
        assert "not a file of hf:my-org/escape" in line and "customers" not in line
    assert not (tmp_path / "r.duckdb").exists() and not (tmp_path / "results").exists()


def test_a_local_dataset_folder_keeps_its_databases_inside(tmp_path):
    """`hf:path/to/folder`: a database named relative to the folder loads; a link in it that points out is refused."""
    folder = tmp_path / "my-sql" / "data"
    folder.mkdir(parents=True)
    (tmp_path / "my-sql" / "shop.sqlite").write_bytes(sqlite_bytes(tmp_path))
    (tmp_path / "my-sql" / "out.sqlite").symlink_to(tmp_path / "shop.sqlite")
    env = env_for(None, tmp_path, HF_HUB_OFFLINE="1")
    for db, error in (("shop.sqlite", None), ("out.sqlite", "a link to"), (str(tmp_path / "shop.sqlite"), "outside")):
        rows = [{"question": "How many customers?", "db": db, "gold": "SELECT count(*) FROM customers"}]
        (folder / "test-00000-of-00001.parquet").write_bytes(parquet(rows))
        done = cli(["tasks", "show", f"hf:{tmp_path / 'my-sql'}", "--json"], tmp_path, env, check=error is None)
        if error:
            one_line_error(done, "[test]#0", repr(db), error)
        else:
            assert json.loads(done.stdout)["tasks"] == 1
