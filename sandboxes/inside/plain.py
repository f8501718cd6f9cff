"""Values as plain data: what crosses between the program's process and the judge's.

A value is written as JSON in which every container carries a tag, so a list is never mistaken for a tuple nor a
dict key for a string: `["l", ...]` a list, `["t", ...]` a tuple, `["d", k, v, ...]` a dict, and so on. Only exact
types are written as themselves; an instance of a subclass of a builtin (an `int` whose `__eq__` always says
True, a `list` with its own `__iter__`) is written as the builtin its storage holds, read with the builtin's own
methods, never the subclass's. Anything else (a function, a generator, an object of the program's classes)
becomes a handle the other side can call or read attributes of, never compare: a handle equals only itself.

Reading is strict: a malformed message, a numpy dtype that is not plain numbers or text, or a value nested too
deep is a `ProtocolError`, and only trusted constructors run. So no object the program made, and none of its
methods, ever reaches the judge's comparisons.
"""

from __future__ import annotations

import base64
import collections
import datetime as dt
import decimal
import fractions
import math
import re
import sys

MAX_DEPTH = 100
MAX_ITEMS = 5_000_000
BIG_INT = 1 << 62  # beyond this, ints travel in hex (JSON's decimal text is limited to 4300 digits)
_DTYPE = re.compile(r"^[<>|=]?(?:[biufcSUV]\d{1,6}|[mM]8(?:\[\d{0,6}[a-zA-Z]{1,2}\])?|\?)$")


class ProtocolError(Exception):
    """A message that does not follow the protocol (from a program that broke it or a value that cannot cross)."""


class Unencodable(TypeError):
    """A value that cannot cross and may not become a handle here."""


def _numpy():
    return sys.modules.get("numpy")


def _scalar_types(np) -> set:
    if not hasattr(_scalar_types, "cache"):
        _scalar_types.cache = {t for t in set(np.sctypeDict.values()) if isinstance(t, type)
                               and issubclass(t, np.generic) and t is not np.object_}
    return _scalar_types.cache


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


class Encoder:
    """One value to plain data. `export(obj) -> id` makes a handle for an object that is not data (None: refuse);
    `local(obj) -> id or None` recognises the other side's own handles coming back."""

    def __init__(self, export=None, local=None):
        self.export = export
        self.local = local
        self.items = 0

    def encode(self, value, depth: int = 0):
        if depth > MAX_DEPTH:
            raise Unencodable("a value nested more than %d deep cannot cross" % MAX_DEPTH)
        self.items += 1
        if self.items > MAX_ITEMS:
            raise Unencodable("a value of more than %d items cannot cross" % MAX_ITEMS)
        kind = type(value)
        if value is None or kind is bool or kind is str:
            return value
        if kind is int:
            return value if -BIG_INT < value < BIG_INT else ["i", "%x" % value]
        if kind is float:
            return ["x", value.hex()] if value != value or value in (float("inf"), float("-inf")) else value
        handler = _EXACT.get(kind)
        if handler is not None:
            return handler(self, value, depth)
        np = _numpy()
        if np is not None and (kind is np.ndarray or kind in _scalar_types(np)):
            return _encode_numpy(self, value, depth, np)
        return self._other(value, depth)

    def _other(self, value, depth):
        kind = type(value)
        local = self.local(value) if self.local else None
        if local is not None:
            return ["H", local]
        for base, launder in _LAUNDER:
            if issubclass(kind, base):
                return self.encode(launder(value), depth)
        np = _numpy()
        if np is not None and issubclass(kind, np.ndarray):
            return _encode_numpy(self, np.ndarray.view(value, np.ndarray), depth, np)
        if self.export is None:
            raise Unencodable("a %s cannot cross: only plain data can" % _name(kind))
        return ["h", self.export(value), _name(kind)]

    def many(self, values, depth):
        return [self.encode(v, depth + 1) for v in values]


def _name(kind) -> str:
    try:
        name = type.__dict__["__name__"].__get__(kind)
        return name if type(name) is str else "object"
    except Exception:  # noqa: BLE001
        return "object"


def _encode_dict(enc: Encoder, value: dict, depth: int):
    out = ["d"]
    for key, item in value.items():
        out.append(enc.encode(key, depth + 1))
        out.append(enc.encode(item, depth + 1))
    return out


def _encode_numpy(enc: Encoder, value, depth: int, np):
    if isinstance(value, np.ndarray) and value.dtype.kind == "O":
        return ["no", list(value.shape), *enc.many(value.ravel(order="C").tolist(), depth)]
    dtype = value.dtype.str
    if not _DTYPE.match(dtype) or value.dtype.fields is not None:
        if enc.export is None:
            raise Unencodable("a numpy value of dtype %s cannot cross" % dtype)
        return ["h", enc.export(value), _name(type(value))]
    if type(value) is np.ndarray:
        return ["na", dtype, list(value.shape), _b64(np.ascontiguousarray(value).tobytes())]
    return ["ns", dtype, _b64(np.ndarray.tobytes(np.asarray(value)))]


