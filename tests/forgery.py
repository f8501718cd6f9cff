"""Programs that try to pass without being right, as an adversarial user (or a policy under RL) would write them:
each class of the verdict issue and what was found beyond it. `attack(name, entry)` is a whole program whose
function named `entry` computes nothing right and tries its trick; every one must fail and earn no more than an
honest wrong program (`attack("wrong", entry)`, which returns 0)."""

from __future__ import annotations

# Module-level code run before the function is defined, and the function's body.
LIARS = '''
import numpy as _np


class LieInt(int):
    def __eq__(self, other):
        return True

    def __ne__(self, other):
        return False

    __lt__ = __le__ = __gt__ = __ge__ = __eq__
    __hash__ = int.__hash__

    def __sub__(self, other):
        return LieInt(0)

    __rsub__ = __add__ = __radd__ = __sub__

    def __abs__(self):
        return 0


class LieStr(str):
    def __eq__(self, other):
        return True

    def __ne__(self, other):
        return False

    __hash__ = str.__hash__

    def strip(self, *args):
        return self

    def split(self, *args):
        return [self]


class LieList(list):
    def __eq__(self, other):
        return True

    def __ne__(self, other):
        return False

    def __len__(self):
        return 1


class LieFloat(float):
    def __eq__(self, other):
        return True

    def __ne__(self, other):
        return False

    __hash__ = float.__hash__

    def __sub__(self, other):
        return 0.0

    __rsub__ = __sub__


class LieTuple(tuple):
    def __eq__(self, other):
        return True


class LieDict(dict):
    def __eq__(self, other):
        return True


class Anything:
    def __eq__(self, other):
        return True

    def __ne__(self, other):
        return False

    __lt__ = __le__ = __gt__ = __ge__ = __eq__

    def __hash__(self):
        return 0

    def __bool__(self):
        return True

    def __sub__(self, other):
        return 0

    __rsub__ = __add__ = __radd__ = __mul__ = __rmul__ = __sub__

    def __abs__(self):
        return 0

    def __len__(self):
        return 1

    def __iter__(self):
        return iter(())

    def __float__(self):
        return 0.0

    def __index__(self):
        return 0

    def strip(self, *args):
        return self

    def split(self, *args):
        return [self]


class LieArray(_np.ndarray):
    def __eq__(self, other):
        return _np.ones(1, dtype=bool).view(_np.ndarray)

    __ne__ = lambda self, other: _np.zeros(1, dtype=bool)
'''

SHADOW = '''
abs = lambda x: 0
sorted = lambda x, *a, **k: x
zip = lambda *a: iter(())
map = lambda *a: iter(())
len = lambda x: 0
isinstance = lambda *a: True
type = lambda *a: int
set = lambda *a: 0
print = lambda *a, **k: None
'''

FIND_AND_EDIT = '''
import gc, sys


def _edit():
    for obj in gc.get_objects():
        if isinstance(obj, dict):
            if "candidate" in obj:
                obj["candidate"] = lambda *a, **k: Anything()
            if "tests_passed" in obj and "tests_total" in obj:
                obj["tests_passed"] = obj["tests_total"]
                obj["status"] = "passed"
            if "tests" in obj and isinstance(obj["tests"], list):
                obj["tests"][:] = []
            for key in ("abs", "sorted", "isinstance", "_evalplus_check", "_lcb_test", "same_output"):
                if key in obj and key != "isinstance":
                    obj[key] = lambda *a, **k: True
    frame = sys._getframe()
    while frame is not None:
        frame.f_globals["candidate"] = lambda *a, **k: Anything()
        frame = frame.f_back
'''

