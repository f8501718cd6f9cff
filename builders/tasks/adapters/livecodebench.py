"""LiveCodeBench's format (livecodebench/code_generation_lite), graded as lcb_runner grades.

A problem is functional (LeetCode: `metadata.func_name`, a `class Solution` method called on JSON-decoded
arguments, its result compared with `==`, a tuple taken as a list) or reads stdin (AtCoder, Codeforces: the
program runs once per test with that test's input, its stdout compared line by line, stripped, each line equal as
text or as a list of `Decimal` tokens). The mode follows `func_name`, as in lcb_runner, not the tests' `testtype`.
Programs are prepared as lcb_runner prepares them (its star imports first; a stdin program's last `if __name__ ==
'__main__':` unwrapped, its top-level imports run once and everything else wrapped in one function), so verdicts
agree with its own down to its quirks. Differences, on purpose: each test's 6-second limit is CPU time (lcb_runner:
wall-clock `alarm`), so a busy machine does not turn a correct answer into a timeout; and the program runs in our
sandbox rather than with `os`/`shutil` functions disabled.

The public tests are JSON; the private ones are base64 of zlib of a pickled string holding JSON. They are decoded
with an unpickler that refuses every global (a pickle is a program), on the host only to count them: the encoded
text travels with the job and is decoded inside the sandbox. The dataset ships no reference solutions, so its
tasks have none (`reference` is empty) and the reference check skips them."""

from __future__ import annotations

import base64
import datetime as dt
import inspect
import io
import json
import pickle
import zlib

from codelutra_data.builders.tasks.adapters.base import Adapter, Row, SourceContext
from codelutra_data.errors import UserError
from codelutra_data.records import Task

REPO = "livecodebench/code_generation_lite"
# The data files of each release, as the dataset's loading script names them (datasets >= 4 no longer runs
# loading scripts, so the files are read directly): release_vN holds everything up to vN, vN only what vN added.
FILES = ("test.jsonl", "test2.jsonl", "test3.jsonl", "test4.jsonl", "test5.jsonl", "test6.jsonl")
TEST_CPU_S = 6.0  # lcb_runner's --timeout default, per test (and for loading the program)


def release_files(config: str | None) -> list[str]:
    """The files a release tag names: release_v1..release_v6 and release_latest (cumulative), v1..v6 (one
    release's new problems) and vA_vB (releases A to B)."""
    name = config or "release_latest"
    count = len(FILES)
    if name == "release_latest":
        return list(FILES)
    try:
        if name.startswith("release_v"):
            last = int(name[len("release_v"):])
            if 1 <= last <= count:
                return list(FILES[:last])
        elif name.startswith("v") and "_v" in name:
            first, last = (int(p) for p in name[1:].split("_v"))
            if 1 <= first <= last <= count:
                return list(FILES[first - 1:last])
        elif name.startswith("v"):
            one = int(name[1:])
            if 1 <= one <= count:
                return [FILES[one - 1]]
    except ValueError:
        pass
    raise UserError(f"hf:{REPO}: unknown release {name!r} (release_v1..release_v{count}, release_latest, "
                    f"v1..v{count}, or vA_vB)")


class _NoGlobals(pickle.Unpickler):
    """Unpickles plain data only: any class or function a pickle names is refused."""

    def find_class(self, module, name):
        raise pickle.UnpicklingError(f"refused: the test cases name {module}.{name}")


def decode_cases(text):
    """LiveCodeBench's test cases: JSON, or base64 of zlib of a pickled string holding JSON."""
    try:
        return json.loads(text)
    except ValueError:
        pass
    raw = _NoGlobals(io.BytesIO(zlib.decompress(base64.b64decode(text.encode("utf-8"))))).load()
    if not isinstance(raw, (str, bytes)):
        raise pickle.UnpicklingError("the test cases are not text")
    return json.loads(raw)


