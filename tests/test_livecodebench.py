"""`eval --suite livecodebench` gives lcb_runner's verdicts. LiveCodeBench's grader is not on PyPI, so its rules
(lcb_runner/evaluation/testing_util.py at 28fef95: the star-import preamble, the main-guard unwrapping and
wrapping of stdin programs, the mocked stdin and open, stdout captured, SystemExit swallowed, lines compared
stripped then as Decimal tokens; LeetCode methods on JSON arguments, tuples as lists, `==`) are reimplemented here
the way it writes them (source rewritten by ast.unparse, mocks as decorators, a wall-clock alarm per test) and run
on the fixture programs, which this test wrote: the same programs graded by the sandbox give the same verdicts.
The data is served by the Hub stand-in in the upstream layout (a loading script, which is never run, and
test*.jsonl files)."""

from __future__ import annotations

import base64
import json
import os
import pickle
import subprocess
import sys
import zlib
from pathlib import Path

import pytest

from hub_standin import HubStandin
from lcb_fixtures import PROGRAMS, problems

REPO, COMMIT = "livecodebench/code_generation_lite", "0fe84c3912ea0c4d4a78037083943e8f0c4dd505"
SCRIPT = b'"""The upstream loading script: datasets >= 4 refuses to run it, and nothing here may."""\nraise SystemExit(3)\n'