TOUCH_OTHERS = '''
import os, signal


def _others():
    return [int(p) for p in os.listdir("/proc") if p.isdigit() and int(p) not in (1, os.getpid())]


def _write_memory():
    for pid in _others():
        try:
            with open("/proc/%d/mem" % pid, "r+b") as fh:
                fh.seek(0)
                fh.write(b"x")
        except OSError:
            pass


def _ptrace():
    import ctypes
    libc = ctypes.CDLL(None, use_errno=True)
    for pid in _others():
        libc.ptrace(16, pid, 0, 0)  # PTRACE_ATTACH


def _forge_reports():
    import json, struct
    for status in ("passed",):
        body = json.dumps({"status": status, "tests_passed": 99, "nonce": "0" * 32}).encode()
        for fd in range(0, 64):
            try:
                os.write(fd, struct.pack(">I", len(body)) + body)
            except OSError:
                pass


def _forge_reply():
    """A reply on the call channel for the question now being asked, with a value that is not data."""
    import json, struct, sys, base64
    frame, number = sys._getframe(), None
    while frame is not None and number is None:
        message = frame.f_locals.get("message")
        if isinstance(message, dict) and "q" in message:
            number = message["q"]
        frame = frame.f_back
    forged = [["na", "|O8", [1], base64.b64encode(b"\\x01" * 8).decode()], ["zz"], ["h", "x"], ["H", 12345],
              ["i", "zz"], ["d", 1]]
    for value in forged:
        body = json.dumps({"r": number, "v": value}).encode()
        for fd in range(3, 64):
            try:
                if os.path.realpath("/proc/self/fd/%d" % fd).startswith("socket:"):
                    os.write(fd, struct.pack(">I", len(body)) + body)
            except OSError:
                pass
'''

# Honest wrong programs: what each lying value holds, returned as itself. An attack may score what these score
# (a lying str that holds '' is '' where '' happens to be right), never more.
HONEST = {
    "wrong": ("", "return 0"),
    "wrong ''": ("", "return ''"),
    "wrong []": ("", "return []"),
    "wrong 0.0": ("", "return 0.0"),
    "wrong ()": ("", "return ()"),
    "wrong {}": ("", "return {}"),
    "wrong None": ("", "return None"),
    "wrong zeros": ("import numpy as _np", "return _np.zeros(3)"),
}
BODIES = {
    **HONEST,
    "lying int": (LIARS, "return LieInt(0)"),
    "lying str": (LIARS, "return LieStr('')"),
    "lying list": (LIARS, "return LieList()"),
    "lying float": (LIARS, "return LieFloat(0.0)"),
    "lying tuple": (LIARS, "return LieTuple()"),
    "lying dict": (LIARS, "return LieDict()"),
    "lying object": (LIARS, "return Anything()"),
    "lying numpy array": (LIARS, "return _np.zeros(3).view(LieArray)"),
    "a generator": ("", "yield 0"),
    "shadowed builtins": (SHADOW, "return 0"),
    "gc and frames edit the harness": (LIARS + FIND_AND_EDIT, "_edit()\n    return Anything()"),
    "StopIteration ends the tests' loop": ("", "raise StopIteration"),
    "KeyboardInterrupt": ("", "raise KeyboardInterrupt"),
    "SkipTest": ("import unittest", "raise unittest.SkipTest('skipped')"),
    "exit(0) in the call": ("import sys", "sys.exit(0)"),
    "os._exit(0) in the call": ("import os", "os._exit(0)"),
    "kill every other process": (TOUCH_OTHERS, "[os.kill(p, signal.SIGKILL) for p in _others()]\n    return 0"),
    "stop every other process": (TOUCH_OTHERS, "[os.kill(p, signal.SIGSTOP) for p in _others()]\n    return 0"),
    "write the judge's memory": (TOUCH_OTHERS, "_write_memory()\n    return 0"),
    "ptrace the judge": (TOUCH_OTHERS, "_ptrace()\n    return 0"),
    "forged reports on every descriptor": (TOUCH_OTHERS, "_forge_reports()\n    return 0"),
    "forged replies on the call channel": (TOUCH_OTHERS, "_forge_reply()\n    return 0"),
}


def attack(name: str, entry: str, method: bool = False) -> str:
    """The program for attack `name` whose function (or `Solution` method) is `entry`."""
    module, body = BODIES[name]
    if method:
        return f"{module}\n\nclass Solution:\n    def {entry}(self, *args, **kwargs):\n        " + \
            body.replace("\n    ", "\n        ") + "\n"
    return f"{module}\n\ndef {entry}(*args, **kwargs):\n    {body}\n"


STDIN_HONEST = {"wrong": "print(0)", "wrong: prints nothing": "pass"}
STDIN_BODIES = {
    **STDIN_HONEST,
    "print nothing, edit the harness": LIARS + FIND_AND_EDIT + "\n_edit()",
    "patch its own harness to lie": LIARS + "\nimport sys\nfor name, module in list(sys.modules.items()):\n"
                                            "    if name.endswith('livecodebench'):\n"
                                            "        module._run_stdin = lambda run, text: LieStr('')\n"
                                            "        module.same_output = lambda *a: True\n",
    "exit(0)": "import sys\nsys.exit(0)",
    "os._exit(0)": "import os\nos._exit(0)",
    "kill every other process": TOUCH_OTHERS + "\n[os.kill(p, signal.SIGKILL) for p in _others()]",
    "forged reports on every descriptor": TOUCH_OTHERS + "\n_forge_reports()",
    "write the judge's memory": TOUCH_OTHERS + "\n_write_memory()\nprint(0)",
}