HARNESS = '''
import ast as _lcb_ast
import base64
import builtins as _lcb_builtins
import io
import json
import pickle
import sys as _lcb_sys
import types as _lcb_types
import zlib
from decimal import Decimal as _LcbDecimal
from unittest import mock as _lcb_mock

{decoder}

_LCB_FN = {fn_name!r}
_LCB_CASES = decode_cases({public!r}) + (decode_cases(test_data) if "test_data" in globals() else [])
# lcb_runner's preamble (its `import_string`), run before every program
_LCB_IMPORTS = ("from string import *\\nfrom re import *\\nfrom datetime import *\\nfrom collections import *\\n"
                "from heapq import *\\nfrom bisect import *\\nfrom copy import *\\nfrom math import *\\n"
                "from random import *\\nfrom statistics import *\\nfrom itertools import *\\n"
                "from functools import *\\nfrom operator import *\\nfrom io import *\\nfrom sys import *\\n"
                "from json import *\\nfrom builtins import *\\nfrom typing import *\\nimport string\\nimport re\\n"
                "import datetime\\nimport collections\\nimport heapq\\nimport bisect\\nimport copy\\nimport math\\n"
                "import random\\nimport statistics\\nimport itertools\\nimport functools\\nimport operator\\n"
                "import io\\nimport sys\\nimport json\\nsys.setrecursionlimit(50000)\\n")
_lcb_sys.set_int_max_str_digits(50000)
_LCB = {{}}


def _lcb_module():
    module = _lcb_types.ModuleType("tmp_sol", "")
    module.__dict__["__builtins__"] = _lcb_builtins
    exec(compile(_LCB_IMPORTS, "<lcb imports>", "exec"), module.__dict__)
    return module


def _lcb_is_main_guard(node):
    return isinstance(node, _lcb_ast.If) and _lcb_ast.unparse(node.test).strip() == "__name__ == '__main__'"


def _lcb_stdin_program(tree):
    """A stdin program as lcb_runner runs it: a final main guard unwrapped, then the top-level imports kept at
    module level and every other statement moved into one function, called once per test."""
    body = list(tree.body)
    if body and _lcb_is_main_guard(body[-1]):
        body = body[:-1] + list(body[-1].body)
    imports = [n for n in body if isinstance(n, (_lcb_ast.Import, _lcb_ast.ImportFrom))]
    rest = [n for n in body if not isinstance(n, (_lcb_ast.Import, _lcb_ast.ImportFrom))]
    function = _lcb_ast.parse("def wrapped_function():\\n    pass\\n").body[0]
    if rest:
        function.body = rest
        _lcb_ast.copy_location(function, rest[0])
    return _lcb_ast.Module(body=imports + [function], type_ignores=[])


def _lcb_load():
    tree = _lcb_ast.parse(code)
    if any(isinstance(n, _lcb_ast.ImportFrom) and n.module == "__future__" for n in tree.body):
        # lcb_runner puts its preamble above the program, where a __future__ import is a syntax error
        raise SyntaxError("from __future__ imports must occur at the beginning of the file")
    module = _lcb_module()
    if _LCB_FN is None:
        program = _lcb_ast.fix_missing_locations(_lcb_stdin_program(tree))
        exec(compile(program, "<candidate>", "exec"), module.__dict__)
        _LCB["run"] = module.wrapped_function
        return
    exec(compile(code, "<candidate>", "exec"), module.__dict__)
    target = module.Solution() if "class Solution" in code else module
    method = getattr(target, _LCB_FN, None)
    assert method is not None, f"the program defines no {{_LCB_FN}}"
    _LCB["run"] = method


class _LcbBuffer:
    def __init__(self, text):
        self.data = text.encode("utf-8")

    def read(self, *args):
        return self.data

    def readline(self, *args):
        return self.data.split(b"\\n")[0] + b"\\n"


class _LcbStdin:
    """The stdin lcb_runner puts in place: read() and readlines() see the whole input (readlines() without
    newlines), readline() reads a line with its newline, buffer.read() gives the bytes, buffer.readline() the first
    line; anything else is a StringIO's."""

    def __init__(self, text):
        self._text = text
        self._io = io.StringIO(text)
        self.buffer = _LcbBuffer(text)

    def read(self, *args):
        return self._text

    def readline(self, *args):
        return self._io.readline(*args)

    def readlines(self, *args):
        return self._text.split("\\n")

    def __getattr__(self, name):
        return getattr(self._io, name)


def _lcb_run_stdin(text):
    """One run, with the patches in lcb_runner's order: its decorators patch read, readlines and readline on the
    stdin that was in place (what a program's `from sys import stdin` holds) before replacing sys.stdin and
    open; stdout is captured and SystemExit swallowed."""
    lines = iter(text.split("\\n"))
    out, real = io.StringIO(), _lcb_sys.stdin
    with _lcb_mock.patch.object(_lcb_sys, "stdout", out), \\
            _lcb_mock.patch.object(real, "read", lambda *args: text), \\
            _lcb_mock.patch.object(real, "readlines", lambda *args: text.split("\\n")), \\
            _lcb_mock.patch.object(real, "readline", lambda *args: next(lines)), \\
            _lcb_mock.patch.object(_lcb_sys, "stdin", _LcbStdin(text)), \\
            _lcb_mock.patch("builtins.open", _lcb_mock.mock_open(read_data=text)):
        try:
            _LCB["run"]()
        except SystemExit:
            pass
    return out.getvalue()


def _lcb_show(value, limit=120):
    text = value if isinstance(value, str) else repr(value)
    return text if len(text) <= limit else text[:limit - 3] + "..."


def _lcb_lines(text):
    return [line.strip() for line in text.strip().split("\\n")]


def _lcb_decimals(line):
    try:
        return [_LcbDecimal(token) for token in line.split()]
    except Exception:
        return None


def _lcb_same_output(got, expected):
    got_lines, expected_lines = _lcb_lines(got), _lcb_lines(expected)
    if len(got_lines) != len(expected_lines):
        return False
    for mine, theirs in zip(got_lines, expected_lines):
        if mine == theirs:
            continue
        a, b = _lcb_decimals(mine), _lcb_decimals(theirs)
        if a is None or b is None or a != b:
            return False
    return True


def _lcb_test(k):
    case = _LCB_CASES[k]
    if _LCB_FN is not None:
        args = [json.loads(line) for line in case["input"].split("\\n")]
        expected = json.loads(case["output"])
        got = _LCB["run"](*args)
        if isinstance(got, tuple):
            got = list(got)
        assert got == expected, f"test {{k}}: expected {{_lcb_show(expected)}}, got {{_lcb_show(got)}}"
        return
    text = case["input"]
    got = _lcb_run_stdin(text)
    assert _lcb_same_output(got, case["output"]), (f"test {{k}}: input {{_lcb_show(repr(text), 60)}}: expected "
                                                   f"{{_lcb_show(repr(case['output'].strip()))}}, printed "
                                                   f"{{_lcb_show(repr(got.strip()))}}")
'''


