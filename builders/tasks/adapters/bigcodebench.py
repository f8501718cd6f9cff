"""BigCodeBench's format (bigcode/bigcodebench, bigcode/bigcodebench-hard), graded as its harness grades
(bigcodebench/eval/__init__.py `unsafe_execute` at v0.2.5).

Each problem is two tasks with the same id: split `complete` (the docstring-and-signature prompt) and split
`instruct` (the natural-language instruction), as the harness's `--split`. The dataset's own splits are versions;
the newest in the data is read (v0.1.4 at the pinned commits). A program is graded as the harness does: the
problem's `code_prompt` and a `pass` body first (its "calibration", so a program that omits the prompt's imports
still finds them), then the program, then the test code, all in one module named `__test__` registered in
`sys.modules` (tests patch names in it) with `sys`, `os` and `environ` in its namespace; then every test of its
`TestCases` runs in one `unittest` run (one setUpClass), output swallowed, TZ=UTC, and the program passes when no
test fails or errs. Each test is reported as a step, so feedback names the failing test. Time: the harness's
240 s per problem, counted in CPU seconds; memory: 8 GiB of address space (the harness: 30 GiB). These tasks import
about 70 third-party libraries: `--sandbox-python` runs them under an environment that has them, and the
reference check names the libraries a task misses."""

from __future__ import annotations

import ast
import textwrap

from codelutra_data.builders.tasks.adapters.base import Adapter, Row, SourceContext
from codelutra_data.errors import UserError
from codelutra_data.records import Task

TASK_CPU_S = 240.0  # BIGCODEBENCH_TIMEOUT_PER_TASK's default (TIMEOUT_LIMIT)
MEMORY_MB = 8192
PROMPT_STYLES = ("complete", "instruct")

HARNESS = '''
import builtins as _bcb_builtins
import io as _bcb_io
import os as _bcb_os
import sys as _bcb_sys
import time as _bcb_time
import types as _bcb_types
import unittest as _bcb_unittest
from contextlib import redirect_stderr as _bcb_err, redirect_stdout as _bcb_out

_BCB_PREFIX = {prefix!r}
_BCB_TEST = {test!r}
_BCB = {{}}


class _BcbSink(_bcb_io.StringIO):
    """Output swallowed as the harness swallows it; reading is refused."""

    def write(self, text):
        return len(text)

    def read(self, *args, **kwargs):
        raise OSError("stdin is not readable")

    readline = readlines = read


def _bcb_quiet():
    from contextlib import ExitStack
    stack = ExitStack()
    stack.enter_context(_bcb_out(_BcbSink()))
    stack.enter_context(_bcb_err(_BcbSink()))
    return stack


def _bcb_load():
    _bcb_os.environ["TZ"] = "UTC"
    _bcb_time.tzset()
    _bcb_os.environ["OMP_NUM_THREADS"] = "1"
    module = _bcb_types.ModuleType("__test__")
    module.__dict__.update({{"__builtins__": _bcb_builtins, "__file__": "__test__.py", "__package__": None,
                            "__doc__": None, "sys": _bcb_sys, "os": _bcb_os, "environ": _bcb_os.environ}})
    saved_stdin, _bcb_sys.stdin = _bcb_sys.stdin, _BcbSink()
    try:
        with _bcb_quiet():
            exec(compile(_BCB_PREFIX, "<bcb prompt>", "exec"), module.__dict__)
            exec(compile(code, "<candidate>", "exec"), module.__dict__)
            exec(compile(_BCB_TEST, "<bcb tests>", "exec"), module.__dict__)
    finally:
        _bcb_sys.stdin = saved_stdin
    _bcb_sys.modules["__test__"] = module
    _BCB["module"] = module


def _bcb_run():
    cases = getattr(_BCB["module"], "TestCases")
    suite = _bcb_unittest.TestLoader().loadTestsFromTestCase(cases)
    result = _bcb_unittest.TestResult()
    saved_stdin, _bcb_sys.stdin = _bcb_sys.stdin, _BcbSink()
    try:
        with _bcb_quiet():
            suite.run(result)
    finally:
        _bcb_sys.stdin = saved_stdin
    _BCB["issues"] = {{test.id().split(".")[-1]: trace for test, trace in result.failures + result.errors}}


def _bcb_tail(trace):
    lines = [line for line in trace.strip().splitlines() if line.strip()]
    return " | ".join(lines[-2:])[:300]


def _bcb_check(name):
    issues = _BCB["issues"]
    if name is None:
        assert not issues, "failed: " + ", ".join(sorted(issues))
        return
    assert name not in issues, name + ": " + _bcb_tail(issues[name])
'''


