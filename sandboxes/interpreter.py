"""Another environment's Python for the sandbox (`--sandbox-python PATH`): BigCodeBench's tasks need about 70
third-party libraries at its pinned versions, which belong in their own environment, not ours.

The interpreter is checked where and how the workers will run it, never on the host outside the sandbox: inside
bubblewrap (with `--isolation none`, here, unsandboxed, as the programs will be), first asked (a fixed probe, no
model-written code) for its version and the folders it imports from, then started as a worker is, with `-I -B`,
the worker's own code (its module, the modules it preloads) and exactly the folders the workers get, read-only:
what a worker needs is proved before any worker starts, and its size then is what `address_space` adds to a
program's memory budget. A script (a wrapper
that starts some Python) is refused: the sandbox runs the interpreter itself, not a script's commands."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from codelutra_data.errors import UserError
from codelutra_data.sandboxes.isolation import SANDBOX_ENV, bwrap_command, detect

WORKER_SCRIPT = Path(__file__).resolve().parent / "inside" / "worker.py"
MIN_VERSION = (3, 8)
PROBE = ("import json, sys; print(json.dumps({'version': list(sys.version_info[:3]), 'executable': sys.executable, "
         "'roots': [sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix] + "
         "[p for p in sys.path if p]}))")
# What a worker does before its first job (its module's code, the modules it preloads), then its size: the
# address space a program's child starts from.
AS_WORKER = ("import runpy, sys; worker = runpy.run_path(sys.argv[1], run_name='codelutra_probe')\n"
             "for name in worker['PRELOAD']:\n"
             "    try: __import__(name)\n"
             "    except Exception: pass\n"
             "import limits\n"
             "print(limits.vm_size_bytes())")


_SANDBOX_OWN = ("/", "/etc", "/dev", "/proc", "/tmp")  # folders the sandbox makes itself: never bound whole


@dataclass(frozen=True)
class Interpreter:
    path: str
    version: str
    roots: tuple[str, ...]  # what it imports from and the file itself, to bind read-only
    size: int = 0  # a worker's address space before its first job, in bytes

    @property
    def label(self) -> str:
        return f"python {self.version} at {self.path}"


def _prefix_guess(path: str) -> str:
    """The folder an interpreter at `path` may import from: ENV for ENV/bin/python, else the file's own folder."""
    folder = os.path.dirname(path)
    return os.path.dirname(folder) if os.path.basename(folder) == "bin" else folder


def resolved(path: str) -> str:
    """The interpreter as Python finds its own environment, with no link left to follow in the sandbox: a virtual
    environment (a pyvenv.cfg in or above its folder) by its folder's real path and its own name (the name is the
    link to the base Python that marks it a venv), any other Python by its real path. An environment reached through
    a link (ENVLINK/bin/python, ENVLINK -> /real/env) then imports from /real/env, which is what is bound."""
    folder = os.path.realpath(os.path.dirname(path))
    if any(os.path.isfile(os.path.join(d, "pyvenv.cfg")) for d in (folder, os.path.dirname(folder))):
        return os.path.join(folder, os.path.basename(path))
    return os.path.realpath(path)


def _links(path: str) -> set[str]:
    """Where each link of the file's own chain leads (a venv's python -> another folder's python3 -> ...), so the
    chain resolves inside the sandbox too."""
    hops, current = set(), os.path.abspath(path)
    for _ in range(40):
        if not os.path.islink(current):
            break
        current = os.path.join(os.path.realpath(os.path.dirname(current)), os.readlink(current))
        current = os.path.join(os.path.realpath(os.path.dirname(current)), os.path.basename(current))
        hops.add(current)
    return hops


def _script_line(path: str) -> str | None:
    try:
        with open(path, "rb") as fh:
            head = fh.read(128)
    except OSError:
        return None
    return head.split(b"\n")[0].decode("utf-8", "replace").strip() if head.startswith(b"#!") else None


def _run(cmd: list[str], isolation: str, roots: tuple[str, ...], what: str) -> subprocess.CompletedProcess:
    """`cmd` (an interpreter and its arguments) run as the workers run: in bubblewrap with `roots` bound
    read-only, or with `--isolation none` here with the sandbox's environment."""
    if isolation != "none":
        status = detect()
        if not status.available:
            raise UserError(f"{what} cannot be checked inside the sandbox: {status.detail}")
        prefix, env = bwrap_command(status.bwrap, 16, roots), {}
    else:
        prefix, env = [], {**SANDBOX_ENV, "HOME": tempfile.gettempdir()}
    return subprocess.run([*prefix, *cmd], capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL,
                          env=env)