def _encode_datetime(enc: Encoder, value, depth: int):
    offset = value.utcoffset() if isinstance(value, (dt.datetime, dt.time)) else None
    fields = [value.year, value.month, value.day] if not isinstance(value, dt.time) else []
    if not isinstance(value, dt.date) or isinstance(value, dt.datetime):
        fields += [value.hour, value.minute, value.second, value.microsecond, value.fold]
    tz = None if offset is None else [offset.days, offset.seconds, offset.microseconds]
    tag = {dt.datetime: "dt", dt.date: "da", dt.time: "ti"}[type(value)]
    return [tag, fields, tz]


_SCALARS = frozenset((int, float, str, bool, type(None)))


def _flat(enc: "Encoder", tag: str, values, depth: int):
    """A container of scalars only is written in one pass at C speed; anything else item by item."""
    kinds = set(map(type, values))
    if kinds <= _SCALARS:
        ints = values if kinds == {int} else [x for x in values if type(x) is int] if int in kinds else ()
        floats = [x for x in values if type(x) is float] if float in kinds else ()
        if (not ints or (-BIG_INT < min(ints) and max(ints) < BIG_INT)) and all(map(math.isfinite, floats)):
            enc.items += len(values)
            if enc.items > MAX_ITEMS:
                raise Unencodable("a value of more than %d items cannot cross" % MAX_ITEMS)
            return [tag, *values]
    return [tag, *enc.many(values, depth)]


_EXACT = {
    list: lambda e, v, d: _flat(e, "l", v, d),
    tuple: lambda e, v, d: _flat(e, "t", v, d),
    dict: _encode_dict,
    set: lambda e, v, d: _flat(e, "s", list(v), d),
    frozenset: lambda e, v, d: _flat(e, "f", list(v), d),
    bytes: lambda e, v, d: ["b", _b64(v)],
    bytearray: lambda e, v, d: ["B", _b64(bytes(v))],
    complex: lambda e, v, d: ["c", e.encode(v.real, d + 1), e.encode(v.imag, d + 1)],
    range: lambda e, v, d: ["r", v.start, v.stop, v.step],
    type(Ellipsis): lambda e, v, d: ["E"],
    collections.OrderedDict: lambda e, v, d: ["od", *e.many([x for kv in v.items() for x in kv], d)],
    collections.defaultdict: lambda e, v, d: _encode_dict(e, dict.copy(v), d),
    collections.Counter: lambda e, v, d: ["C", *e.many([x for kv in dict.items(v) for x in kv], d)],
    collections.deque: lambda e, v, d: ["q", v.maxlen, *e.many(list(v), d)],
    decimal.Decimal: lambda e, v, d: ["D", str(v)],
    fractions.Fraction: lambda e, v, d: ["F", e.encode(v.numerator, d + 1), e.encode(v.denominator, d + 1)],
    dt.timedelta: lambda e, v, d: ["td", v.days, v.seconds, v.microseconds],
    dt.datetime: _encode_datetime,
    dt.date: _encode_datetime,
    dt.time: _encode_datetime,
}

# Subclasses of builtins become the builtin their storage holds, read by the builtin's own methods (whatever
# they hold is the program's answer; what matters is that the judge compares exact builtins).
_LAUNDER = (
    (int, int.__int__), (float, float.__float__),
    (complex, lambda v: complex(complex.real.__get__(v), complex.imag.__get__(v))),
    (str, str.__str__), (bytes, lambda v: bytes.__getitem__(v, slice(None))), (bytearray, bytearray.copy),
    (list, list.copy), (dict, dict.copy), (tuple, lambda v: tuple.__getitem__(v, slice(None))),
    (set, set.copy), (frozenset, frozenset.copy),
)


def encode(value, export=None, local=None):
    return Encoder(export, local).encode(value)


# ------------------------------------------------------------------------------------------ reading
class Decoder:
    """Plain data to fresh objects. `remote(id, type_name) -> proxy` makes the other side's handles;
    `mine(id) -> object` resolves this side's own handles coming back."""

    def __init__(self, remote=None, mine=None):
        self.remote = remote
        self.mine = mine

    def decode(self, data, depth: int = 0):
        if depth > MAX_DEPTH:
            raise ProtocolError("a value nested too deep")
        kind = type(data)
        if data is None or kind in (bool, int, float, str):
            return data
        if kind is not list or not data or type(data[0]) is not str:
            raise ProtocolError("malformed value")
        reader = _READERS.get(data[0])
        if reader is None:
            raise ProtocolError("unknown tag %r" % data[0][:10])
        try:
            return reader(self, data[1:], depth + 1)
        except ProtocolError:
            raise
        except (TypeError, ValueError, OverflowError, KeyError, IndexError, decimal.InvalidOperation) as exc:
            raise ProtocolError("malformed %s value (%s)" % (data[0], type(exc).__name__)) from None

    def many(self, items, depth):
        if set(map(type, items)) <= _SCALARS:  # scalars are themselves: no item-by-item pass
            return list(items)
        return [self.decode(x, depth) for x in items]

    def pairs(self, items, depth):
        if len(items) % 2:
            raise ProtocolError("a mapping with an odd number of items")
        values = self.many(items, depth)
        return list(zip(values[0::2], values[1::2]))