OFFICIAL = r'''
import ast, json, multiprocessing, signal, sys
from decimal import Decimal
from io import StringIO
from types import ModuleType
from unittest.mock import mock_open, patch

PREAMBLE = "".join(f"from {m} import *\n" for m in ("string", "re", "datetime", "collections", "heapq", "bisect",
    "copy", "math", "random", "statistics", "itertools", "functools", "operator", "io", "sys", "json", "builtins",
    "typing")) + "".join(f"import {m}\n" for m in ("string", "re", "datetime", "collections", "heapq", "bisect", "copy",
    "math", "random", "statistics", "itertools", "functools", "operator", "io", "sys", "json")) + \
    "sys.setrecursionlimit(50000)\n"
TIMEOUT = 6


class Timeout(Exception):
    pass


def alarm(signum, frame):
    raise Timeout()


def unwrap_main(code):
    try:
        tree = ast.parse(code)
        last = tree.body[-1]
        if isinstance(last, ast.If) and ast.unparse(last.test).strip() == "__name__ == '__main__'":
            return ast.unparse(tree.body[:-1]) + "\n" + ast.unparse(last.body)
    except Exception:
        pass
    return code


def as_function(code):
    try:
        tree = ast.parse(code)
        imports = [s for s in tree.body if isinstance(s, (ast.Import, ast.ImportFrom))]
        rest = [s for s in tree.body if not isinstance(s, (ast.Import, ast.ImportFrom))]
        fn = ast.FunctionDef(name="wrapped_function", args=ast.arguments(posonlyargs=[], args=[], kwonlyargs=[],
                             kw_defaults=[], defaults=[]), body=rest, decorator_list=[], lineno=-1)
        return PREAMBLE + "\n" + ast.unparse(imports) + "\n" + ast.unparse(fn)
    except Exception:
        return code


def load(code):
    signal.alarm(TIMEOUT)
    try:
        module = ModuleType("tmp_sol", "")
        exec(code, module.__dict__)
        return module.Solution() if "class Solution" in code else module
    finally:
        signal.alarm(0)


class Buffer:
    def __init__(self, text):
        self.text = text.encode()

    def read(self, *a):
        return self.text

    def readline(self, *a):
        return self.text.split(b"\n")[0] + b"\n"


class Stdin:
    def __init__(self, text):
        self.text, self.io, self.buffer = text, StringIO(text), Buffer(text)

    def read(self, *a):
        return self.text

    def readline(self, *a):
        return self.io.readline(*a)

    def readlines(self, *a):
        return self.text.split("\n")

    def __getattr__(self, name):
        return getattr(self.io, name)


def run_stdin(method, text):
    lines = iter(text.split("\n"))

    @patch("builtins.open", mock_open(read_data=text))
    @patch("sys.stdin", Stdin(text))
    @patch("sys.stdin.readline", lambda *a: next(lines))
    @patch("sys.stdin.readlines", lambda *a: text.split("\n"))
    @patch("sys.stdin.read", lambda *a: text)
    def inner():
        try:
            method()
        except SystemExit:
            pass

    inner()


def decimals(line):
    try:
        return [Decimal(t) for t in line.split()]
    except Exception:
        return None


def same(got, expected):
    a = [x.strip() for x in got.strip().split("\n")]
    b = [x.strip() for x in expected.strip().split("\n")]
    if len(a) != len(b):
        return False
    for x, y in zip(a, b):
        if x == y:
            continue
        dx, dy = decimals(x), decimals(y)
        if dx is None or dy is None or dx != dy:
            return False
    return True


def reliability_guard():
    """lcb_runner's, as called by run_test before anything is compiled: exit kept, quit and the rest disabled."""
    import builtins, faulthandler, os, shutil, subprocess
    faulthandler.disable()
    builtins.quit = None
    os.environ["OMP_NUM_THREADS"] = "1"
    for name in ("kill", "system", "putenv", "remove", "removedirs", "rmdir", "fchdir", "setuid", "fork", "forkpty",
                 "killpg", "rename", "renames", "truncate", "replace", "unlink", "fchmod", "fchown", "chmod", "chown",
                 "chroot", "lchflags", "lchmod", "lchown", "getcwd", "chdir"):
        setattr(os, name, None)
    shutil.rmtree = shutil.move = shutil.chown = None
    subprocess.Popen = None
    builtins.help = None
    for name in ("ipdb", "joblib", "resource", "psutil", "tkinter"):
        sys.modules[name] = None


def grade(code, cases, fn_name):
    signal.signal(signal.SIGALRM, alarm)
    sys.set_int_max_str_digits(50000)
    reliability_guard()
    try:
        if fn_name:
            target = load(PREAMBLE + "\n\n" + code)
            method = getattr(target, fn_name, None)
            if method is None:
                return False
            for case in cases:
                args = [json.loads(line) for line in case["input"].split("\n")]
                signal.alarm(TIMEOUT)
                try:
                    got = method(*args)
                finally:
                    signal.alarm(0)
                if isinstance(got, tuple):
                    got = list(got)
                if got != json.loads(case["output"]):
                    return False
            return True
        method = getattr(load(as_function(unwrap_main(code))), "wrapped_function", None)
        if method is None:
            return False
        for case in cases:
            out = StringIO()
            saved, sys.stdout = sys.stdout, out
            signal.alarm(TIMEOUT)
            try:
                run_stdin(method, case["input"])
            finally:
                signal.alarm(0)
                sys.stdout = saved
            if not same(out.getvalue(), case["output"]):
                return False
        return True
    except Exception:
        return False


def child(code, cases, fn_name, queue):
    queue.put(grade(code, cases, fn_name))


if __name__ == "__main__":
    job = json.load(open(sys.argv[1]))
    verdicts = {}
    for key, (code, cases, fn_name) in job.items():
        queue = multiprocessing.Queue()
        proc = multiprocessing.Process(target=child, args=(code, cases, fn_name, queue))
        proc.start()
        proc.join((TIMEOUT + 1) * len(cases) + 5)
        if proc.is_alive():
            proc.kill()
        verdicts[key] = queue.get() if not queue.empty() else False
    print(json.dumps(verdicts))
'''


def _decode(text: str) -> list[dict]:
    try:
        return json.loads(text)
    except ValueError:
        return json.loads(pickle.loads(zlib.decompress(base64.b64decode(text))))  # our own fixture data


def official_verdicts(rows: list[dict], tmp_path: Path) -> dict[str, bool]:
    job = {}
    for row in rows:
        cases = _decode(row["public_test_cases"]) + _decode(row["private_test_cases"])
        fn_name = json.loads(row["metadata"]).get("func_name")
        for i, code in enumerate(PROGRAMS[row["question_id"]]):
            job[f"{row['question_id']}#{i}"] = [code, cases, fn_name]
    (tmp_path / "job.json").write_text(json.dumps(job))
    (tmp_path / "official.py").write_text(OFFICIAL)
    done = subprocess.run([sys.executable, str(tmp_path / "official.py"), str(tmp_path / "job.json")],
                          capture_output=True, text=True, timeout=600, cwd=tmp_path, stdin=subprocess.DEVNULL)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def seed(hub: HubStandin, rows: list[dict]) -> None:
    by_file = {"test5.jsonl": [r for r in rows if r["contest_date"] < "2025"],
               "test6.jsonl": [r for r in rows if r["contest_date"] >= "2025"]}
    files = {f"test{n}.jsonl": b"" for n in ("", "2", "3", "4")}
    files.update({name: "".join(json.dumps(r) + "\n" for r in part).encode() for name, part in by_file.items()})
    hub.seed(REPO, {"code_generation_lite.py": SCRIPT, "README.md": b"# code_generation_lite\n", **files}, oid=COMMIT)