def _why(done: subprocess.CompletedProcess) -> str:
    lines = (done.stderr or "").strip().splitlines()
    return lines[-1].strip()[:200] if lines else f"exit status {done.returncode}, no message"


def worker_size(python: str, isolation: str, roots: tuple[str, ...] = (), what: str = "the sandbox's Python") -> int:
    """Start `python` as a worker is started and return its address space before a job (bytes); a UserError
    naming the cause when it cannot start."""
    import resource

    try:
        done = _run([python, "-I", "-B", "-c", AS_WORKER, str(WORKER_SCRIPT)], isolation, roots, what)
        last, why = done.stdout.strip().splitlines()[-1:] if done.returncode == 0 else [], _why(done)
    except (OSError, subprocess.TimeoutExpired) as exc:
        last, why = [], type(exc).__name__
    if not last or not last[0].isdigit():
        soft = resource.getrlimit(resource.RLIMIT_AS)[0]
        limit = f"; your shell's `ulimit -v` is {soft // 1024} KiB" if soft != resource.RLIM_INFINITY else ""
        raise UserError(f"{what}: the sandbox's worker does not start under it "
                        f"{'here' if isolation == 'none' else 'inside the sandbox'} ({why}{limit})")
    return int(last[0])


@lru_cache(maxsize=8)
def probe(path: str, isolation: str = "bwrap") -> Interpreter:
    """The interpreter at `path`, checked inside the sandbox: a binary (not a script) that runs there, is Python
    3.8 or later, says where it imports from, and starts the worker with only those folders bound."""
    full = os.path.abspath(os.path.expanduser(path))
    if not os.path.isfile(full) or not os.access(full, os.X_OK):
        raise UserError(f"--sandbox-python {path}: no executable file there")
    script = _script_line(full)
    if script is not None:
        raise UserError(f"--sandbox-python {path} is a script ({script[:80]}), not a Python interpreter: the "
                        f"sandbox starts the interpreter itself, with its own environment and folders, where a "
                        f"wrapper's commands do not work; name the Python it runs (e.g. ENV/bin/python)")
    if isolation == "none":
        print(f"note: --isolation none: --sandbox-python {path} is checked by running it here, unsandboxed, as the "
              f"programs will be", file=sys.stderr)
    run, real = resolved(full), os.path.realpath(full)
    where = "here" if isolation == "none" else "inside the sandbox"
    guesses = tuple(g for g in {_prefix_guess(run), _prefix_guess(real)} if g not in _SANDBOX_OWN)
    info, why = None, "it did not answer the probe"
    try:
        done = _run([run, "-I", "-B", "-c", PROBE], isolation, (*guesses, run, *_links(run)),
                    f"--sandbox-python {path}")
        if done.returncode:
            why = _why(done)
        elif done.stdout.strip():
            info = json.loads(done.stdout.strip().splitlines()[-1])
    except (OSError, subprocess.TimeoutExpired) as exc:
        why = type(exc).__name__
    except ValueError:
        pass
    if not isinstance(info, dict) or not isinstance(info.get("version"), list):
        raise UserError(f"--sandbox-python {path}: not a Python interpreter that runs {where} ({why})")
    version = tuple(info["version"])
    if version < MIN_VERSION:
        raise UserError(f"--sandbox-python {path}: Python {'.'.join(map(str, version))} is too old (the sandbox's "
                        f"worker needs {'.'.join(map(str, MIN_VERSION))} or later)")
    # What it imports from, as it names them and as they really are, and the file itself with its chain of links
    roots = {r for r in info.get("roots", []) if isinstance(r, str) and os.path.isdir(r)}
    roots = tuple(sorted({os.path.realpath(r) for r in roots} | {os.path.abspath(r) for r in roots}
                         | {run, real, *_links(run)}))
    size = worker_size(run, isolation, roots, f"--sandbox-python {path}")
    return Interpreter(run, ".".join(map(str, version)), roots, size)

