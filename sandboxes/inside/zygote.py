"""The zygote: forked by the worker once, after the heavy imports and before any job arrives, it forks each
job's program process. So a program's process starts warm (about a fork) and yet its memory never held a test:
the zygote only ever receives the program's half of a job (the program, the task's setup, the harness and its
limits), never the tests, their data or a verdict.

Protocol: the worker sends one message per job with two descriptors attached (the program's end of the call
socket, the job's output pipe); the zygote answers with the program process's pid."""

from __future__ import annotations

import os
import signal
import socket

import frames
import limits as process_limits
import program  # noqa: F401 - imported once here, so each program process starts with it


def serve(channel: socket.socket, scratch: str) -> None:
    """Fork a program process per message until the worker closes the channel; never returns."""
    process_limits.no_dumps()
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # program processes are reaped by the kernel
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    while True:
        try:
            half, fds = frames.recv_with_fds(channel)
        except (OSError, frames.Closed):
            os._exit(0)
        if len(fds) != 2:
            os._exit(0)
        pid = os.fork()
        if pid == 0:
            channel.close()
            _program(half, fds[0], fds[1], os.path.join(scratch, "job"))
        for fd in fds:
            os.close(fd)
        try:
            frames.write_frame(channel.fileno(), {"pid": pid})
        except OSError:
            os._exit(0)


def _program(half: dict, program_end: int, output: int, workdir: str) -> None:
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    program.main(half, program_end, output, workdir)
    os._exit(0)
