"""Showing a value in feedback without running code the program defined."""

from __future__ import annotations

_SAFE_MODULES = ("builtins", "numpy", "pandas", "collections", "decimal", "fractions", "datetime")


def _holds_objects(x) -> bool:
    """numpy/pandas containers of arbitrary objects: their repr would call the objects' own __repr__."""
    if type(x).__module__.split(".")[0] not in ("numpy", "pandas"):
        return False
    try:
        dtypes = list(x.dtypes) if hasattr(x, "dtypes") else [x.dtype] if hasattr(x, "dtype") else []
        return any(getattr(d, "kind", "O") == "O" for d in dtypes)
    except Exception:  # noqa: BLE001
        return True


def safe_repr(value) -> str:
    """A bounded repr that never runs code the program defined (its classes may override __repr__)."""
    import reprlib

    class Bounded(reprlib.Repr):
        def repr1(self, x, level):
            if type(x).__name__ == "Remote":
                return "<%s object>" % object.__getattribute__(x, "_type")
            if type(x).__module__.split(".")[0] not in _SAFE_MODULES or _holds_objects(x):
                return "<%s object>" % type(x).__name__
            return super().repr1(x, level)

    r = Bounded()
    r.maxlevel, r.maxlist, r.maxtuple, r.maxdict, r.maxset = 3, 8, 8, 8, 8
    r.maxstring, r.maxother, r.maxlong = 120, 120, 60
    try:
        return r.repr(value)[:200]
    except Exception:  # noqa: BLE001
        return "<%s object>" % type(value).__name__