def hub_env(hub: HubStandin, tmp_path: Path, **extra: str) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "HUGGING"))}
    env.update(HF_ENDPOINT=hub.url, HF_HOME=str(tmp_path / "hf"), HF_HUB_CACHE=str(tmp_path / "hf" / "hub"),
               HF_DATASETS_CACHE=str(tmp_path / "hf" / "datasets"), HF_HUB_DISABLE_XET="1", **extra)
    return env


def cli(args: list[str], env: dict, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "codelutra_data.cli", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=900)


def samples_file(tmp_path: Path, rows: list[dict], name: str = "samples.jsonl") -> Path:
    path = tmp_path / name
    path.write_text("".join(json.dumps({"task_id": r["question_id"], "solution": code}) + "\n"
                            for r in rows for code in PROGRAMS[r["question_id"]]))
    return path


def test_verdicts_equal_lcb_runner_rules_and_windows(tmp_path):
    rows = problems()
    with HubStandin(tmp_path / "hub") as hub:
        seed(hub, rows)
        env = hub_env(hub, tmp_path)
        samples = samples_file(tmp_path, rows)
        done = cli(["eval", "--suite", "livecodebench", "--samples", str(samples), "--json"], env, tmp_path)
        assert done.returncode == 0, done.stderr[-3000:]
        result = json.loads(done.stdout)
        # a date window: only the problems dated in it, and the window in the suite's name
        later = samples_file(tmp_path, [r for r in rows if r["contest_date"] >= "2025-01-01"], "later.jsonl")
        window = cli(["eval", "--suite", "livecodebench", "--since", "2025-01-01", "--samples", str(later), "--json"],
                     env, tmp_path)
        assert hub.errors == []
    ours = {}
    for row in map(json.loads, Path(result["per_task_file"]).read_text().splitlines()):
        for i, passed in enumerate(row["passed"]):
            ours[f"{row['task_id']}#{i}"] = passed
    official = official_verdicts(rows, tmp_path)
    feedback = {f"{row['task_id']}#{i}": f for row in map(json.loads, Path(result["per_task_file"]).read_text()
                .splitlines()) for i, f in enumerate(row["feedback"])}
    assert ours == official, {k: (ours[k], feedback.get(k)) for k in ours if ours[k] != official.get(k)}
    assert sum(official.values()) >= 10 and sum(not v for v in official.values()) >= 15
    statuses = {s for row in map(json.loads, Path(result["per_task_file"]).read_text().splitlines())
                for s in row["statuses"]}
    assert {"passed", "wrong_answer", "runtime_error", "timeout", "syntax_error"} <= statuses
    assert result["suite"]["revision"] == COMMIT and result["suite"]["name"] == "livecodebench"
    assert result["references"]["unchecked"] == 4 and result["references"]["pass_rate"] == 1.0

    assert window.returncode == 0, window.stderr[-3000:]
    windowed = json.loads(window.stdout)
    assert windowed["suite"]["name"] == "livecodebench[2025-01-01..]"
    assert windowed["suite"]["window"] == "2025-01-01.." and windowed["suite"]["tasks"] == 2
    assert windowed["suite"]["hash"] != result["suite"]["hash"]
    assert windowed["config"]["since"] == "2025-01-01"


