"""Calls between the judge's process and the program's, over one socket: either side may call the other's objects
(the judge calls the program's functions; the program calls back a function a test passed it) and waits for the
answer while serving the other side's calls. Values cross as plain data (plain.py); anything else crosses as a
handle (`Remote`), which can be called, iterated, measured and asked for public attributes, and which equals only
itself, so no method of the other side ever decides a comparison here."""

from __future__ import annotations

import builtins
import os
import select
import traceback

import frames
import plain
import show

MAX_NESTING = 64
CANDIDATE_FILE = "<candidate>"
_PASSED_ON = {"StopIteration", "StopAsyncIteration", "GeneratorExit", "KeyboardInterrupt"}


class ProgramGone(Exception):
    """The other process ended or broke the protocol: nothing it says any more counts."""


class ProgramExit(BaseException):
    """The program called exit() during a call: it ends the test as SystemExit ends a harness."""

    def __init__(self, code):
        super().__init__(code)
        self.code = code


class Remote:
    """A handle to an object of the other process."""

    __slots__ = ("_peer", "_id", "_type")

    def __init__(self, peer: "Peer", ident: int, type_name: str):
        object.__setattr__(self, "_peer", peer)
        object.__setattr__(self, "_id", ident)
        object.__setattr__(self, "_type", type_name)

    def _ask(self, op, *args, **kwargs):
        return self._peer.request(op, self._id, list(args), kwargs)

    def __call__(self, *args, **kwargs):
        return self._peer.call(self._id, args, kwargs)

    def __getattr__(self, name):
        if name.startswith("_"):
            raise AttributeError(name)
        return self._ask("attr", name)

    def __setattr__(self, name, value):
        raise AttributeError("a value of the program cannot be changed from here")

    def __iter__(self):
        return self._ask("iter")

    def __next__(self):
        return self._ask("next")

    def __len__(self):
        return self._ask("len")

    def __bool__(self):
        return self._ask("bool")

    def __getitem__(self, key):
        return self._ask("getitem", key)

    def __contains__(self, item):
        return self._ask("contains", item)

    def __str__(self):
        return self._ask("str")

    def __repr__(self):
        return self._ask("repr")

    def __eq__(self, other):
        return type(other) is Remote and other._peer is self._peer and other._id == self._id

    def __ne__(self, other):
        return not self.__eq__(other)

    def __hash__(self):
        return hash((id(self._peer), self._id))


def _builtin_base(exc: BaseException) -> str:
    for cls in type.__dict__["__mro__"].__get__(type(exc)):
        name = type.__dict__["__name__"].__get__(cls)
        if getattr(builtins, name, None) is cls:
            return name
    return "Exception"


def _text(value) -> str:
    try:
        text = str(value)
        return text if type(text) is str else str.__str__(text)
    except BaseException:  # noqa: BLE001 - a hostile __str__ costs only its message
        return ""


def candidate_line(tb) -> int | None:
    line = None
    for frame in traceback.extract_tb(tb):
        if frame.filename == CANDIDATE_FILE:
            line = frame.lineno
    return line


def describe_error(exc: BaseException, offset: int = 0) -> dict:
    """An exception of this process as the other side will raise it: its builtin base, its own class's name, its
    message, and the line of the program it came from (`offset` lines of a prefix not counted)."""
    name = type.__dict__["__name__"].__get__(type(exc))
    info = {"base": _builtin_base(exc), "name": name if type(name) is str else "Exception",
            "message": _text(exc)[:300], "line": candidate_line(exc.__traceback__)}
    if isinstance(exc, SyntaxError) and getattr(exc, "filename", None) == CANDIDATE_FILE:
        info.update(message=_text(exc.msg)[:300], line=exc.lineno if type(exc.lineno) is int else None, syntax=True)
    if info["line"] is not None:
        info["line"] = info["line"] - offset if info["line"] > offset else None
    if isinstance(exc, SystemExit):
        code = exc.code
        info["exit"] = code if code is None or type(code) in (int, str) else _text(code)[:100]
    return info


def raise_remote(info: dict):
    """The other side's exception, raised here as its builtin base (never as a class it made)."""
    if type(info) is not dict or type(info.get("base")) is not str or type(info.get("name")) is not str:
        raise ProgramGone("a malformed error from the program")
    base, name, message = info["base"], info["name"][:100], str(info.get("message") or "")[:300]
    line = info.get("line") if type(info.get("line")) is int else None
    if base == "SystemExit":
        exc = ProgramExit(info.get("exit"))
    elif base in _PASSED_ON:
        exc = RuntimeError("the program raised %s" % name)
    else:
        exc = _builtin_exception(base, message)
    exc.described = "%s: %s" % (name, message) if message else name
    exc.program_line = line
    exc.program_syntax = info.get("syntax") is True
    raise exc


def _builtin_exception(base: str, message: str) -> BaseException:
    cls = getattr(builtins, base, None)
    if not (isinstance(cls, type) and issubclass(cls, Exception)):
        cls = Exception
    for candidate in cls.__mro__:  # classes that need other arguments (UnicodeDecodeError) give way to a base
        try:
            return candidate(message)
        except Exception:  # noqa: BLE001
            continue
    return Exception(message)


