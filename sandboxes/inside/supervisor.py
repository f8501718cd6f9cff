"""Watching a job from outside its processes: CPU time summed over every process of the job, output bytes, the
number of processes, a wall-clock backstop; then everything the job left is killed and reaped, and the verdict is
the harness's own report (carrying this job's nonce), or how the job ended."""

from __future__ import annotations

import json
import os
import select
import signal
import struct
import time

MAX_REPORT = 1 << 20
FEEDBACK_LIMIT = 600
WATCHDOG_EVERY_S = 0.005
CPU_EVERY_S = 0.02
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def _ticks(pid: int) -> int:
    try:
        with open("/proc/%d/stat" % pid, "rb") as fh:
            data = fh.read()
    except OSError:
        return 0
    fields = data[data.rfind(b")") + 2:].split()
    return sum(int(f) for f in fields[11:15]) if len(fields) > 14 else 0


def job_pids(spared: tuple, watched: tuple, own_pidns: bool) -> list[int]:
    """The job's processes: in the sandbox's own PID namespace every process but the `spared` ones (the worker,
    the zygote); without one, the `watched` processes themselves."""
    if own_pidns:
        return [int(n) for n in os.listdir("/proc") if n.isdigit() and int(n) not in spared]
    return [p for p in watched if p]


def job_cpu_s(spared: tuple, watched: tuple, own_pidns: bool) -> float:
    """CPU seconds used by the job: user + system time of its processes, each with the children it reaped. Unlike
    wall time, this does not grow when other work competes for the cores."""
    return sum(_ticks(pid) for pid in job_pids(spared, watched, own_pidns)) / CLOCK_TICKS


