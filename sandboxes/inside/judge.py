"""The judge: the process that runs a job's tests and decides its verdict, apart from the program's process.

It holds the tests, their expected values and the verdict; the program's process holds the program. The two
talk over one socket in plain data (peer.py), so what reaches a comparison here is a builtin value made here,
never an object the program made; the program cannot read or write this process (it is non-dumpable and the
sandbox has no capabilities); and the tests' namespace is the judge's own, with the builtins untouched, in which
only the names the tests read and never define are handles to the program's (harnesses/module.py).

Per-test CPU limits count the program's processes' CPU time during the test (every process of the sandbox but
the worker, the zygote and this one), polled while the judge waits for an answer and checked after each test;
a test over its limit ends the program (its later tests fail)."""

from __future__ import annotations

import builtins
import os
import signal
import time

import steps as stepping
from peer import ProgramExit, ProgramGone, Peer, pids_except
from program import harness

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
SHOW_CPU_S = 1.0


class Program:
    """The judge's view of the program's process: load it, get its names, count its CPU time, end it."""

    def __init__(self, peer: Peer, own: tuple, pid: int | None):
        self.peer, self.own, self.pid = peer, own, pid

    def load(self) -> dict:
        manifest = self.peer.request("load", None)
        if type(manifest) is not dict:
            raise ProgramGone("the program's process sent a malformed answer")
        return manifest

    def get(self, name: str):
        return self.peer.request("get", None, [name])

    def _pids(self) -> list[int]:
        return pids_except(*self.own) if self.pid is None else [self.pid]

    def cpu_s(self) -> float:
        ticks = 0
        for pid in self._pids():
            try:
                with open("/proc/%d/stat" % pid, "rb") as fh:
                    data = fh.read()
            except OSError:
                continue
            fields = data[data.rfind(b")") + 2:].split()
            if len(fields) > 14:
                ticks += int(fields[11]) + int(fields[12]) + int(fields[13]) + int(fields[14])
        return ticks / CLOCK_TICKS

    def stop(self, why: str) -> None:
        self.peer.dead = self.peer.dead or why
        for _ in range(50):
            pids = self._pids()
            if not pids:
                return
            for pid in pids:
                try:
                    os.kill(pid, signal.SIGKILL)
                except (ProcessLookupError, PermissionError):
                    pass
            if self.pid is not None:
                return
            time.sleep(0.002)


def run(job: dict, report, channel: int, own: tuple, program_pid: int | None) -> None:
    """Load the program, run the tests one by one, report through `report`."""
    peer = Peer(channel)
    program = Program(peer, own, program_pid)
    runner = stepping.Runner(job, report)
    namespace = {"__name__": "__test__", "__builtins__": builtins}
    chosen = harness(job.get("harness"))
    try:
        chosen.judge(namespace, program, job)
    except BaseException as exc:  # noqa: BLE001 - every way the program can fail to load is a verdict
        return runner.program_failed(exc, before_tests=True)
    if not runner.test_setup(namespace):
        return None
    limits = job.get("step_cpu_s") or []

    def run_step(index: int, code) -> float:
        limit = limits[index] if index < len(limits) else 0
        started = program.cpu_s()
        if limit:
            peer.watch = lambda: _check(program, started, limit)
        try:
            exec(code, namespace)
        except ProgramGone:
            if limit and program.cpu_s() - started > limit:
                raise stepping.TestTimeout(limit) from None
            raise
        finally:
            peer.watch = None
        used = program.cpu_s() - started
        if limit and used > limit:
            program.stop("the program was stopped after a test's time limit")
            raise stepping.TestTimeout(limit)
        return used

    def before_report() -> None:  # showing a returned value may cost the program at most a second more
        started = program.cpu_s()
        peer.watch = lambda: _check(program, started, SHOW_CPU_S)

    runner.run_steps(namespace, run_step, before_report=before_report)


def _check(program: Program, started: float, limit: float) -> None:
    if program.cpu_s() - started > limit:
        program.stop("the program was stopped after a test's time limit")
        raise stepping.TestTimeout(limit)


__all__ = ["run", "ProgramExit"]
