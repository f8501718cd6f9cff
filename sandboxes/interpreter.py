"""Another environment's Python for the sandbox (`--sandbox-python PATH`): BigCodeBench's tasks need about 70
third-party libraries at its pinned versions, which belong in their own environment, not ours. The interpreter is
asked once (a fixed probe, no model-written code) for its version and the folders it imports from; those are
bind-mounted read-only into the sandbox like ours, and the worker (standard library only) runs under it."""

from __future__ import annotations

import json
import os
import subprocess
from dataclasses import dataclass
from functools import lru_cache

from codelutra_data.errors import UserError

MIN_VERSION = (3, 8)
PROBE = ("import json, sys; print(json.dumps({'version': list(sys.version_info[:3]), 'executable': sys.executable, "
         "'roots': [sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix] + "
         "[p for p in sys.path if p]}))")


@dataclass(frozen=True)
class Interpreter:
    path: str
    version: str
    roots: tuple[str, ...]  # what it imports from, to bind read-only

    @property
    def label(self) -> str:
        return f"python {self.version} at {self.path}"


@lru_cache(maxsize=8)
def probe(path: str) -> Interpreter:
    """The interpreter at `path`, checked: it runs, is Python 3.8 or later, and says where it imports from."""
    full = os.path.abspath(os.path.expanduser(path))
    if not os.path.isfile(full) or not os.access(full, os.X_OK):
        raise UserError(f"--sandbox-python {path}: no executable file there")
    try:
        done = subprocess.run([full, "-I", "-c", PROBE], capture_output=True, text=True, timeout=60,
                              stdin=subprocess.DEVNULL)
        info = json.loads(done.stdout.strip().splitlines()[-1]) if done.returncode == 0 else None
    except (OSError, subprocess.TimeoutExpired, ValueError, IndexError):
        info = None
    if not isinstance(info, dict) or not isinstance(info.get("version"), list):
        raise UserError(f"--sandbox-python {path}: not a Python interpreter that runs here")
    version = tuple(info["version"])
    if version < MIN_VERSION:
        raise UserError(f"--sandbox-python {path}: Python {'.'.join(map(str, version))} is too old (the sandbox's "
                        f"worker needs {'.'.join(map(str, MIN_VERSION))} or later)")
    roots = tuple(sorted({os.path.realpath(r) for r in info.get("roots", []) if isinstance(r, str)
                          and os.path.isdir(r)} | {os.path.dirname(full)}))
    return Interpreter(full, ".".join(map(str, version)), roots)
