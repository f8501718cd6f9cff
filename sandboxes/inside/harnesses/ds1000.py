"""DS-1000, graded as its test_ds1000.py grades, in one process: each problem's own `test_execution(code)` puts the
program into its `exec_context` and runs it with `exec`. The program's code is only ever compiled there (an answer
indented to sit inside the context's function is valid), under 120 s, output swallowed, stdin raising when read,
nothing disabled (its reliability_guard is commented out). Ours on top: what the program leaves in the namespace
the context runs it in (its `result`) is checked for types that compare by their own rules (trust.py) before the
problem's test compares it."""

from __future__ import annotations

import builtins


def shared(namespace: dict, job: dict, check):
    """The tests' `exec`, checking what the program's code bound; nothing to watch beyond the builtins."""
    real_exec = builtins.exec

    def exec_(source, globals=None, locals=None):
        if globals is None:
            raise TypeError("exec() without a namespace is not what DS-1000's tests do")
        before = dict(globals) if isinstance(globals, dict) else {}
        real_exec(source, globals, locals) if locals is not None else real_exec(source, globals)
        for key, value in list(globals.items()) if isinstance(globals, dict) else ():
            if not key.startswith("__") and (key not in before or before[key] is not value):
                check(value)

    namespace["__builtins__"]["exec"] = exec_
    return lambda: []
