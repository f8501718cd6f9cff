"""Running a job's tests step by step and turning what happened into the verdict the harness reports: the first
failure's status, message, test and program line, and the value the failing assert tested."""

from __future__ import annotations

import ast
import time
import traceback

import show

FEEDBACK_LIMIT = 600
CANDIDATE_FILE = "<candidate>"
CAPTURE = "_codelutra_tested_value_"


class TestTimeout(BaseException):
    """A test ran past its own CPU limit (EvalPlus-style per-test limits)."""

    def __init__(self, limit: float):
        super().__init__(limit)
        self.limit = limit


# ------------------------------------------------------------------------------------------ describing
def describe(exc: BaseException) -> str:
    given = getattr(exc, "described", None)
    if type(given) is str:
        return given
    if isinstance(exc, SyntaxError) and isinstance(exc.msg, str):  # its text without the file and line
        return "%s: %s" % (type(exc).__name__, exc.msg)
    try:
        text = str(exc)
    except Exception:  # noqa: BLE001 - a hostile __str__ must not cost the verdict
        text = ""
    return "%s: %s" % (type(exc).__name__, text) if text else type(exc).__name__


def program_line(exc: BaseException, insert_offset: int = -1, n_lines: int = 0) -> int | None:
    """The program's line an exception came from: as the program's process reported it, else the deepest
    traceback line inside the program's own code (DS-1000's inserted code mapped back through `[insert]`)."""
    given = getattr(exc, "program_line", None)
    if type(given) is int:
        return given
    if isinstance(exc, SyntaxError) and exc.filename == CANDIDATE_FILE:
        return exc.lineno
    if isinstance(exc, SyntaxError) and exc.filename == "<string>" and insert_offset >= 0 and exc.lineno:
        inner = exc.lineno - insert_offset
        return inner if 1 <= inner <= n_lines else None
    line = None
    for frame in traceback.extract_tb(exc.__traceback__):
        if frame.filename == CANDIDATE_FILE:
            line = frame.lineno
        elif frame.filename == "<string>" and insert_offset >= 0 and frame.lineno is not None:
            inner = frame.lineno - insert_offset
            if 1 <= inner <= n_lines:
                line = inner
    return line


def is_program_syntax(exc: BaseException, insert_offset: int = -1, n_lines: int = 0) -> bool:
    """A syntax error in the program's own text (for DS-1000, inside the `[insert]`ed lines of the suite's code)."""
    if getattr(exc, "program_syntax", False) is True:
        return True
    if not isinstance(exc, SyntaxError):
        return False
    if getattr(exc, "filename", None) == CANDIDATE_FILE:
        return True
    return (exc.filename == "<string>" and insert_offset >= 0 and type(exc.lineno) is int
            and 1 <= exc.lineno - insert_offset <= n_lines)


def shown(value) -> str:
    """The value a failing assert tested, for feedback: a value of the program's process is shown as that
    process renders it (bounded; a program that hangs there shows only its type)."""
    if type(value).__name__ == "Remote":
        try:
            text = object.__getattribute__(value, "_peer").request("show", object.__getattribute__(value, "_id"))
            return text if type(text) is str else ""
        except BaseException:  # noqa: BLE001 - feedback never costs the verdict
            return "<%s object>" % object.__getattribute__(value, "_type")
    return show.safe_repr(value)


class _Capture(ast.NodeTransformer):
    """Wrap the tested expression of each assert (the left side of a comparison, the operand of `not`, the
    first argument of a call such as isclose(f(x), y)) in a recorder call, evaluated once and in order."""

    def visit_Assert(self, node: ast.Assert) -> ast.Assert:
        test = node.test
        if isinstance(test, ast.Compare):
            test.left = self._wrap(test.left)
        elif isinstance(test, ast.UnaryOp) and isinstance(test.op, ast.Not):
            test.operand = self._wrap(test.operand)
        elif isinstance(test, ast.Call) and test.args:
            test.args[0] = self._wrap(test.args[0])
        return node

    @staticmethod
    def _wrap(expr: ast.expr) -> ast.expr:
        call = ast.Call(func=ast.Name(id=CAPTURE, ctx=ast.Load()), args=[expr], keywords=[])
        return ast.copy_location(call, expr)


def compile_test(source: str, filename: str):
    """The test compiled with its asserts recording their tested value; plain when that cannot be done."""
    try:
        tree = _Capture().visit(ast.parse(source))
        return compile(ast.fix_missing_locations(tree), filename, "exec", dont_inherit=True)
    except Exception:  # noqa: BLE001 - the untransformed test is always a valid fallback
        return compile(source, filename, "exec", dont_inherit=True)


