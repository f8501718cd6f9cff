"""Length-prefixed JSON messages (4-byte big-endian length, then UTF-8 JSON): between the host and the worker,
the worker and the zygote, the judge and the program. Never pickle: a message is data, never code."""

from __future__ import annotations

import array
import json
import os
import select
import socket
import struct

MAX_MESSAGE = 256 << 20  # a job may carry a suite's test data (LiveCodeBench's private tests: tens of MB)


class Closed(Exception):
    """The other end closed its side (or broke the framing)."""


def read_exact(fd: int, n: int, timeout: float | None = None) -> bytes:
    chunks, got = [], 0
    while got < n:
        if timeout is not None and not select.select([fd], [], [], timeout)[0]:
            raise TimeoutError("no message")
        chunk = os.read(fd, min(n - got, 1 << 20))
        if not chunk:
            raise Closed("the other end closed its channel")
        chunks.append(chunk)
        got += len(chunk)
    return b"".join(chunks)


def read_frame(fd: int, limit: int = MAX_MESSAGE):
    """The next message; `Closed` at the end of the stream or for a message that is not one."""
    (size,) = struct.unpack(">I", read_exact(fd, 4))
    if size > limit:
        raise Closed("a message of %d bytes is over the limit" % size)
    try:
        return json.loads(read_exact(fd, size).decode("utf-8"))
    except (ValueError, RecursionError, MemoryError) as exc:
        raise Closed("a malformed message (%s)" % type(exc).__name__) from None


def encode_frame(obj) -> bytes:
    body = json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode("utf-8", "surrogatepass")
    return struct.pack(">I", len(body)) + body


def write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def write_frame(fd: int, obj) -> None:
    write_all(fd, encode_frame(obj))


def send_with_fds(sock: socket.socket, obj, fds: list[int]) -> None:
    """A message and open descriptors over a Unix socket (the descriptors ride with the first byte)."""
    data = encode_frame(obj)
    sent = sock.sendmsg([data[:1]], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", fds))])
    if sent == 1:
        write_all(sock.fileno(), data[1:])


def recv_with_fds(sock: socket.socket, max_fds: int = 8):
    """(message, descriptors) or raises Closed."""
    fds = array.array("i")
    first, ancillary, _flags, _addr = sock.recvmsg(1, socket.CMSG_SPACE(max_fds * fds.itemsize))
    if not first:
        raise Closed("the other end closed its channel")
    for level, kind, data in ancillary:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            fds.frombytes(data[:len(data) - (len(data) % fds.itemsize)])
    head = first + read_exact(sock.fileno(), 3)
    (size,) = struct.unpack(">I", head)
    try:
        return json.loads(read_exact(sock.fileno(), size).decode("utf-8")), list(fds)
    except (ValueError, RecursionError) as exc:
        raise Closed("a malformed message (%s)" % type(exc).__name__) from None
