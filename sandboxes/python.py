"""The Python sandbox: model-written programs run against their tests inside bubblewrap, in warm workers.

Each worker is one bubblewrap sandbox whose PID 1 is `inside/worker.py`: it imports numpy/pandas once and
forks a fresh process per job (the program's from a zygote that never sees a test, the judge's from the worker),
so a job costs two forks rather than an interpreter start. The host talks to each
worker over length-prefixed JSON (never pickle: nothing from inside the sandbox is unpickled on the host),
kills a worker that overruns its outer deadline, and retries a unit once when a worker dies; a worker's
death is a sandbox failure, never the program's. The verdict comes from the harness, never from the exit
code or stdout: see `inside/judge.py` for why a program cannot fake it.
"""

from __future__ import annotations

import json
import os
import select
import shutil
import struct
import subprocess
import sys
import tempfile
from dataclasses import asdict, dataclass, field
from typing import Iterator, Sequence

from codelutra_data.errors import SandboxError, UserError
from codelutra_data.machine import bounded_workers
from codelutra_data.records import STATUSES, Execution
from codelutra_data.sandboxes.address_space import check_address_space
from codelutra_data.sandboxes.base import Sandbox
from codelutra_data.sandboxes.limits import DEFAULT_CPU_TIME_S, DEFAULT_WALL_TIME_S, check_time_limits
from codelutra_data.sandboxes.interpreter import WORKER_SCRIPT, probe
from codelutra_data.sandboxes.isolation import ISOLATIONS, SANDBOX_ENV, bwrap_command, detect, readonly_roots
from codelutra_data.sandboxes.pool import HardTimeout, WorkerLost, WorkerPool

MAX_FRAME = 1 << 20
FEEDBACK_LIMIT = 600
OUTER_MARGIN_S = 20.0  # worker start (imports numpy/pandas) + cleanup, on top of the job's wall-clock backstop


@dataclass(frozen=True)
class PythonLimits:
    """Per-job limits; recorded in every Execution and in the dataset card. A program is judged by the CPU time
    it consumes (all its processes together), so a verdict does not change with the machine's load; the
    wall-clock limit is only a backstop for programs that sleep or block."""

    cpu_time_s: float = DEFAULT_CPU_TIME_S
    wall_time_s: float = DEFAULT_WALL_TIME_S
    memory_mb: int = 1024
    max_procs: int = 32
    max_files: int = 256
    max_file_bytes: int = 16 * 2**20
    max_output_bytes: int = 2**20
    tmp_mb: int = 64

    def __post_init__(self):
        check_time_limits(self.cpu_time_s, self.wall_time_s)


@dataclass(frozen=True)
class PyJob:
    """One program for one task. `tests` are (source, is_test) steps run in order; a failing non-test step stops
    the rest (and with `fail_fast` a failing test too). In `function` mode the program runs in a process of its own
    and the tests in the judge's, calling it through `harness` (inside/harnesses/: `module` by default, or a
    suite's, given `harness_args`); `guard` and `io` are what the suite's own harness does to the program's
    process. In `ds1000` and `source` modes the tests share the program's process and get it as the string `code`
    (DS-1000's `test_execution(code)`, BigCodeBench's module); `data` is given to the tests as `test_data`."""

    key: str
    code: str | None
    tests: tuple[tuple[str, bool], ...]
    entry_point: str | None = None
    setup: str = ""
    test_setup: str = ""
    mode: str = "function"
    insert_offset: int = -1
    cpu_time_s: float | None = None  # this job's CPU limit when it differs from the sandbox's (slow references)
    step_cpu_s: tuple[float, ...] = ()  # a CPU limit per step (EvalPlus-style per-test limits); () for none
    measure_steps: bool = False  # report each step's CPU time (what per-step limits are derived from)
    fail_fast: bool = False  # stop at the first failing test (LiveCodeBench: the rest are not run)
    data: str = ""  # data the tests read (`test_data`), e.g. a suite's encoded test cases
    memory_mb: int | None = None  # the suite's own address-space budget when above the sandbox's (BigCodeBench)
    stack_mb: int | None = None  # the suite's own stack limit (EvalPlus: 4 GiB); None: the inherited one
    harness: str = ""  # inside/harnesses/<name>.py; "" is `module`
    harness_args: tuple[tuple[str, object], ...] = ()  # the harness's parameters (a dict, frozen)
    guard: str = ""  # the suite's reliability guard (inside/guards.py), applied in the program's process
    io: str = "keep"  # `swallow`: the program's prints vanish and its stdin raises when read

    def payload(self) -> dict:
        return {"code": self.code, "tests": [list(t) for t in self.tests], "entry_point": self.entry_point,
                "setup": self.setup, "test_setup": self.test_setup, "mode": self.mode,
                "insert_offset": self.insert_offset, "step_cpu_s": list(self.step_cpu_s),
                "measure_steps": self.measure_steps, "fail_fast": self.fail_fast, "data": self.data,
                "harness": self.harness, "harness_args": dict(self.harness_args), "guard": self.guard,
                "io": self.io}


