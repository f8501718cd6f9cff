"""Sealing a process whose tests must share it with the program (DS-1000, BigCodeBench): an audit hook that
refuses the program every way in to the harness's state (frames, the garbage collector, tracing, raw memory
through ctypes or /proc/<pid>/mem, code objects made under a trusted name, functions rebound to other globals).

What is refused is decided by who asks: the Python frame that made the call. Code from the standard library, the
environment's packages and this folder, and the suite's own test code, may do all of this (logging and pandas
read frames to name a caller); the program's code may not, nor may it go through the few library functions that
hand frames back to their caller (`inspect`, `traceback`, `logging.currentframe`). The hook keeps its state in
its closure only, and an audit hook cannot be removed, so the program can neither switch it off nor change what
it trusts. What remains: a program that reads raw memory through a library that takes an address from it
(numpy's array interface) or exploits a bug of the interpreter."""

from __future__ import annotations

import os
import re
import sys

_DENIED = ("gc.get_objects", "gc.get_referrers", "gc.get_referents", "sys._current_frames", "sys._getframe",
           "sys.settrace", "sys.setprofile", "sys._setprofileallthreads", "sys._settraceallthreads",
           "code.__new__", "function.__new__", "object.__getattr__", "object.__setattr__")
_READ = ("tb_frame", "gi_frame", "cr_frame", "ag_frame")  # attributes that give a frame
_WRITE = ("__code__",)  # attributes whose change swaps a function's code
_PSEUDO_TRUSTED = re.compile(r"^<(test \d+|tests|setup|frozen [\w.]+)>$")
# Library functions that hand the frames they read back to their caller: their caller is who asks.
_HANDS_OUT_FRAMES = {"inspect.py": ("currentframe", "stack", "trace", "getouterframes", "getinnerframes"),
                     "traceback.py": ("walk_stack", "walk_tb"), "__init__.py": ("<lambda>", "currentframe")}


class Refused(RuntimeError):
    """What the sandbox does not let a program do while its tests share its process."""


def trusted_roots() -> tuple:
    roots = {sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix, os.path.dirname(__file__)}
    roots |= {p for p in sys.path if p and os.path.isabs(p) and os.path.isdir(p) and not p.startswith("/tmp")}
    return tuple(sorted(os.path.realpath(r).rstrip("/") + "/" for r in roots))


def trusted_files():
    """`trusted(filename)`: code from there is a library's or the suite's tests', not the program's."""
    roots, pseudo, known = trusted_roots(), _PSEUDO_TRUSTED.match, {}
    realpath, isabs, isfile = os.path.realpath, os.path.isabs, os.path.isfile

    def trusted(name: str) -> bool:
        if type(name) is not str:
            return False
        if pseudo(name):
            return True
        if name not in known:
            known[name] = isabs(name) and (realpath(name) + "/").startswith(roots) and isfile(name)
        return known[name]

    return trusted


def seal() -> None:
    """Install the hook; from here on the program's code is refused the events above."""
    getframe, basename = sys._getframe, os.path.basename
    denied, hands_out = frozenset(_DENIED), {k: frozenset(v) for k, v in _HANDS_OUT_FRAMES.items()}
    trusted_file = trusted_files()
    state = [False]  # inside the hook: its own calls are not judged

    def program_asks(depth: int, through: str = "") -> bool:
        """Whether the program's code asked: the first frame up the stack that is neither a library function
        handing frames back nor (`through`) the thin wrappers of the library the event comes from."""
        frame = getframe(depth)
        while frame is not None and trusted_file(frame.f_code.co_filename) and (
                frame.f_code.co_name in hands_out.get(basename(frame.f_code.co_filename), ())
                or (through and through in frame.f_code.co_filename)):
            frame = frame.f_back
        return frame is not None and not trusted_file(frame.f_code.co_filename)

    def hook(event: str, args: tuple) -> None:
        if state[0]:
            return
        state[0] = True
        try:
            refused = _refused(event, args, denied, trusted_file, program_asks)
        finally:
            state[0] = False
        if refused:
            raise Refused("the sandbox refuses %s to a program whose tests share its process" % refused)

    sys.addaudithook(hook)


def _refused(event, args, denied, trusted_file, program_asks):
    """What is refused (a description), or None."""
    if event == "open" and args and isinstance(args[0], str) and re.match(r"^/proc/[^/]+/(task/[^/]+/)?mem$",
                                                                         args[0]):
        return "opening a process's memory"
    if event == "compile" and len(args) > 1 and isinstance(args[1], str) and trusted_file(args[1]) \
            and args[1] not in ("<string>",) and program_asks(3):
        return "code under a trusted file's name"
    if event.startswith("ctypes.") and program_asks(3, "/ctypes/"):
        return "ctypes"
    if event == "exec" and args and trusted_file(getattr(args[0], "co_filename", "")) and program_asks(3):
        return "running a library's code under other globals"
    if event not in denied:
        return None
    if event == "object.__getattr__" and (len(args) < 2 or args[1] not in _READ):
        return None
    if event == "object.__setattr__" and (len(args) < 2 or args[1] not in _WRITE):
        return None
    return event if program_asks(3) else None
