"""BigCodeBench's format (bigcode/bigcodebench, bigcode/bigcodebench-hard), graded as its harness grades
(bigcodebench/eval/__init__.py `unsafe_execute` at v0.2.5).

Each problem is two tasks with the same id: split `complete` (the docstring-and-signature prompt) and split
`instruct` (the natural-language instruction), as the harness's `--split`. The dataset's own splits are versions;
the newest in the data is read (v0.1.4 at the pinned commits). A program is graded as the harness does
(sandboxes/inside/harnesses/bigcodebench.py): the problem's `code_prompt` with a `pass` body (its "calibration"),
the program and the test code compiled as one text; every test of `TestCases` in one `unittest` run; the program
passes the official rule when no test fails or errs. Each test is a step, so feedback names the failing test; our
verdict also needs no test skipped (steps after `OFFICIAL_STEP`: eval reports how many programs the official rule
alone passes). Time: the harness's 240 s per problem, counted in CPU seconds; memory: 8 GiB of address space (the
harness: 30 GiB, more than a shared machine should give one program). These tasks import
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
# The official rule as a step: the failure checks come before it and the skip checks (ours alone: a skipped test is
# not a passed one) after it, so a program whose first failure comes later passes the official rule, which eval
# reports beside our verdict.
OFFICIAL_STEP = "_bcb_official()"

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
    names, _certain = test_names(data["test"])
    prefix = data["code_prompt"] + "\n    pass\n"
    # Each test a step for feedback; then the harness's own rule, which also sees what the names miss (a failing
    # subTest, setUpClass, a test made by assignment): no failure and no error at all; then ours: no test skipped.
    steps = [["_bcb_load()", False], ["_bcb_run()", False]] + [[f"_bcb_check({n!r})", True] for n in names]
    steps += [[OFFICIAL_STEP, True]] + [[f"_bcb_skipped({n!r})", True] for n in names] + [["_bcb_skips()", True]]
    libs = data.get("libs") or "[]"
    try:
        libs = ast.literal_eval(libs) if isinstance(libs, str) else list(libs)
    except (ValueError, SyntaxError):
        libs = []
    context = {"entry_point": None, "setup": "", "test_setup": "", "tests": steps, "mode": "source",
               "harness": "bigcodebench", "harness_args": {"prefix": prefix, "test": data["test"]},
               "insert_offset": prefix.count("\n"), "job_cpu_s": TASK_CPU_S, "memory_mb": MEMORY_MB,
               "official_step": OFFICIAL_STEP}
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