def kill_job(spared: tuple, watched: tuple, own_pidns: bool) -> None:
    for _ in range(100):
        pids = job_pids(spared, watched, own_pidns)
        if not pids:
            return
        for pid in pids:
            try:
                if own_pidns:
                    os.kill(pid, signal.SIGKILL)
                else:
                    os.killpg(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        if not own_pidns:
            return
        time.sleep(0.001)


def reap(pid: int, own_pidns: bool, zygote: int | None, wait_s: float = 2.0) -> tuple:
    """(exit status of `pid`, its CPU time, everything collected, the zygote died)."""
    status, cpu, zygote_died = None, 0.0, False
    stop = time.monotonic() + wait_s
    while True:
        try:
            got, code, usage = os.wait4(-1 if own_pidns else pid, os.WNOHANG)
        except ChildProcessError:
            return status, cpu, True, zygote_died
        if got == pid:
            status, cpu = code, usage.ru_utime + usage.ru_stime
            if not own_pidns:
                return status, cpu, True, zygote_died
        elif zygote and got == zygote:
            zygote_died = True
        elif got == 0:
            if own_pidns and not job_pids((1, zygote), (), True):
                return status, cpu, True, zygote_died
            if time.monotonic() > stop:
                return status, cpu, False, zygote_died
            time.sleep(0.001)


def clean_dir(path: str, keep: tuple = ()) -> bool:
    """Empty the scratch folder, sparing read-only binds that live inside it (and the folders above them)."""
    import shutil

    ok = True
    for name in os.listdir(path):
        full = os.path.join(path, name)
        if full in keep:
            continue
        if any(k.startswith(full + "/") for k in keep):
            ok = clean_dir(full, keep) and ok
            continue
        try:
            if os.path.isdir(full) and not os.path.islink(full):
                shutil.rmtree(full)
            else:
                os.unlink(full)
        except OSError:
            ok = False
    return ok


def watch(pid: int, fds: tuple, limits: dict, spared: tuple, watched: tuple, own_pidns: bool,
          extra_procs: int) -> tuple:
    """Follow the job until its harness process ends or a limit is hit: (report bytes, output head, exit status,
    problem, CPU seconds)."""
    result_r, output_r = fds
    deadline = time.monotonic() + limits["wall_time_s"]
    buffers = {result_r: bytearray(), output_r: bytearray()}
    out_bytes, open_fds, problem = 0, {result_r, output_r}, None
    exit_status, next_watch, next_cpu, cpu_s = None, 0.0, 0.0, 0.0
    while open_fds:
        now = time.monotonic()
        if now >= deadline:
            problem = "wall"
            break
        if now >= next_cpu:
            next_cpu = now + CPU_EVERY_S
            cpu_s = max(cpu_s, job_cpu_s(spared, watched, own_pidns))
            if cpu_s > limits["cpu_time_s"]:
                problem = "cpu"
                break
        ready, _, _ = select.select(list(open_fds), [], [], min(deadline - now, WATCHDOG_EVERY_S * 4))
        for fd in ready:
            data = os.read(fd, 65536)
            if not data:
                open_fds.discard(fd)
            elif fd == output_r:
                out_bytes += len(data)
                if len(buffers[output_r]) < 4096:
                    buffers[output_r] += data[:4096]
            elif len(buffers[result_r]) < MAX_REPORT:
                buffers[result_r] += data
        if out_bytes > limits["max_output_bytes"]:
            problem = "output"
            break
        if own_pidns and time.monotonic() >= next_watch:
            next_watch = time.monotonic() + WATCHDOG_EVERY_S
            if len(job_pids(spared, (), True)) > limits["max_procs"] + extra_procs:
                problem = "procs"
                break
        if exit_status is None:
            got, code, usage = os.wait4(pid, os.WNOHANG)
            if got == pid:
                exit_status = code
                cpu_s = max(cpu_s, usage.ru_utime + usage.ru_stime)
                _drain(result_r, buffers[result_r], open_fds)
                break
    return bytes(buffers[result_r]), bytes(buffers[output_r]), exit_status, problem, cpu_s


def _drain(fd: int, buffer: bytearray, open_fds: set) -> None:
    """Late writes by leftovers can keep pipes open: take what is there and stop waiting."""
    if fd not in open_fds:
        return
    while select.select([fd], [], [], 0)[0]:
        data = os.read(fd, 65536)
        if not data:
            break
        if len(buffer) < MAX_REPORT:
            buffer += data


def verdict(base: dict, result: bytes, output: bytes, exit_status, problem, limits: dict, nonce: str) -> dict:
    """Only the harness's own message counts: it must carry this job's nonce (a program that writes a
    well-formed message to a descriptor it finds does not know it)."""
    if problem == "cpu":
        return dict(base, status="timeout", feedback="CPU time limit of %g s exceeded" % limits["cpu_time_s"])
    if problem == "wall":
        return dict(base, status="timeout", feedback="wall-clock limit of %g s exceeded (the program slept or "
                                                     "waited)" % limits["wall_time_s"])
    if problem == "output":
        return dict(base, status="runtime_error",
                    feedback="output limit exceeded (more than %d bytes printed)" % limits["max_output_bytes"])
    if problem == "procs":
        return dict(base, status="runtime_error",
                    feedback="process limit exceeded (more than %d processes)" % limits["max_procs"])
    if len(result) >= 4:
        (size,) = struct.unpack(">I", result[:4])
        body = result[4:4 + size]
        if len(body) == size:
            try:
                got = json.loads(body.decode("utf-8"))
                if isinstance(got, dict) and got.get("status") and got.get("nonce") == nonce:
                    keys = ("status", "feedback", "tests_passed", "error_lines", "error", "failing_test", "returned",
                            "test_cpu_s")
                    return dict(base, **{k: got[k] for k in keys if k in got})
            except ValueError:
                pass
    if exit_status is not None and os.WIFSIGNALED(exit_status):
        sig = os.WTERMSIG(exit_status)
        if sig == signal.SIGXCPU:
            return dict(base, status="timeout", feedback="CPU time limit exceeded")
        name = signal.Signals(sig).name if sig in signal.Signals._value2member_map_ else str(sig)
        return dict(base, status="runtime_error", feedback="the program was killed by %s" % name)
    code = os.WEXITSTATUS(exit_status) if exit_status is not None and os.WIFEXITED(exit_status) else None
    tail = output[-300:].decode("utf-8", "replace").strip()
    return dict(base, status="runtime_error",
                feedback=("the program exited (code %s) before the tests finished" % code
                          + ("; output: %s" % tail if tail else ""))[:FEEDBACK_LIMIT])
