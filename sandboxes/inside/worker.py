"""The warm worker that runs inside the sandbox: it pre-imports the heavy modules once, forks the zygote (which
forks each job's program process), then for each job forks the job's harness process (the judge, or for suites
whose tests share the program's process, the one process that runs both), supervises the job from outside and
reports its verdict.

Protocol with the host, over stdin/stdout: 4-byte big-endian length + UTF-8 JSON. The host sends
{"i": index, "job": {...}, "limits": {...}}; the worker answers {"i": index, "result": {...}, "retire": bool}. No
job process holds these descriptors. Run as PID 1 of its own PID namespace (bwrap --as-pid-1), the worker cannot
be signalled by a program; it, the zygote and every judge are non-dumpable, and the sandbox has no capabilities,
so no program can read or write their memory.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import struct
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import frames  # noqa: E402 - the folder above is this script's own
import limits as process_limits  # noqa: E402
import supervisor  # noqa: E402

PRELOAD = ("collections", "itertools", "functools", "heapq", "bisect", "re", "math", "string", "random",
           "statistics", "fractions", "decimal", "datetime", "typing", "json", "copy", "operator", "hashlib",
           "unittest", "unittest.mock", "numpy", "numpy.testing", "pandas", "pandas.testing",
           "plain", "peer", "steps", "judge", "program", "shared", "audit", "trust", "harnesses.module",
           "harnesses.evalplus", "harnesses.livecodebench", "harnesses.bigcodebench", "harnesses.ds1000",
           "harnesses.humaneval_official")
SHARED_MODES = ("ds1000", "source")
ZYGOTE_ANSWER_S = 10.0


class Zygote:
    """The zygote process and its channel; `alive` turns False when it is gone (the worker then retires)."""

    def __init__(self, scratch: str):
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        pid = os.fork()
        if pid == 0:
            ours.close()
            import zygote
            zygote.serve(theirs, scratch)
        theirs.close()
        self.pid, self.channel, self.alive = pid, ours, True

    def start(self, half: dict, program_end: int, output: int) -> int:
        frames.send_with_fds(self.channel, half, [program_end, output])
        head = frames.read_exact(self.channel.fileno(), 4, timeout=ZYGOTE_ANSWER_S)
        (size,) = struct.unpack(">I", head)
        answer = json.loads(frames.read_exact(self.channel.fileno(), min(size, 1 << 10), timeout=ZYGOTE_ANSWER_S))
        if not isinstance(answer, dict) or not isinstance(answer.get("pid"), int):
            raise frames.Closed("the zygote did not answer")
        return answer["pid"]

    def healthy(self) -> bool:
        """Alive, and neither stopped nor traced (a program may have signalled it): else the worker retires."""
        try:
            with open("/proc/%d/stat" % self.pid, "rb") as fh:
                data = fh.read()
        except OSError:
            return False
        return self.alive and data[data.rfind(b")") + 2:].split()[0] in (b"S", b"R", b"D")


def _program_half(job: dict, limits: dict) -> dict:
    """What the program's process may know of a job: never its tests, their data or a verdict."""
    import importlib

    harness = importlib.import_module("harnesses." + (job.get("harness") or "module"))
    args = job.get("harness_args") or {}
    return {"code": job["code"], "setup": job.get("setup") or "", "harness": job.get("harness") or "module",
            "args": {k: args[k] for k in getattr(harness, "PROGRAM_ARGS", ()) if k in args},
            "guard": job.get("guard") or "", "io": job.get("io") or "keep", "limits": limits}


def _reporter(result_w: int, nonce: str):
    write, dumps = os.write, json.dumps

    def report(payload: dict) -> None:
        body = dumps(dict(payload, nonce=nonce)).encode("utf-8")
        write(result_w, struct.pack(">I", len(body)) + body)

    return report


def _judge_child(job, limits, result_w, output_w, channel, workdir, nonce, own, program_pid) -> None:
    try:
        process_limits.enter_job(output_w, workdir, keep=(result_w, channel))
        process_limits.apply(limits)
        import judge
    except BaseException:  # noqa: BLE001
        os._exit(70)
    try:
        judge.run(job, _reporter(result_w, nonce), channel, own + (os.getpid(),), program_pid)
    except BaseException:  # noqa: BLE001 - a harness failure is not a verdict; the supervisor sees no result
        pass
    os._exit(0)


