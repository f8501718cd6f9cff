"""BigCodeBench, graded as bigcodebench 0.2.5's `untrusted_check` grades, in one process (its tests patch the
program's module and read its globals, so they must share its process).

As the harness: the task's `code_prompt` with a `pass` body, then the program, then the test code, compiled as ONE
text (a body continuing `task_func` after the `pass` is valid, a `from __future__` import in the program is not);
the program in a module named `__test__` registered in `sys.modules`, with `sys`, `os` and `environ` in it; TZ=UTC,
one thread for OpenMP, TensorFlow quiet and without oneDNN, `exit` and `quit` None, matplotlib's figures closed;
output swallowed and stdin raising when read; every test of `TestCases` in one unittest run. Ours on top: the
test code runs in a namespace of its own (the program's names reach it, never over a builtin's), the values the
program hands the tests are checked for types that compare by their own rules (trust.py), and a skipped test is
not a passed one. The official rule (no failure, no error; skips pass) is a step of its own, `_bcb_official()`,
so a verdict says when the official rule alone would have passed."""

from __future__ import annotations

import builtins
import os
import sys
import time
import types
import unittest

import guards


def _wrap(value, check):
    """A program function as the tests see it: what it returns is checked before they compare it."""
    if not callable(value) or isinstance(value, type) or isinstance(value, types.ModuleType):
        return value

    def called(*args, **kwargs):
        out = value(*args, **kwargs)
        check(out)
        return out

    try:
        called.__name__, called.__doc__, called.__wrapped__ = value.__name__, value.__doc__, value
    except Exception:  # noqa: BLE001 - a callable without a name
        pass
    return called


def shared(namespace: dict, job: dict, check):
    """The steps' functions (`_bcb_load()`, `_bcb_run()`, `_bcb_check(name)`: no failure or error,
    `_bcb_official()`: none at all, `_bcb_skipped(name)`: not skipped, `_bcb_skips()`: none skipped); returns
    what to watch for tampering once the tests are loaded (their namespace, their TestCases)."""
    args = job.get("harness_args") or {}
    prefix, test = args["prefix"], args["test"]
    state = {}
    os.environ.update(TZ="UTC", OMP_NUM_THREADS="1", TF_CPP_MIN_LOG_LEVEL="3", TF_ENABLE_ONEDNN_OPTS="0")
    time.tzset()
    guards.apply_guard("bigcodebench")
    guards.apply_io("swallow")
    _capture_subprocess_output()
    try:
        import matplotlib.pyplot as plt
        plt.close("all")
    except Exception:  # noqa: BLE001 - matplotlib is optional
        pass

    def load():
        whole = prefix + job["code"] + "\n" + test
        compile(whole, "<string>", "exec", dont_inherit=True)  # the harness's one text: its syntax errors
        module = types.ModuleType("__test__")
        module.__dict__.update({"__builtins__": builtins, "__file__": "__test__.py", "__package__": None,
                                "__doc__": None, "sys": sys, "os": os, "environ": os.environ})
        program = compile(prefix + job["code"], "<string>", "exec", dont_inherit=True)
        tests = compile(test, "<tests>", "exec", dont_inherit=True)
        exec(program, module.__dict__)
        sys.modules["__test__"] = module
        clean = dict(namespace["__builtins__"])
        own = {k: _wrap(v, check) for k, v in module.__dict__.items() if not k.startswith("__") and k not in clean}
        tests_ns = dict(own, __name__="__test__", __builtins__=clean)  # tests name the module by __name__
        exec(tests, tests_ns)
        state.update(module=module, tests=tests_ns)

    def run():
        cases = state["tests"]["TestCases"]
        suite = unittest.TestLoader().loadTestsFromTestCase(cases)
        result = unittest.TestResult()
        suite.run(result)
        state["issues"] = {t.id().split(".")[-1]: trace for t, trace in list(result.failures) + list(result.errors)}
        state["skipped"] = sorted(t.id().split(".")[-1] for t, _ in result.skipped)

    def check_one(name):
        issues = state["issues"]
        assert name not in issues, name + ": " + _tail(issues[name])

    def not_skipped(name):
        assert name not in state["skipped"], name + " was skipped: a skipped test is not a passed one"

    def official():
        issues = state["issues"]
        assert not issues, "failed: " + ", ".join(sorted(issues))

    def skips():
        assert not state["skipped"], "skipped (not passed): " + ", ".join(state["skipped"])

    def watched() -> list:
        tests = state.get("tests")
        if tests is None:
            return []
        entries = [(tests, k, v, "the tests' namespace") for k, v in list(tests.items())]
        cases = tests.get("TestCases")
        if isinstance(cases, type):
            entries += [(vars(cases), k, v, "TestCases") for k, v in list(vars(cases).items())]
        return entries

    namespace.update(_bcb_load=load, _bcb_run=run, _bcb_check=check_one, _bcb_official=official,
                     _bcb_skipped=not_skipped, _bcb_skips=skips)
    return watched


def _capture_subprocess_output() -> None:
    """The harness's swallow_subprocess_output: `subprocess.Popen` and `subprocess.run` capture the child's output
    unless told otherwise (so `subprocess.run(cmd).stdout` is the output there, and here)."""
    import subprocess

    popen, run = subprocess.Popen, subprocess.run

    def quiet(kwargs: dict) -> dict:
        if not kwargs.get("capture_output"):
            kwargs.setdefault("stdout", subprocess.PIPE)
            kwargs.setdefault("stderr", subprocess.PIPE)
        return kwargs

    class Popen(popen):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **quiet(kwargs))

    subprocess.Popen = Popen
    subprocess.run = lambda *args, **kwargs: run(*args, **quiet(kwargs))


def _tail(trace: str) -> str:
    lines = [line for line in str(trace).strip().splitlines() if line.strip()]
    return " | ".join(lines[-2:])[:300]
