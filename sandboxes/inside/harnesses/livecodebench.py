"""LiveCodeBench, graded as lcb_runner grades (lcb_runner/evaluation/testing_util.py), with the program in its own
process: the judge holds the test cases and compares; the program's process gets each test's input only.

Functional (LeetCode) problems: the program is run under lcb_runner's preamble of star imports, its `Solution()`
(or the module, without a `class Solution`) gives the method named `func_name`, which the judge calls on the
JSON-decoded arguments; the result, a tuple taken as a list, must equal the expected value. Stdin problems: the
program is prepared as lcb_runner prepares it (a final `if __name__ == '__main__':` unwrapped, top-level imports
kept, every other statement moved into one function, so a top-level `return` is valid), run once per test with
lcb_runner's patches of stdin and `open` in its order, and its printed text compared line by line, each line
equal as text or as a list of `Decimal` tokens.

This file imports nothing of the sandbox's, so the host reads the test cases with the same `decode_cases`."""

from __future__ import annotations

import ast
import base64
import builtins
import io
import json
import pickle
import sys
import types
import zlib
from decimal import Decimal

PREAMBLE = ("from string import *\nfrom re import *\nfrom datetime import *\nfrom collections import *\n"
            "from heapq import *\nfrom bisect import *\nfrom copy import *\nfrom math import *\n"
            "from random import *\nfrom statistics import *\nfrom itertools import *\nfrom functools import *\n"
            "from operator import *\nfrom io import *\nfrom sys import *\nfrom json import *\n"
            "from builtins import *\nfrom typing import *\nimport string\nimport re\nimport datetime\n"
            "import collections\nimport heapq\nimport bisect\nimport copy\nimport math\nimport random\n"
            "import statistics\nimport itertools\nimport functools\nimport operator\nimport io\nimport sys\n"
            "import json\nsys.setrecursionlimit(50000)\n")
PROGRAM_ARGS = ("fn_name",)  # what the program's process is told: never a test case


class _NoGlobals(pickle.Unpickler):
    """Unpickles plain data only: any class or function a pickle names is refused."""

    def find_class(self, module, name):
        raise pickle.UnpicklingError("refused: the test cases name %s.%s" % (module, name))


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


# ------------------------------------------------------------------------------------------ the program's side
def _module():
    module = types.ModuleType("tmp_sol", "")
    module.__dict__["__builtins__"] = builtins
    exec(compile(PREAMBLE, "<lcb imports>", "exec", dont_inherit=True), module.__dict__)
    return module


def _is_main_guard(node) -> bool:
    return isinstance(node, ast.If) and ast.unparse(node.test).strip() == "__name__ == '__main__'"


def _stdin_program(tree: ast.Module) -> ast.Module:
    body = list(tree.body)
    if body and _is_main_guard(body[-1]):
        body = body[:-1] + list(body[-1].body)
    imports = [n for n in body if isinstance(n, (ast.Import, ast.ImportFrom))]
    rest = [n for n in body if not isinstance(n, (ast.Import, ast.ImportFrom))]
    function = ast.parse("def wrapped_function():\n    pass\n").body[0]
    if rest:
        function.body = rest
        ast.copy_location(function, rest[0])
    return ast.fix_missing_locations(ast.Module(body=imports + [function], type_ignores=[]))


def load(code: str, setup: str, args: dict) -> dict:
    """In the program's process: the program prepared as lcb_runner prepares it; `solve` runs one test."""
    sys.set_int_max_str_digits(50000) if hasattr(sys, "set_int_max_str_digits") else None
    tree = ast.parse(code, "<candidate>")
    if any(isinstance(n, ast.ImportFrom) and n.module == "__future__" for n in tree.body):
        # lcb_runner puts its preamble above the program, where a __future__ import is a syntax error
        raise SyntaxError("from __future__ imports must occur at the beginning of the file")
    module = _module()
    stdin = args.get("fn_name") is None
    program = _stdin_program(tree) if stdin else code
    exec(compile(program, "<candidate>", "exec", dont_inherit=True), module.__dict__)
    # lcb_runner's rule, on the text it compiles and in both modes: a program whose text has `class Solution` is
    # its instance (a stdin program's text is the rewritten one, comments gone; its class lives inside
    # wrapped_function, so that fails there)
    text = ast.unparse(program) if stdin else code
    target = module.Solution() if "class Solution" in text else module
    method = getattr(target, "wrapped_function" if stdin else args["fn_name"], None)
    assert method is not None, "the program defines no %s" % ("wrapped_function" if stdin else args["fn_name"])
    return {"solve": (lambda text: _run_stdin(method, text)) if stdin else method}