class Peer:
    """One end of the call channel. `handlers` answer the other side's calls by name (the program's `load`);
    `watch` runs every `watch_every` seconds while this side waits (the judge's per-test CPU limit)."""

    def __init__(self, fd: int, handlers: dict | None = None, line_offset: int = 0):
        self.fd = fd
        self.handlers = handlers or {}
        self.line_offset = line_offset
        self.exports: dict[int, object] = {}
        self.ids: dict[int, int] = {}
        self.pending: list[int] = []
        self.counter = 0
        self.watch = None
        self.watch_every = 0.02
        self.dead: str | None = None

    # ---------------------------------------------------------------- values
    def export(self, obj) -> int:
        ident = self.ids.get(id(obj))
        if ident is None:
            ident = self.ids[id(obj)] = len(self.exports) + 1
            self.exports[ident] = obj
        return ident

    def _local(self, obj):
        return obj._id if type(obj) is Remote and obj._peer is self else None

    def _mine(self, ident: int):
        if ident not in self.exports:
            raise plain.ProtocolError("an unknown handle")
        return self.exports[ident]

    def encode(self, value):
        return plain.Encoder(self.export, self._local).encode(value)

    def decode(self, data):
        return plain.Decoder(lambda i, t: Remote(self, i, t), self._mine).decode(data)

    # ---------------------------------------------------------------- asking
    def call(self, target, args, kwargs):
        args = list(args)
        reply = self._request("call", target, [self.encode(a) for a in args],
                              {k: self.encode(v) for k, v in kwargs.items()})
        try:
            changed = [(i, self.decode(data)) for i, data in (reply.get("w") or ())]
            value = self.decode(reply.get("v"))
        except (plain.ProtocolError, TypeError, ValueError):
            raise self._fail("the program's process broke the call protocol") from None
        for index, new in changed:
            if type(index) is int and 0 <= index < len(args):
                _write_back(args[index], new)
        return value

    def request(self, op: str, target, args=(), kwargs=None):
        reply = self._request(op, target, [self.encode(a) for a in args], kwargs or {})
        if reply.get("stop") is True:
            raise StopIteration
        try:
            return self.decode(reply.get("v"))
        except plain.ProtocolError:
            raise self._fail("the program's process broke the call protocol") from None

    def _request(self, op, target, args, kwargs) -> dict:
        if self.dead:
            raise ProgramGone(self.dead)
        if len(self.pending) >= MAX_NESTING:
            raise RecursionError("calls between the tests and the program nested too deep")
        self.counter += 1
        number = self.counter
        self.pending.append(number)
        try:
            frames.write_frame(self.fd, {"q": number, "op": op, "t": target, "a": args, "k": kwargs})
            while True:
                message = self._next()
                if "q" not in message:
                    break
                self._serve(message)
        except (OSError, frames.Closed):
            raise self._fail("the program's process ended") from None
        finally:
            self.pending.pop()
        if message.get("r") != number:
            raise self._fail("the program's process broke the call protocol")
        if "e" in message:
            raise_remote(message["e"])
        return message

    def _fail(self, why: str) -> ProgramGone:
        self.dead = self.dead or why
        return ProgramGone(self.dead)

    def _next(self) -> dict:
        while self.watch is not None and not select.select([self.fd], [], [], self.watch_every)[0]:
            self.watch()
        message = frames.read_frame(self.fd)
        if type(message) is not dict:
            raise self._fail("the program's process broke the call protocol")
        return message

    # ---------------------------------------------------------------- answering
    def serve_forever(self) -> None:
        """The program's side: answer calls until the judge closes the channel."""
        while True:
            try:
                message = frames.read_frame(self.fd)
            except (OSError, frames.Closed):
                return
            if type(message) is dict and "q" in message:
                self._serve(message)

    def _serve(self, message: dict) -> None:
        number = message.get("q")
        try:
            reply = {"r": number}
            reply.update(self._answer(message))
        except plain.ProtocolError as exc:
            reply = {"r": number, "e": {"base": "RuntimeError", "name": "ProtocolError", "message": str(exc)}}
        except BaseException as exc:  # noqa: BLE001 - every failure of the asked code is an answer
            reply = {"r": number, "e": describe_error(exc, self.line_offset)}
        frames.write_frame(self.fd, reply)

    def _answer(self, message: dict) -> dict:
        op, target = message.get("op"), message.get("t")
        args = [self.decode(a) for a in message.get("a") or []]
        kwargs = {str(k): self.decode(v) for k, v in (message.get("k") or {}).items()}
        if op in self.handlers:
            return {"v": self.encode(self.handlers[op](*args, **kwargs))}
        obj = self._mine(target) if type(target) is int else None
        if op == "call":
            sent = message.get("a") or []
            value = obj(*args, **kwargs)
            return {"v": self.encode(value), "w": _changed(self, args, sent)}
        if op == "next":
            try:
                return {"v": self.encode(next(obj))}
            except StopIteration:
                return {"stop": True}
        if op == "attr":
            name = str(args[0])
            if name.startswith("_"):
                raise AttributeError(name)
            return {"v": self.encode(getattr(obj, name))}
        answer = _OPS.get(op)
        if answer is None:
            raise plain.ProtocolError("unknown operation %r" % str(op)[:20])
        return {"v": self.encode(answer(obj, *args))}


_OPS = {"show": show.safe_repr, "iter": iter, "len": len, "bool": bool, "str": lambda o: str(o), "repr": lambda o: repr(o),
        "getitem": lambda o, k: o[k], "contains": lambda o, x: x in o}


def _changed(peer: Peer, args: list, sent: list) -> list:
    """Arguments the call changed in place (lists, dicts, sets, bytearrays), to be changed there too."""
    out = []
    for index, (arg, before) in enumerate(zip(args, sent)):
        if type(arg) in (list, dict, set, bytearray):
            now = peer.encode(arg)
            if now != before:
                out.append([index, now])
    return out


def _write_back(arg, new) -> None:
    kind = type(arg)
    if kind is not type(new):
        return
    if kind in (list, bytearray):
        arg[:] = new
    elif kind in (dict, set):
        arg.clear()
        arg.update(new)


def pids_except(*keep: int) -> list[int]:
    return [int(n) for n in os.listdir("/proc") if n.isdigit() and int(n) not in keep]
