"""Suites whose tests must share the program's process (DS-1000's `test_execution(code)`, BigCodeBench's unittest
module): one process runs the suite's test code, which runs the program handed to it as the text `code`. The
tests' namespace has its own copy of the builtins, per-test CPU limits are an ITIMER_PROF in this process, and a
program that changed a guarded object of the harness fails whatever its tests said."""

from __future__ import annotations

import builtins
import signal
import sys
import time

import steps

# Attributes a program could overwrite to make failing tests pass; any change fails the job.
GUARDED = {"builtins": None, "unittest.case": ("TestCase",), "numpy.testing": None, "pandas.testing": None,
           "math": ("isclose",), "operator": None}


def snapshot() -> list:
    """Identity of every guarded attribute, taken before the program runs."""
    snap = [(sys.modules, name, sys.modules[name], "sys.modules") for name in (*GUARDED, "numpy", "pandas", "unittest")
            if name in sys.modules]
    for module_name, attrs in GUARDED.items():
        module = sys.modules.get(module_name)
        if module is None:
            continue
        containers = [(vars(module), module_name)]
        if attrs is not None:
            containers = []
            for attr in attrs:
                obj = getattr(module, attr, None)
                if isinstance(obj, type):
                    containers.append((vars(obj), "%s.%s" % (module_name, attr)))
                elif obj is not None:
                    snap.append((vars(module), attr, obj, module_name))
        for mapping, label in containers:
            snap.extend((mapping, key, value, label) for key, value in list(mapping.items()))
    return snap


def tampered(snap: list):
    for mapping, key, original, label in snap:
        if key not in mapping or mapping[key] is not original:
            return "%s.%s" % (label, key)
    return None


def _on_sigprof(signum, frame):
    raise steps.TestTimeout(_on_sigprof.limit)


def run(job: dict, report) -> None:
    runner = steps.Runner(job, report)
    snap = snapshot()
    namespace = {"__name__": "__test__", "code": job["code"], "__builtins__": dict(vars(builtins))}
    if job.get("data"):
        namespace["test_data"] = job["data"]
    if not runner.test_setup(namespace):
        return
    limits = job.get("step_cpu_s") or []
    if limits:
        signal.signal(signal.SIGPROF, _on_sigprof)

    def run_step(index: int, code) -> float:
        limit = limits[index] if index < len(limits) else 0
        started = time.process_time()
        if limit:
            _on_sigprof.limit = limit
            signal.setitimer(signal.ITIMER_PROF, limit)
        try:
            exec(code, namespace)
        finally:
            if limit:
                signal.setitimer(signal.ITIMER_PROF, 0)
        return time.process_time() - started

    runner.run_steps(namespace, run_step, tampered=lambda: tampered(snap))