class BigCodeBench(Adapter):
    name = "bigcodebench"
    columns = ("task_id", "complete_prompt", "instruct_prompt", "canonical_solution", "code_prompt", "test",
               "entry_point")
    key = ("instruct_prompt", "code_prompt", "test")
    description = "BigCodeBench: library-heavy functions with unittest suites; split complete or instruct"

    def tasks(self, rows: list[Row], source: SourceContext) -> list[Task]:
        versions = sorted({r.split for r in rows if r.split}, key=_version_key)
        newest = versions[-1] if versions else None
        chosen = [r for r in rows if newest is None or r.split == newest]
        return [task for r in chosen for task in _tasks(r, source, newest)]


def _version_key(name: str) -> tuple:
    parts = name.lstrip("v").split("_")[0].split(".")
    return tuple(int(p) if p.isdigit() else 0 for p in parts), name


def test_names(test: str) -> tuple[list[str], bool]:
    """The test methods `unittest` will run (sorted, as its loader sorts them), and whether that list is certain
    (TestCases derives from nothing but unittest's TestCase)."""
    try:
        tree = ast.parse(test)
    except (SyntaxError, ValueError, RecursionError):
        return [], False
    found = [n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "TestCases"]
    if len(found) != 1:
        return [], False
    cls = found[0]
    names = sorted({n.name for n in cls.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))
                    and n.name.startswith("test")})
    plain = all(ast.unparse(b) in ("unittest.TestCase", "TestCase") for b in cls.bases)
    return names, plain and bool(names)


def _tasks(row: Row, source: SourceContext, version: str | None) -> list[Task]:
    from codelutra_data.builders.prompts import python_prompt

    data, where = row.data, row.where
    for name in ("task_id", "complete_prompt", "instruct_prompt", "canonical_solution", "code_prompt", "test"):
        if not isinstance(data.get(name), str):
            raise UserError(f"{where}: field {name!r} must be text, got {type(data.get(name)).__name__}")
    names, certain = test_names(data["test"])
    prefix = data["code_prompt"] + "\n    pass\n"
    harness = HARNESS.format(prefix=prefix, test=data["test"])
    steps = [["_bcb_load()", False], ["_bcb_run()", False]] + [[f"_bcb_check({n!r})", True] for n in names]
    if not certain:
        steps.append(["_bcb_check(None)", True])
    libs = data.get("libs") or "[]"
    try:
        libs = ast.literal_eval(libs) if isinstance(libs, str) else list(libs)
    except (ValueError, SyntaxError):
        libs = []
    context = {"entry_point": None, "setup": "", "test_setup": harness, "tests": steps, "mode": "source",
               "job_cpu_s": TASK_CPU_S, "memory_mb": MEMORY_MB}
    reference = data["complete_prompt"] + "\n" + data["canonical_solution"]
    out = []
    for style in PROMPT_STYLES:
        if style == "complete":
            prompt = python_prompt("bcb-complete-v1", code=textwrap.dedent(data["complete_prompt"]).strip())
        else:
            prompt = python_prompt("bcb-instruct-v1", text=data["instruct_prompt"].strip())
        metadata = {"template": f"bcb-{style}-v1", "problem": data[f"{style}_prompt"],
                    "code_prompt": data["complete_prompt"], "libs": [str(x) for x in libs],
                    "default_split": "complete", **({"version": version} if version else {})}
        out.append(Task(task_id=data["task_id"], source=source.name, domain="python", prompt=prompt,
                        context=dict(context), reference=reference, split=style, metadata=metadata))
    return out