class LiveCodeBench(Adapter):
    name = "livecodebench"
    columns = ("question_id", "question_content", "public_test_cases", "private_test_cases", "metadata",
               "starter_code", "contest_date")
    key = ("question_content", "public_test_cases", "private_test_cases")
    description = "LiveCodeBench: dated contest problems, functional (LeetCode) or stdin/stdout, graded by its rules"
    script_repos = {REPO: release_files}

    def tasks(self, rows: list[Row], source: SourceContext) -> list[Task]:
        return [_task(r, source) for r in rows]


def _text(data: dict, name: str, where: str) -> str:
    value = data.get(name)
    if not isinstance(value, str):
        raise UserError(f"{where}: field {name!r} must be text, got {type(value).__name__}")
    return value


def contest_date(value: str, where: str) -> str:
    try:
        return dt.datetime.fromisoformat(value).isoformat()
    except (TypeError, ValueError):
        raise UserError(f"{where}: contest_date {value!r} is not an ISO date") from None


def _task(row: Row, source: SourceContext) -> Task:
    from codelutra_data.builders.prompts import python_prompt

    data, where = row.data, row.where
    for name in ("question_id", "question_content", "public_test_cases", "private_test_cases"):
        _text(data, name, where)
    meta = data.get("metadata") or "{}"
    try:
        meta = json.loads(meta) if isinstance(meta, str) else meta
        public = decode_cases(data["public_test_cases"])
        private = decode_cases(data["private_test_cases"]) if data["private_test_cases"] else []
    except (ValueError, TypeError, zlib.error, pickle.UnpicklingError, EOFError, AttributeError) as exc:
        raise UserError(f"{where}: test cases or metadata cannot be read ({type(exc).__name__}: "
                        f"{str(exc)[:100]})") from None
    cases = public + private
    if not isinstance(meta, dict) or not isinstance(cases, list) or not cases or not all(
            isinstance(c, dict) and isinstance(c.get("input"), str) and isinstance(c.get("output"), str)
            for c in cases):
        raise UserError(f"{where}: a LiveCodeBench problem needs test cases with text input and output")
    fn_name = meta.get("func_name") or None
    starter = data.get("starter_code") or ""
    question = data["question_content"]
    if fn_name:
        prompt = python_prompt("lcb-call-v1", question=question, starter=starter)
    else:
        prompt = python_prompt("lcb-stdin-v1", question=question)
    harness = HARNESS.format(decoder=inspect.getsource(_NoGlobals) + "\n\n" + inspect.getsource(decode_cases),
                             fn_name=fn_name, public=data["public_test_cases"])
    steps = [["_lcb_load()", False]] + [[f"_lcb_test({k})", True] for k in range(len(cases))]
    context = {"entry_point": None, "setup": "", "test_setup": harness, "tests": steps, "mode": "source",
               "fail_fast": True, "step_cpu_s": [TEST_CPU_S] * len(steps),
               "job_cpu_s": round((TEST_CPU_S + 1) * len(cases) + 5, 2),
               "test_data": data["private_test_cases"] if private else ""}
    metadata = {"template": prompt_template(fn_name), "problem": question, "platform": data.get("platform", ""),
                "difficulty": data.get("difficulty", ""), "title": data.get("question_title", ""),
                "starter_code": starter, "tests": len(cases)}
    if data.get("contest_date"):
        metadata["contest_date"] = contest_date(data["contest_date"], where)
    return Task(task_id=data["question_id"], source=source.name, domain="python", prompt=prompt, context=context,
                reference="", split=data.get("split") or row.split or "test", metadata=metadata)


def prompt_template(fn_name: str | None) -> str:
    return "lcb-call-v1" if fn_name else "lcb-stdin-v1"