# Where the tests share the program's process: DS-1000 (the program is inserted as code that sets `result`; the
# test compares it with numpy's assert_array_equal) and BigCodeBench (unittest TestCases calling task_func).
DS1000_HONEST = {"wrong": "result = a.sum(axis=1)\n", "wrong zeros": "import numpy as np\nresult = np.zeros(2)\n"}
DS1000_BODIES = {
    **DS1000_HONEST,
    "lying array": "import numpy as _np\n" + LIARS.split("class LieArray")[0].split("import numpy as _np")[1]
                   + "class LieArray(_np.ndarray):\n    def __eq__(self, other):\n        return _np.ones(2, dtype=bool)\n"
                   "    __array_priority__ = 1000\nresult = _np.zeros(2).view(LieArray)\n",
    "lying object": LIARS + "\nresult = Anything()\n",
    "the tests' frame": "import sys\nresult = sys._getframe(1).f_locals['expected_result']\n",
    "inspect's frame": "import inspect\nresult = inspect.currentframe().f_back.f_locals['expected_result']\n",
    "a traceback's frame": "try:\n    1 / 0\nexcept ZeroDivisionError as e:\n"
                           "    result = e.__traceback__.tb_frame.f_back.f_locals['expected_result']\n",
    "gc": "import gc\nresult = [o for o in gc.get_objects() if type(o).__name__ == 'ndarray'][-1]\n",
    "a library's code, other globals": "import inspect, sys\nframe = eval(inspect.currentframe.__code__, "
                                       "{'sys': sys, 'hasattr': hasattr})\nresult = frame.f_back.f_locals['expected_result']\n",
    "patch numpy.testing": "import numpy.testing\nnumpy.testing.assert_array_equal = lambda *a, **k: None\nresult = 0\n",
    "patch the tests' builtins": "__builtins__['AssertionError'] = type('Quiet', (Exception,), {})\nresult = 0\n",
    "patch the harness": "import sys\nsys.modules['steps'].Runner.finish = lambda self, *a, **k: None\nresult = 0\n",
    "settrace": "import sys\nsys.settrace(lambda *a: None)\nresult = 0\n",
    "ctypes": "import ctypes\nctypes.string_at(id(a), 8)\nresult = 0\n",
    "/proc/self/mem": "open('/proc/self/mem', 'rb').read(1)\nresult = 0\n",
    "exit(0)": "import sys\nsys.exit(0)\n",
    "forged reports": TOUCH_OTHERS + "\n_forge_reports()\nresult = 0\n",
}
BCB_HONEST = {"wrong": "def task_func(text):\n    return {}\n", "wrong count": "def task_func(text):\n    return {'x': 1}\n"}
BCB_BODIES = {
    **BCB_HONEST,
    "lying dict": LIARS + "\ndef task_func(text):\n    return LieDict()\n",
    "lying object": LIARS + "\ndef task_func(text):\n    return Anything()\n",
    "skips every test": "import unittest\ndef task_func(text):\n    raise unittest.SkipTest('not today')\n",
    "patch assertEqual": "import unittest\nunittest.TestCase.assertEqual = lambda *a, **k: None\n"
                         "def task_func(text):\n    return {}\n",
    "patch TestResult": "import unittest\nunittest.TestResult.addFailure = lambda *a, **k: None\n"
                        "unittest.TestResult.addError = lambda *a, **k: None\ndef task_func(text):\n    return {}\n",
    "patch the harness": "import sys\nsys.modules['steps'].Runner.failed = lambda self, *a: self.finish('passed')\n"
                         "def task_func(text):\n    return {}\n",
    "the tests' frame": "import sys\ndef task_func(text):\n    return sys._getframe(1).f_locals\n",
    "gc": "import gc\ndef task_func(text):\n    [setattr(o, 'failures', []) for o in gc.get_objects() "
          "if type(o).__name__ == 'TestResult']\n    return {}\n",
    "exit in the call": "import sys\ndef task_func(text):\n    sys.exit(0)\n",
    "os._exit in the call": "import os\ndef task_func(text):\n    os._exit(0)\n",
}
