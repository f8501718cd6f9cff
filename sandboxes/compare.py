"""Result-set equivalence for SQL, in the three modes users meet in the literature.

- `spider`: the rules of the official Spider test-suite evaluator's execution match: rows compared as a
  multiset (as a list only when the gold query has ORDER BY), any permutation of columns may match, two
  empty results are equal, numerically equal values are equal (1 == 1.0).
- `set`: rows compared as sets, columns in order (BIRD's evaluator).
- `ordered`: rows compared as lists, columns in order.
"""

from __future__ import annotations

import datetime
import re
from collections import Counter
from itertools import chain
from typing import Sequence

MODES = ("spider", "set", "ordered", "strict")
Row = tuple
_OPS = re.compile(r"([<>!])\s+=")
_STRINGS = re.compile(r"('(?:[^']|'')*'|\"(?:[^\"]|\"\")*\")")
_DISTINCT = re.compile(r"\bdistinct\b", re.IGNORECASE)


def _outside_strings(sql: str, fn) -> str:
    parts = _STRINGS.split(sql)
    return "".join(p if i % 2 else fn(p) for i, p in enumerate(parts))


def prepare_query(sql: str, mode: str) -> str:
    """The query text that is executed: in `spider` mode, `> =` becomes `>=` and DISTINCT is dropped, as the
    official evaluator does to both gold and prediction."""
    if mode != "spider":
        return sql
    return _outside_strings(sql, lambda s: _DISTINCT.sub("", _OPS.sub(r"\1=", s)))


def order_matters(gold_sql: str, mode: str) -> bool:
    if mode == "ordered":
        return True
    if mode == "set":
        return False
    # The official evaluator's rule, literally: a substring test on the lowercased gold text.
    return "order by" in gold_sql.lower()


class Mapping(frozenset):
    """A DuckDB struct or map as a hashable value: equal whatever the order of its entries."""

    def __repr__(self) -> str:
        return "{" + ", ".join(f"{k!r}: {v!r}" for k, v in sorted(self, key=repr)) + "}"


def _norm(value):
    """A canonical, hashable form of one result value. Python already treats 1 == 1.0 (and hashes them
    alike, Decimal too); booleans become ints, -0.0 becomes 0; DuckDB's lists and arrays become tuples, its
    structs and maps `Mapping`s, and timestamps with a time zone the same instant in UTC."""
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, (list, tuple)):
        return tuple(_norm(v) for v in value)
    if isinstance(value, dict):
        return Mapping((_norm(k), _norm(v)) for k, v in value.items())
    if isinstance(value, datetime.datetime) and value.tzinfo is not None:
        return value.astimezone(datetime.timezone.utc)
    return value


def _norm_rows(rows: Sequence[Sequence]) -> list[Row]:
    return [tuple(_norm(v) for v in row) for row in rows]


def _column_key(rows: list[Row], col: int) -> Counter:
    return Counter(row[col] for row in rows)


def _permutations(gold: list[Row], pred: list[Row], ncols: int):
    """Column permutations of `pred` worth trying: column j may stand for gold column i only if their
    value multisets agree, which prunes the search to (nearly) one candidate on real results."""
    gold_cols = [_column_key(gold, i) for i in range(ncols)]
    pred_cols = [_column_key(pred, j) for j in range(ncols)]
    options = [[j for j in range(ncols) if pred_cols[j] == gold_cols[i]] for i in range(ncols)]
    chosen: list[int] = []
    used: set[int] = set()

    def walk(i: int):
        if i == ncols:
            yield tuple(chosen)
            return
        for j in options[i]:
            if j not in used:
                used.add(j)
                chosen.append(j)
                yield from walk(i + 1)
                chosen.pop()
                used.discard(j)

    yield from walk(0)


def results_equal(gold: Sequence[Sequence], pred: Sequence[Sequence], mode: str, ordered: bool) -> bool:
    """Whether `pred` matches `gold` under `mode`; `ordered` says whether row order counts (see order_matters)."""
    if mode not in MODES:
        raise ValueError(f"unknown comparison mode {mode!r}; expected one of {MODES}")
    g, p = _norm_rows(gold), _norm_rows(pred)
    if mode == "set":
        return set(g) == set(p)
    if mode == "ordered" or (mode == "strict" and ordered):
        return g == p
    if mode == "strict":
        return Counter(g) == Counter(p)
    if not g and not p:
        return True
    if len(g) != len(p):
        return False
    ncols = len(g[0])
    if any(len(r) != ncols for r in chain(g, p)):
        return False
    gold_counter = None if ordered else Counter(g)
    for perm in _permutations(g, p, ncols):
        permuted = [tuple(row[j] for j in perm) for row in p]
        if (permuted == g) if ordered else (Counter(permuted) == gold_counter):
            return True
    return False


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def describe_difference(gold: Sequence[Sequence], pred: Sequence[Sequence], limit: int = 600) -> str:
    """Short, bounded feedback a model can act on: shapes, then the first rows that differ."""
    shape = lambda rows: f"{len(rows)} rows x {len(rows[0])} columns" if rows else "no rows"  # noqa: E731
    head = f"wrong result: expected {shape(gold)}, got {shape(pred)}"
    g, p = _norm_rows(gold), _norm_rows(pred)
    missing = list((Counter(g) - Counter(p)).elements())[:3]
    extra = list((Counter(p) - Counter(g)).elements())[:3]
    parts = [head]
    if missing:
        parts.append("expected rows not returned: " + "; ".join(_clip(repr(r), 120) for r in missing))
    if extra:
        parts.append("unexpected rows: " + "; ".join(_clip(repr(r), 120) for r in extra))
    if not missing and not extra and g != p:
        parts.append("same rows in a different order")
    return _clip(". ".join(parts), limit)