def test_offline_windows_and_refusals(tmp_path):
    rows = problems()
    with HubStandin(tmp_path / "hub") as hub:
        seed(hub, rows)
        env = hub_env(hub, tmp_path)
        fetched = cli(["tasks", "fetch", "livecodebench"], env, tmp_path)
        assert fetched.returncode == 0, fetched.stderr
        listed = cli(["tasks", "list", "--json"], env, tmp_path)
        assert listed.returncode == 0, listed.stderr
        assert any(c["repo"] == REPO and c["commit"] == COMMIT for c in json.loads(listed.stdout)["cached"])
        # the loading script is never run: it would exit 3
        assert hub.errors == []
    offline = hub_env(hub, tmp_path, HF_HUB_OFFLINE="1")
    samples = samples_file(tmp_path, rows[:1])
    done = cli(["eval", "--suite", "livecodebench", "--until", "2024-08-31", "--samples", str(samples), "--json"],
               offline, tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout)
    assert result["suite"]["name"] == "livecodebench[..2024-08-31]" and result["suite"]["tasks"] == 1
    for args, says in [(["--since", "2030-01-01"], "no problems dated in 2030-01-01.."),
                       (["--since", "2025-13-01"], "--since takes a date as YYYY-MM-DD"),
                       (["--since", "2025-02-01", "--until", "2025-01-01"], "is after --until")]:
        bad = cli(["eval", "--suite", "livecodebench", *args, "--samples", str(samples)], offline, tmp_path)
        assert bad.returncode == 2 and says in bad.stderr and len(bad.stderr.strip().splitlines()) == 1, bad.stderr
    undated = cli(["eval", "--suite", "humaneval", "--since", "2025-01-01", "--samples", str(samples)], offline,
                  tmp_path)
    assert undated.returncode == 2 and "has none" in undated.stderr, undated.stderr
    # --decontaminate livecodebench: a training task that copies a problem's statement is found (offline)
    copied = "Given integers A and B, print A+B. Constraints: every input value is an integer between one and one " \
             "hundred, and the output is a single line."
    train = tmp_path / "train.jsonl"
    train.write_text(json.dumps({"prompt": "Read two numbers. " + copied, "tests": ["assert f(1) == 1"],
                                 "reference": "def f(x):\n    return x", "task_id": "mine/1"}) + "\n")
    rows_with_copy = [dict(problems()[0], question_content=copied)] + problems()[1:]
    assert rows_with_copy[0]["question_id"] == "abc001_a"
    code = ("import json; from codelutra_data.builders import decontaminate; "
            "from codelutra_data.builders.tasks import load_tasks; "
            f"kept, reports = decontaminate.check(load_tasks({str(train)!r}), ['livecodebench'], 'train'); "
            "print(json.dumps([len(kept), reports[0]]))")
    with HubStandin(tmp_path / "hub2") as hub2:
        seed(hub2, rows_with_copy)
        env2 = hub_env(hub2, tmp_path / "second")
        found = subprocess.run([sys.executable, "-c", code], env=env2, capture_output=True, text=True, timeout=300)
    assert found.returncode == 0, found.stderr[-2000:]
    kept, report = json.loads(found.stdout.strip().splitlines()[-1])
    assert kept == 0 and report["tasks"] == ["mine/1"] and report["dropped"] and report["suite_tasks"] == 4, report


class _Marker:
    def __reduce__(self):
        return (os.system, ("touch PWNED",))


def test_hostile_private_tests_are_never_unpickled_with_globals(tmp_path):
    """A pickle is a program: test cases whose pickle names a function are refused, and nothing runs."""
    hostile = dict(problems()[0], private_test_cases=base64.b64encode(zlib.compress(pickle.dumps(_Marker()))).decode())
    path = tmp_path / "lcb.jsonl"
    path.write_text(json.dumps(hostile) + "\n")
    done = subprocess.run([sys.executable, "-m", "codelutra_data.cli", "tasks", "show", str(path)], cwd=tmp_path,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 2 and "cannot be read" in done.stderr and "refused" in done.stderr, done.stderr
    assert not (tmp_path / "PWNED").exists()


@pytest.mark.parametrize("config, files", [(None, 6), ("release_v2", 2), ("v6", 1), ("v2_v4", 3)])
def test_release_tags_name_the_loading_scripts_files(config, files):
    from codelutra_data.builders.tasks.adapters.livecodebench import release_files

    assert len(release_files(config)) == files


def test_unknown_release_is_one_line():
    from codelutra_data.builders.tasks.adapters.livecodebench import release_files
    from codelutra_data.errors import UserError

    with pytest.raises(UserError, match="unknown release 'v9'"):
        release_files("v9")