class _FrameConn:
    """Length-prefixed JSON over the worker's stdin/stdout; `fileno()` lets the pool wait on it."""

    def __init__(self, proc: subprocess.Popen):
        self.reader = proc.stdout.fileno()
        self.writer = proc.stdin.fileno()
        self.proc = proc
        self.retire_requested = False

    def fileno(self) -> int:
        return self.reader

    def send(self, message) -> None:
        if message is None:
            self.proc.stdin.close()
            return
        index, (job, limits) = message
        body = json.dumps({"i": index, "job": job, "limits": limits}).encode("utf-8")
        data = memoryview(struct.pack(">I", len(body)) + body)
        while data:
            data = data[os.write(self.writer, data):]

    def _read(self, n: int) -> bytes:
        chunks, got = [], 0
        while got < n:
            if not select.select([self.reader], [], [], 10.0)[0]:
                raise EOFError("worker stalled mid-message")
            chunk = os.read(self.reader, n - got)
            if not chunk:
                raise EOFError("worker closed its channel")
            chunks.append(chunk)
            got += len(chunk)
        return b"".join(chunks)

    def recv(self):
        (size,) = struct.unpack(">I", self._read(4))
        if size > MAX_FRAME:
            raise EOFError("oversized message from worker")
        frame = json.loads(self._read(size).decode("utf-8"))
        if not isinstance(frame, dict) or not isinstance(frame.get("result"), dict):
            raise EOFError("malformed message from worker")
        self.retire_requested = bool(frame.get("retire"))
        return frame.get("i"), True, frame["result"]

    def close(self) -> None:
        for stream in (self.proc.stdin, self.proc.stdout):
            try:
                stream.close()
            except OSError:
                pass


def _execution(job: PyJob, verdict, sandbox: str, limits: dict) -> Execution:
    total = sum(1 for _, t in job.tests if t)
    if isinstance(verdict, (WorkerLost, HardTimeout, RuntimeError)):
        return Execution(job.key, "sandbox_error", 0, total, f"sandbox failure: {verdict}", [], 0.0, sandbox, limits)
    status = verdict.get("status")
    if status not in STATUSES:
        return Execution(job.key, "sandbox_error", 0, total, f"sandbox failure: bad status {status!r}", [], 0.0,
                         sandbox, limits)
    lines = [int(x) for x in verdict.get("error_lines", []) if isinstance(x, int)][:8]
    passed = verdict.get("tests_passed", 0)
    passed = min(max(int(passed), 0), total) if isinstance(passed, int) else 0
    text = lambda name, limit: str(verdict.get(name) or "")[:limit]  # noqa: E731 - fields from the sandbox
    return Execution(job.key, status, passed, total, text("feedback", FEEDBACK_LIMIT), lines,
                     float(verdict.get("duration_s", 0.0) or 0.0), sandbox, limits,
                     error=text("error", 300), failing_test=text("failing_test", 300), returned=text("returned", 200),
                     cpu_s=float(verdict.get("cpu_s", 0.0) or 0.0), test_cpu_s=_step_times(verdict, len(job.tests)))


