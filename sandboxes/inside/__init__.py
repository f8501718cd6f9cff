"""What runs inside the Python sandbox: the worker (PID 1 of a bubblewrap sandbox), the program zygote, the judge,
the program's side of a call, and each suite's harness.

These files are started as scripts inside bubblewrap, possibly under another environment's interpreter
(`--sandbox-python`), so they use the standard library only (numpy and pandas when present) and import each other
by their plain names: the worker puts this folder on `sys.path`. Nothing here imports the package, and the package
imports nothing from here but the path of the worker script (tests import these files the same way the worker
does, see tests/inside.py).
"""