def _shared_child(job, limits, result_w, output_w, workdir, nonce) -> None:
    try:
        process_limits.enter_job(output_w, workdir, keep=(result_w,))
        process_limits.apply(limits)
        import shared
    except BaseException:  # noqa: BLE001
        os._exit(70)
    try:
        shared.run(job, _reporter(result_w, nonce))
    except BaseException:  # noqa: BLE001
        pass
    os._exit(0)


def supervise(job: dict, limits: dict, own_pidns: bool, scratch: str, keep: tuple, zygote: Zygote) -> tuple:
    """Run one job; returns (verdict, retire_worker)."""
    import time

    started = time.monotonic()
    base = {"tests_passed": 0, "tests_total": sum(1 for _, t in job["tests"] if t), "error_lines": []}
    if job.get("code") is None:
        return dict(base, status="no_code", feedback="no code found in the answer", duration_s=0.0), False
    workdir = os.path.join(scratch, "job")
    os.makedirs(workdir, exist_ok=True)
    result_r, result_w = os.pipe()
    output_r, output_w = os.pipe()
    nonce = os.urandom(16).hex()
    program_pid, spared = None, (1, zygote.pid)
    if job.get("mode") in SHARED_MODES:
        pid = os.fork()
        if pid == 0:
            zygote.channel.close()
            _shared_child(job, limits, result_w, output_w, workdir, nonce)
    else:
        judge_end, program_end = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            program_pid = zygote.start(_program_half(job, limits), program_end.fileno(), output_w)
        except (OSError, ValueError, frames.Closed):
            zygote.alive = False
            raise
        finally:
            program_end.close()
        pid = os.fork()
        if pid == 0:
            zygote.channel.close()
            _judge_child(job, limits, result_w, output_w, judge_end.detach(), workdir, nonce, spared,
                         None if own_pidns else program_pid)
        judge_end.close()
    os.close(result_w)
    os.close(output_w)
    watched = (pid, program_pid)
    extra = 3 if program_pid else 2
    report, output, exit_status, problem, cpu_s = supervisor.watch(pid, (result_r, output_r), limits, spared,
                                                                   watched, own_pidns, extra)
    supervisor.kill_job(spared, watched, own_pidns)
    status_code, reaped_cpu, reaped_all, zygote_died = supervisor.reap(pid, own_pidns, zygote.pid)
    if zygote_died:
        zygote.alive = False
    if exit_status is None:
        exit_status = status_code
        cpu_s = max(cpu_s, reaped_cpu)
    os.close(result_r)
    os.close(output_r)
    cleaned = supervisor.clean_dir(scratch, keep)
    result = supervisor.verdict(base, report, output, exit_status, problem, limits, nonce)
    result["duration_s"] = round(time.monotonic() - started, 4)
    result["cpu_s"] = round(cpu_s, 3)
    return result, not reaped_all or not cleaned or not zygote.healthy()


def main() -> None:
    config = json.loads(sys.argv[1])
    own_pidns = os.getpid() == 1
    signal.signal(signal.SIGINT, signal.SIG_DFL if own_pidns else signal.SIG_IGN)
    for name in PRELOAD:
        try:
            __import__(name)
        except Exception:  # noqa: BLE001 - optional modules (numpy, pandas) may be absent
            pass
    process_limits.no_dumps()
    scratch = config["scratch"]
    os.makedirs(scratch, exist_ok=True)
    inp, out = os.dup(0), os.dup(1)
    null = os.open(os.devnull, os.O_RDWR)
    os.dup2(null, 0)
    os.dup2(null, 1)
    zygote = Zygote(scratch)
    keep = tuple(config.get("keep", ()))
    for _ in range(config["recycle_after"]):
        try:
            message = frames.read_frame(inp)
        except frames.Closed:
            return
        verdict, retire = supervise(message["job"], message["limits"], own_pidns, scratch, keep, zygote)
        frames.write_frame(out, {"i": message["i"], "result": verdict, "retire": retire})
        if retire:
            return


if __name__ == "__main__":
    main()
