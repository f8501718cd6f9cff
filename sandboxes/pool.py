"""A small bounded pool of sandbox worker processes with hard deadlines enforced from outside.

Why not concurrent.futures: we must kill one hung worker without losing the others, retry a unit once
when its worker dies (a sandbox failure, not the program's), recycle workers after N units, and only
pull new work when a worker is free (backpressure). That is about a hundred lines, so here they are.
"""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
import time
from collections import deque
from dataclasses import dataclass, field
from multiprocessing.connection import Connection, wait
from typing import Any, Callable, Iterable, Iterator


class WorkerLost(Exception):
    """The worker died twice on this unit (reported to the caller, who turns it into sandbox_error)."""


class HardTimeout(Exception):
    """The unit outlived its outer deadline and its worker was killed."""


def _resolve(path: str) -> Callable:
    module, _, name = path.partition(":")
    return getattr(importlib.import_module(module), name)


def _worker_main(conn: Connection, handler_path: str, recycle_after: int, memory_mb: int = 0) -> None:
    handler = _resolve(handler_path)
    if memory_mb:  # after the imports: a worker's whole address space, so no unit can grow it past this
        import resource

        resource.setrlimit(resource.RLIMIT_AS, (memory_mb * 2**20, memory_mb * 2**20))
    for _ in range(recycle_after):
        try:
            message = conn.recv()
        except (EOFError, OSError):
            return
        if message is None:
            return
        index, unit = message
        try:
            conn.send((index, True, handler(unit)))
        except MemoryError:
            conn.send((index, False, "MemoryError: the worker ran out of its address space"))
        except Exception as exc:  # a handler bug: report it rather than dying silently
            conn.send((index, False, f"{type(exc).__name__}: {exc}"))


def _kill_group(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, 9)
    except (ProcessLookupError, PermissionError):
        pass


class _Duplex:
    """Two one-way pipes presented as one connection; `wait()` watches the read end via fileno()."""

    def __init__(self, reader: Connection, writer: Connection):
        self.reader, self.writer = reader, writer

    def fileno(self) -> int:
        return self.reader.fileno()

    def recv(self):
        return self.reader.recv()

    def send(self, obj) -> None:
        self.writer.send(obj)

    def close(self) -> None:
        self.reader.close()
        self.writer.close()


@dataclass
class _Slot:
    proc: subprocess.Popen
    conn: _Duplex
    job: tuple | None = None  # (index, unit, attempts, deadline)
    served: int = 0


@dataclass
class WorkerPool:
    """Run `handler(unit)` in at most `workers` spawned processes, started only when a unit is waiting for one
    (so a pool never starts more processes than it has units); `deadline(unit)` gives each unit's outer limit
    (s). `memory_mb` caps each default worker's address space."""

    handler: str
    workers: int = 2
    recycle_after: int = 500
    retries: int = 1
    spawn: Callable[[], tuple[subprocess.Popen, Any]] | None = None  # other worker kinds (the Python sandbox)
    memory_mb: int = 0
    _slots: list[_Slot] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.workers < 1:
            raise ValueError(f"a pool needs at least 1 worker, got {self.workers}")

    def _spawn(self) -> _Slot:
        if self.spawn is not None:
            return _Slot(*self.spawn())
        # A plain subprocess rather than multiprocessing's spawn: it never re-imports the caller's __main__
        # (so library users need no `if __name__ == "__main__"` guard) and gets its own process group.
        to_child_r, to_child_w = os.pipe()
        from_child_r, from_child_w = os.pipe()
        cmd = [sys.executable, "-m", "codelutra_data.sandboxes.pool", self.handler, str(self.recycle_after),
               str(to_child_r), str(from_child_w), str(self.memory_mb)]
        proc = subprocess.Popen(cmd, pass_fds=(to_child_r, from_child_w), stdin=subprocess.DEVNULL,
                                start_new_session=True, close_fds=True)
        os.close(to_child_r)
        os.close(from_child_w)
        conn = _Duplex(Connection(from_child_r, writable=False), Connection(to_child_w, readable=False))
        return _Slot(proc, conn)

    def _retire(self, slot: _Slot, kill: bool = False) -> None:
        if kill:
            _kill_group(slot.proc)
        try:
            slot.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            _kill_group(slot.proc)
            slot.proc.wait()
        slot.conn.close()
        self._slots.remove(slot)

    def map(self, units: Iterable[Any], deadline: Callable[[Any], float]) -> Iterator[tuple[int, Any]]:
        """Yield (index, result) as units finish, in completion order. A result is the handler's return
        value, or a WorkerLost / HardTimeout / RuntimeError instance for units the pool could not run."""
        source = iter(enumerate(units))
        retry: deque = deque()
        exhausted = False
        while True:
            idle = [s for s in self._slots if s.job is None]
            while idle or len(self._slots) < self.workers:
                if retry:
                    index, unit, attempts = retry.popleft()
                elif not exhausted:
                    nxt = next(source, None)
                    if nxt is None:
                        exhausted = True
                        break
                    (index, unit), attempts = nxt, 0
                else:
                    break
                if idle:
                    slot = idle.pop(0)
                else:
                    slot = self._spawn()
                    self._slots.append(slot)
                slot.job = (index, unit, attempts, time.monotonic() + deadline(unit))
                try:
                    slot.conn.send((index, unit))
                except (OSError, EOFError, ValueError):  # the worker died between units
                    slot.job = None
                    self._retire(slot, kill=True)
                    if attempts < self.retries:
                        retry.appendleft((index, unit, attempts + 1))
                    else:
                        yield index, WorkerLost("sandbox worker could not take this unit")
            busy = [s for s in self._slots if s.job is not None]
            if not busy:
                return
            soonest = min(s.job[3] for s in busy)
            ready = wait([s.conn for s in busy], timeout=max(0.0, soonest - time.monotonic()))
            for slot in list(busy):
                index, unit, attempts, limit = slot.job
                if slot.conn in ready:
                    try:
                        got_index, ok, value = slot.conn.recv()
                    except (EOFError, OSError):
                        self._retire(slot, kill=True)
                        if attempts < self.retries:
                            retry.append((index, unit, attempts + 1))
                        else:
                            yield index, WorkerLost("sandbox worker died twice on this unit")
                        continue
                    slot.job = None
                    slot.served += 1
                    yield index, (value if ok else RuntimeError(value))
                    if slot.served >= self.recycle_after or getattr(slot.conn, "retire_requested", False):
                        self._retire(slot)
                elif time.monotonic() >= limit:
                    self._retire(slot, kill=True)
                    yield index, HardTimeout("unit exceeded its outer deadline; worker killed")

    def close(self) -> None:
        for slot in list(self._slots):
            try:
                slot.conn.send(None)
            except (OSError, BrokenPipeError):
                pass
            self._retire(slot, kill=False)

    def __enter__(self) -> "WorkerPool":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


if __name__ == "__main__":
    _handler, _recycle, _rfd, _wfd, _memory = sys.argv[1:6]
    _conn = _Duplex(Connection(int(_rfd), writable=False), Connection(int(_wfd), readable=False))
    _worker_main(_conn, _handler, int(_recycle), int(_memory))
