"""Values that lie, where the tests must share the program's process: a value handed from the program to the tests
(BigCodeBench's `task_func(...)`, DS-1000's `result`) must not be of a type the program wrote that decides for
itself how it compares. Such a value is refused where it crosses (a TypeError in the test), before any comparison.

A type decides for itself when it, or a class above it, defines one of the methods comparisons and the test
helpers consult (`__eq__`, `__bool__`, `__len__`, `__array__`, `__sub__`, ...) with code that is not a library's:
a Python function from anywhere but a file of the standard library, the environment or this folder (the program's
own code, or text it compiled), or a callable that is not the class's own C slot (`__eq__ = slice`). Builtins,
numpy, pandas, the standard library and every installed package are libraries; classes they generate from text
(dataclasses' `__eq__`) count as the program's, which only ever fails a test, never passes one."""

from __future__ import annotations

import sys
import types

CONSULTED = ("__eq__", "__ne__", "__lt__", "__le__", "__gt__", "__ge__", "__bool__", "__len__", "__hash__",
             "__float__", "__int__", "__index__", "__abs__", "__sub__", "__rsub__", "__add__", "__radd__", "__iter__",
             "__getitem__", "__contains__", "__array__", "__array_ufunc__", "__array_function__", "__array_priority__",
             "__array_interface__", "__round__", "__neg__", "__str__", "__repr__", "__format__", "__instancecheck__",
             "__subclasscheck__", "__class__", "__getattr__", "__getattribute__")
MAX_ITEMS = 100_000
_C_KINDS = (types.WrapperDescriptorType, types.MethodDescriptorType, types.BuiltinFunctionType,
            types.MethodWrapperType, types.GetSetDescriptorType, types.MemberDescriptorType)


class Untrusted(TypeError):
    """A value of a type the program wrote that compares by its own rules."""


def make_checker(trusted_file):
    """`check(value)`: raises Untrusted for a value (or an item in it) whose type decides its own comparisons."""
    verdicts: dict = {}

    def member_ok(cls, member) -> bool:
        if member is None or isinstance(member, (int, float, str)):
            return True
        if isinstance(member, (staticmethod, classmethod)):
            member = member.__func__
        if isinstance(member, property):
            return all(member_ok(cls, f) for f in (member.fget, member.fset, member.fdel) if f is not None)
        if isinstance(member, types.FunctionType):
            return trusted_file(member.__code__.co_filename)
        if isinstance(member, _C_KINDS):
            owner = getattr(member, "__objclass__", None)
            return owner is None and not isinstance(member, types.BuiltinFunctionType) or owner in cls.__mro__
        return False

    def type_ok(cls) -> str | None:
        if cls in verdicts:
            return verdicts[cls]
        found = None
        for klass in type.__dict__["__mro__"].__get__(cls):
            if not (type.__dict__["__flags__"].__get__(klass) & (1 << 9)):  # a static C type: a library's
                continue
            own = type.__dict__["__dict__"].__get__(klass)
            bad = next((name for name in CONSULTED if name in own and not member_ok(klass, own[name])), None)
            if bad:
                found = "%s.%s" % (type.__dict__["__name__"].__get__(klass), bad)
                break
        if type(cls) is not type and found is None:  # a metaclass of its own decides isinstance/issubclass
            found = type_ok(type(cls))
        verdicts[cls] = found
        return found

    def check(value, _budget=None) -> None:
        budget = _budget if _budget is not None else [MAX_ITEMS]
        stack = [value]
        while stack and budget[0] > 0:
            item = stack.pop()
            budget[0] -= 1
            bad = type_ok(type(item))
            if bad:
                raise Untrusted("the program handed the tests a value whose type compares by its own rules (%s)" % bad)
            stack.extend(_inside(item))

    return check


def _inside(item) -> list:
    kind = type(item)
    if kind in (list, tuple, set, frozenset):
        return list(item)[:MAX_ITEMS]
    if kind is dict:
        return [x for kv in list(item.items())[:MAX_ITEMS] for x in kv]
    np = sys.modules.get("numpy")
    if np is not None and kind is np.ndarray and item.dtype.kind == "O":
        return list(item.ravel()[:MAX_ITEMS].tolist())
    pd = sys.modules.get("pandas")
    if pd is not None and kind in (pd.DataFrame, pd.Series):
        frame = item.to_frame() if kind is pd.Series else item
        return [v for position, dtype in enumerate(frame.dtypes) if dtype.kind == "O"
                for v in frame.iloc[:MAX_ITEMS, position].tolist()]
    return []


def default_checker():
    from audit import trusted_files

    return make_checker(trusted_files())