def _text(value, kind=str):
    if type(value) is not kind:
        raise ProtocolError("malformed field")
    return value


def _number(value):
    if type(value) not in (int, float):
        raise ProtocolError("malformed number")
    return value


def _read_handle(dec: Decoder, rest, depth):
    if dec.remote is None:
        raise ProtocolError("a handle where only plain data may come")
    return dec.remote(_text(rest[0], int), _text(rest[1]) if len(rest) > 1 else "object")


def _read_mine(dec: Decoder, rest, depth):
    if dec.mine is None:
        raise ProtocolError("a handle where only plain data may come")
    return dec.mine(_text(rest[0], int))


def _read_numpy(dec: Decoder, rest, depth):
    np = _numpy()
    if np is None:
        raise ProtocolError("a numpy value where numpy is absent")
    dtype, raw = _text(rest[0]), base64.b64decode(_text(rest[-1]), validate=True)
    if not _DTYPE.match(dtype):
        raise ProtocolError("a numpy dtype that is not plain data")
    kind = np.dtype(dtype)
    if len(rest) == 3:
        shape = tuple(_text(n, int) for n in _text(rest[1], list))
        return np.frombuffer(raw, dtype=kind).reshape(shape).copy()
    return np.frombuffer(raw, dtype=kind)[0]


def _read_object_array(dec: Decoder, rest, depth):
    np = _numpy()
    if np is None:
        raise ProtocolError("a numpy value where numpy is absent")
    shape = tuple(_text(n, int) for n in _text(rest[0], list))
    out = np.empty(len(rest) - 1, dtype=object)
    for i, item in enumerate(dec.many(rest[1:], depth)):
        out[i] = item
    return out.reshape(shape)


def _read_datetime(kind):
    def read(dec, rest, depth):
        fields = [_text(x, int) for x in _text(rest[0], list)]
        tz = None if rest[1] is None else dt.timezone(dt.timedelta(*[_text(x, int) for x in rest[1]]))
        if kind is dt.date:
            return dt.date(*fields)
        if kind is dt.time:
            return dt.time(*fields[:4], tzinfo=tz, fold=fields[4])
        return dt.datetime(*fields[:7], tzinfo=tz, fold=fields[7])
    return read


def _read_deque(dec, rest, depth):
    maxlen = rest[0]
    if maxlen is not None and type(maxlen) is not int:
        raise ProtocolError("malformed deque")
    return collections.deque(dec.many(rest[1:], depth), maxlen)


_READERS = {
    "l": lambda d, r, n: d.many(r, n),
    "t": lambda d, r, n: tuple(d.many(r, n)),
    "d": lambda d, r, n: dict(d.pairs(r, n)),
    "od": lambda d, r, n: collections.OrderedDict(d.pairs(r, n)),
    "C": lambda d, r, n: collections.Counter(dict(d.pairs(r, n))),
    "s": lambda d, r, n: set(d.many(r, n)),
    "f": lambda d, r, n: frozenset(d.many(r, n)),
    "b": lambda d, r, n: base64.b64decode(_text(r[0]), validate=True),
    "B": lambda d, r, n: bytearray(base64.b64decode(_text(r[0]), validate=True)),
    "c": lambda d, r, n: complex(_number(d.decode(r[0], n)), _number(d.decode(r[1], n))),
    "i": lambda d, r, n: int(_text(r[0]), 16),
    "x": lambda d, r, n: float.fromhex(_text(r[0])),
    "r": lambda d, r, n: range(_text(r[0], int), _text(r[1], int), _text(r[2], int)),
    "E": lambda d, r, n: Ellipsis,
    "q": _read_deque,
    "D": lambda d, r, n: decimal.Decimal(_text(r[0])),
    "F": lambda d, r, n: fractions.Fraction(_text(d.decode(r[0], n), int), _text(d.decode(r[1], n), int)),
    "td": lambda d, r, n: dt.timedelta(_text(r[0], int), _text(r[1], int), _text(r[2], int)),
    "dt": _read_datetime(dt.datetime),
    "da": _read_datetime(dt.date),
    "ti": _read_datetime(dt.time),
    "na": _read_numpy,
    "ns": _read_numpy,
    "no": _read_object_array,
    "h": _read_handle,
    "H": _read_mine,
}


def decode(data, remote=None, mine=None):
    return Decoder(remote, mine).decode(data)