def _step_times(verdict: dict, steps: int) -> list[float]:
    times = verdict.get("test_cpu_s")
    if not isinstance(times, list) or len(times) > steps:
        return []
    return [float(t) for t in times if isinstance(t, (int, float)) and not isinstance(t, bool) and 0 <= t < 1e6]


@dataclass
class PythonSandbox(Sandbox):
    """`run_iter(jobs)` in warm bubblewrap workers. Raises only for a broken sandbox (SandboxError), never for a
    bad program."""

    limits: PythonLimits = field(default_factory=PythonLimits)
    workers: int | None = None
    isolation: str = "bwrap"
    recycle_after: int = 200
    python: str | None = None  # another environment's interpreter (--sandbox-python); None: ours

    def __post_init__(self):
        self.workers = bounded_workers(self.workers)
        self._interpreter = probe(self.python, self.isolation) if self.python else None
        if self.isolation not in ISOLATIONS:
            raise UserError(f"unknown isolation {self.isolation!r}: use one of {', '.join(ISOLATIONS)}")
        if self.isolation == "bwrap":
            status = detect()
            if not status.available:
                raise SandboxError(status.detail)
            self._bwrap = status.bwrap
        else:
            print("WARNING: --isolation none: model-written code runs WITHOUT a sandbox (resource limits only); "
                  "it can read your files and use the network", file=sys.stderr)
        check_address_space(self.limits.memory_mb, self.limits.memory_mb, self._interpreter, self.isolation)
        self.name = f"python-{self.isolation}" + (f" ({self._interpreter.label})" if self._interpreter else "")
        self._scratch: list[str] = []
        self._pool = WorkerPool(handler="", workers=self.workers,
                                recycle_after=self.recycle_after, spawn=self._spawn)

    def _spawn(self):
        if self.isolation == "bwrap":
            extra = self._interpreter.roots if self._interpreter else ()
            keep = [r for r in readonly_roots(extra) if r.startswith("/tmp/")]  # read-only binds inside /tmp
            config = {"scratch": "/tmp", "keep": keep, "recycle_after": self.recycle_after}
            prefix, env = bwrap_command(self._bwrap, self.limits.tmp_mb, extra), {}
        else:
            scratch = tempfile.mkdtemp(prefix="codelutra-py-")
            self._scratch.append(scratch)
            config = {"scratch": scratch, "recycle_after": self.recycle_after}
            prefix, env = [], {**SANDBOX_ENV, "HOME": scratch}
        python = self._interpreter.path if self._interpreter else sys.executable
        cmd = [*prefix, python, "-I", "-B", str(WORKER_SCRIPT), json.dumps(config)]
        proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                start_new_session=True, close_fds=True, env=env)
        return proc, _FrameConn(proc)

    def _limits_for(self, job: PyJob) -> dict:
        limits = asdict(self.limits)
        if job.cpu_time_s and job.cpu_time_s != self.limits.cpu_time_s:
            scale = job.cpu_time_s / self.limits.cpu_time_s
            limits["cpu_time_s"] = job.cpu_time_s
            limits["wall_time_s"] = round(max(self.limits.wall_time_s, self.limits.wall_time_s * scale), 3)
        if job.memory_mb and job.memory_mb > self.limits.memory_mb:
            limits["memory_mb"] = job.memory_mb
        if job.stack_mb:
            limits["stack_mb"] = job.stack_mb
        return limits

    def run_iter(self, jobs: Sequence[PyJob]) -> Iterator[tuple[int, Execution]]:
        units = [(job.payload(), self._limits_for(job)) for job in jobs]
        check_address_space(max((u[1]["memory_mb"] for u in units), default=0), self.limits.memory_mb,
                            self._interpreter, self.isolation)  # a suite's own budget (BigCodeBench's 8 GiB)
        for index, verdict in self._pool.map(units, deadline=lambda u: u[1]["wall_time_s"] + OUTER_MARGIN_S):
            yield index, _execution(jobs[index], verdict, self.name, units[index][1])

    def close(self) -> None:
        self._pool.close()
        for path in self._scratch:
            shutil.rmtree(path, ignore_errors=True)
        self._scratch.clear()
