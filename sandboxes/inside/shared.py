"""Suites whose tests must share the program's process (DS-1000's `test_execution(code)`, BigCodeBench's unittest
module): one process runs the suite's test code, which runs the program handed to it as the text `code`.

The tests' namespace is their own, with its own copy of the builtins; once the suite's test code is loaded the
process is sealed (audit.py: no frames, garbage collector, tracing, ctypes or /proc memory for the program's
code); what the program hands the tests is checked for types that compare by their own rules (trust.py); per-test
CPU limits are an ITIMER_PROF in this process; and a program that changed any object the tests rely on (the
guarded modules and classes below, the tests' builtins, namespace and test classes) fails whatever the tests
said. The harness keeps no state where the program can reach it (module globals): its state lives in closures
and frames, which the seal keeps from the program."""

from __future__ import annotations

import builtins
import signal
import sys
import time

import audit
import guards
import steps
import trust

# What a program could overwrite to make failing tests pass, or to make this harness report what it did not see:
# each module's dict, and the dicts of the classes named. Any change fails the job.
GUARDED = {"builtins": (), "math": (), "operator": (), "json": (), "json.encoder": ("JSONEncoder",),
           "unittest": (), "unittest.case": ("TestCase", "_Outcome"), "unittest.result": ("TestResult",),
           "unittest.suite": ("TestSuite", "BaseTestSuite"), "unittest.loader": ("TestLoader",),
           "unittest.mock": ("_patch",), "numpy": (), "numpy.testing": (), "numpy.testing._private.utils": (),
           "numpy.core.numeric": (), "numpy._core.numeric": (), "pandas": ("DataFrame", "Series", "Index"),
           "pandas.testing": (), "pandas._testing": (), "pandas._testing.asserters": (),
           "pandas.core.dtypes.missing": (), "__main__": (), "steps": ("Runner",), "shared": (), "guards": (),
           "trust": (), "audit": (), "show": (), "harnesses.bigcodebench": (), "harnesses.ds1000": ()}


def snapshot() -> list:
    """Identity of every guarded attribute, taken before the program runs."""
    snap = [(sys.modules, name, sys.modules[name], "sys.modules") for name in GUARDED if name in sys.modules]
    for module_name, classes in GUARDED.items():
        module = sys.modules.get(module_name)
        if module is None:
            continue
        containers = [(vars(module), module_name)]
        containers += [(vars(getattr(module, c)), "%s.%s" % (module_name, c)) for c in classes
                       if isinstance(getattr(module, c, None), type)]
        for mapping, label in containers:
            snap.extend((mapping, key, value, label) for key, value in list(mapping.items()))
    return snap


def tampered(snap: list):
    for mapping, key, original, label in snap:
        if key not in mapping or mapping[key] is not original:
            return "%s.%s" % (label, key)
    return None


def _harness(job: dict):
    import importlib

    return importlib.import_module("harnesses." + job["harness"]) if job.get("harness") else None


def _on_sigprof(signum, frame):
    raise steps.TestTimeout(_on_sigprof.limit)


def run(job: dict, report) -> None:
    runner = steps.Runner(job, report)
    harness = _harness(job)
    guards.apply_guard(job.get("guard") or "")
    guards.apply_io(job.get("io") or "keep")
    namespace = {"__name__": "__test__", "code": job["code"], "__builtins__": dict(vars(builtins))}
    if job.get("data"):
        namespace["test_data"] = job["data"]
    watched = harness.shared(namespace, job, trust.default_checker()) if harness else (lambda: [])
    if not runner.test_setup(namespace):
        return
    snap = snapshot() + [(namespace["__builtins__"], k, v, "the tests' builtins")
                         for k, v in list(namespace["__builtins__"].items())]
    snap += [(namespace, k, v, "the tests' namespace") for k, v in list(namespace.items()) if k != "__builtins__"]
    sealed = getattr(harness, "SEALED", True)
    if sealed:
        audit.seal()
    else:
        snap = []
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

    late: list = []
    changed = tampered  # taken now: the module's own name may be the program's by the time it is asked

    def check_tampering():
        return changed(snap) or changed(late)

    def run_and_watch(index: int, code) -> float:
        used = run_step(index, code)
        if index == 0:  # the tests are loaded by the first step: from then on, they are watched too
            late.extend(watched())
        return used

    runner.run_steps(namespace, run_and_watch, tampered=check_tampering)