# ------------------------------------------------------------------------------------------ the run
class Runner:
    """A job's steps and its report. `report(result)` is called once, with the verdict."""

    def __init__(self, job: dict, report):
        self.job, self.report = job, report
        self.offset = job.get("insert_offset", -1)
        self.n_lines = (job.get("code") or "").count("\n") + 1
        self.result = {"tests_passed": 0, "tests_total": sum(1 for _, is_test in job["tests"] if is_test),
                       "error_lines": []}

    def finish(self, status: str, feedback: str = "", line=None, error: str = "", test: str = "",
               returned: str = "") -> None:
        self.result.update(status=status, feedback=feedback[:FEEDBACK_LIMIT], error=error[:300],
                           failing_test=test[:300], returned=returned[:200])
        if line:
            self.result["error_lines"] = [line]
        self.report(self.result)

    def line(self, exc: BaseException):
        return program_line(exc, self.offset, self.n_lines)

    def program_failed(self, exc: BaseException, before_tests: bool):
        """The program could not be loaded (or its harness could not start it)."""
        from peer import ProgramExit, ProgramGone

        if isinstance(exc, ProgramExit) or isinstance(exc, SystemExit):
            code = exc.code
            return self.finish("runtime_error", "the program called exit(%r) before the tests ran" % (code,),
                               error="SystemExit(%r)" % (code,))
        if isinstance(exc, ProgramGone):
            return self.finish("runtime_error", "%s before the tests ran" % exc, error=str(exc))
        text, line = describe(exc), self.line(exc)
        if is_program_syntax(exc, self.offset, self.n_lines):
            return self.finish("syntax_error", text + (" (line %d)" % line if line else ""), line, text)
        status = "oom" if isinstance(exc, MemoryError) else "runtime_error"
        return self.finish(status, text, line, text)

    def test_setup(self, namespace: dict) -> bool:
        try:
            if self.job.get("test_setup"):
                exec(compile(self.job["test_setup"], "<tests>", "exec", dont_inherit=True), namespace)
            return True
        except BaseException as exc:  # noqa: BLE001
            self.finish("runtime_error", "test setup failed: " + describe(exc), self.line(exc), describe(exc))
            return False

    def run_steps(self, namespace: dict, run_step, tampered=None, before_report=None) -> None:
        """Each step through `run_step(index, code) -> CPU seconds`; a failing non-test step (or with fail_fast
        any failing step) stops the rest. `tampered()` names an object the tests or the harness rely on that the
        program changed, if any: asked after every step, and a change stops the run (the verdict is then made by
        this method's own `finish`, taken before any step ran)."""
        job, first_failure, measured, tested = self.job, None, [], []
        finish, failed, where = self.finish, self.failed, None

        def record(value):
            tested[:] = [value]
            return value

        namespace[CAPTURE] = record
        for index, (source, is_test) in enumerate(job["tests"]):
            tested.clear()
            started = time.process_time()
            try:
                used = run_step(index, compile_test(source, "<test %d>" % index))
                if is_test:
                    self.result["tests_passed"] += 1
            except BaseException as exc:  # noqa: BLE001
                used = time.process_time() - started
                if first_failure is None:
                    first_failure = (exc, source, list(tested))
                if not is_test or job.get("fail_fast"):
                    break
            finally:
                where = tampered() if tampered else None
            if where is not None:
                break
            if job.get("measure_steps"):
                measured.append(round(used, 6))
        if where is not None:
            self.result["tests_passed"] = 0
            return finish("runtime_error", "the program modified the test harness (%s)" % where)
        if job.get("measure_steps"):
            self.result["test_cpu_s"] = measured
        if before_report:
            before_report()
        if first_failure is None:
            return finish("passed" if self.result["tests_passed"] == self.result["tests_total"] else "runtime_error")
        return failed(*first_failure)

    def failed(self, exc: BaseException, source: str, value: list) -> None:
        from peer import ProgramExit, ProgramGone

        line = self.line(exc)
        test_text = source.strip().splitlines()[0][:200] if source.strip() else ""
        test_full = source.strip()
        if isinstance(exc, TestTimeout):
            message = "CPU time limit of %g s for this test exceeded" % exc.limit
            return self.finish("timeout", "%s in test: %s" % (message, test_text), line, message, test_full)
        if isinstance(exc, AssertionError):
            message = describe(exc)
            returned = shown(value[0]) if value else ""
            return self.finish("wrong_answer", "%s in test: %s" % (message, test_text), line, message, test_full,
                               returned)
        if isinstance(exc, (ProgramExit, SystemExit)):
            return self.finish("runtime_error", "the program called exit(%r) during test: %s" % (exc.code, test_text),
                               line, "SystemExit(%r)" % (exc.code,), test_full)
        if isinstance(exc, ProgramGone):
            return self.finish("runtime_error", "%s during test: %s" % (exc, test_text), line, str(exc), test_full)
        if is_program_syntax(exc, self.offset, self.n_lines):
            text = describe(exc)
            return self.finish("syntax_error", text + (" (line %d)" % line if line else ""), line, text, test_full)
        status = "oom" if isinstance(exc, MemoryError) else "runtime_error"
        return self.finish(status, "%s in test: %s" % (describe(exc), test_text), line, describe(exc), test_full)