class _Buffer:
    def __init__(self, text):
        self.data = text.encode("utf-8")

    def read(self, *args):
        return self.data

    def readline(self, *args):
        return self.data.split(b"\n")[0] + b"\n"


class _Stdin:
    """The stdin lcb_runner puts in place: read() and readlines() see the whole input (readlines() without
    newlines), readline() reads a line with its newline, buffer.read() gives the bytes, buffer.readline() the
    first line; anything else is a StringIO's."""

    def __init__(self, text):
        self._text = text
        self._io = io.StringIO(text)
        self.buffer = _Buffer(text)

    def read(self, *args):
        return self._text

    def readline(self, *args):
        return self._io.readline(*args)

    def readlines(self, *args):
        return self._text.split("\n")

    def __getattr__(self, name):
        return getattr(self._io, name)


def _run_stdin(run, text: str) -> str:
    """One run, with the patches in lcb_runner's order: its decorators patch read, readlines and readline on the
    stdin that was in place (what a program's `from sys import stdin` holds) before replacing sys.stdin and open;
    stdout is captured and SystemExit swallowed."""
    from unittest import mock

    lines = iter(text.split("\n"))
    out, real = io.StringIO(), sys.stdin
    with mock.patch.object(sys, "stdout", out), \
            mock.patch.object(real, "read", lambda *args: text), \
            mock.patch.object(real, "readlines", lambda *args: text.split("\n")), \
            mock.patch.object(real, "readline", lambda *args: next(lines)), \
            mock.patch.object(sys, "stdin", _Stdin(text)), \
            mock.patch("builtins.open", mock.mock_open(read_data=text)):
        try:
            run()
        except SystemExit:
            pass
    return out.getvalue()


# ------------------------------------------------------------------------------------------ the judge's side
def _show(value, limit: int = 120) -> str:
    text = value if isinstance(value, str) else repr(value)
    return text if len(text) <= limit else text[:limit - 3] + "..."


def _lines(text: str) -> list:
    return [line.strip() for line in text.strip().split("\n")]


def _decimals(line: str):
    try:
        return [Decimal(token) for token in line.split()]
    except Exception:  # noqa: BLE001
        return None


def same_output(got: str, expected: str) -> bool:
    got_lines, expected_lines = _lines(got), _lines(expected)
    if len(got_lines) != len(expected_lines):
        return False
    for mine, theirs in zip(got_lines, expected_lines):
        if mine == theirs:
            continue
        a, b = _decimals(mine), _decimals(theirs)
        if a is None or b is None or a != b:
            return False
    return True


def judge(namespace: dict, program, job: dict) -> None:
    """The tests' `_lcb_load()` and `_lcb_test(k)`: the cases stay here; the program gets inputs only."""
    args = job.get("harness_args") or {}
    cases = decode_cases(args["public"]) + (decode_cases(job["data"]) if job.get("data") else [])
    functional = args.get("fn_name") is not None
    state = {}

    def load():
        program.load()
        state["solve"] = program.get("solve")

    def test(k: int):
        case = cases[k]
        if functional:
            call = [json.loads(line) for line in case["input"].split("\n")]
            expected = json.loads(case["output"])
            got = state["solve"](*call)
            if isinstance(got, tuple):
                got = list(got)
            assert got == expected, "test %d: expected %s, got %s" % (k, _show(expected), _show(got))
            return
        text = case["input"]
        got = state["solve"](text)
        if not isinstance(got, str):
            raise TypeError("the program's output is not text")
        assert same_output(got, case["output"]), "test %d: input %s: expected %s, printed %s" % (
            k, _show(repr(text), 60), _show(repr(case["output"].strip())), _show(repr(got.strip())))

    namespace["_lcb_load"] = load
    namespace["_lcb_test"] = test
