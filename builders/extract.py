"""Pull the code to run out of a model's raw answer. Versioned: the version goes into every Sample.

Each extractor is defined by where the code lies in the raw text (`locate_*` gives the character span), so
error spans computed on the code can be placed on the raw answer exactly as it is stored.
"""

from __future__ import annotations

import ast
import re

SQL_EXTRACTOR = "sql-extract-v1"
_FENCE = re.compile(r"```[ \t]*([A-Za-z0-9_+-]*)[^\n]*\n(.*?)(?:```|\Z)", re.S)
_BARE_SQL = re.compile(r"\b(WITH|SELECT)\b.*", re.S | re.I)
Span = tuple[int, int]


def _strip_span(text: str, start: int, end: int, chars: str | None = None) -> Span:
    """The span of text[start:end].strip(chars), in text's coordinates."""
    body = text[start:end]
    left = len(body) - len(body.lstrip(chars))
    if left == len(body):
        return start, start
    right = len(body) - len(body.rstrip(chars))
    return start + left, end - right


def locate_sql(raw: str) -> Span | None:
    """Where `extract_sql` finds its query: the first ```sql block (else the first fenced block, else bare
    text from WITH/SELECT on), cut at the first statement end and stripped."""
    blocks = list(_FENCE.finditer(raw))
    match = next((m for m in blocks if m.group(1).lower() in ("sql", "sqlite", "duckdb", "postgresql", "mysql")),
                 blocks[0] if blocks else None)
    if match is not None:
        start, end = match.span(2)
    else:
        bare = _BARE_SQL.search(raw)
        if bare is None:
            return None
        start, end = bare.span(0)
    end = start + len(_first_statement(raw[start:end]))
    start, end = _strip_span(raw, start, end)
    return (start, end) if end > start else None


def extract_sql(raw: str) -> str | None:
    """The query to run, or None when nothing looks like a query."""
    span = locate_sql(raw)
    return raw[span[0]:span[1]] if span else None


def _first_statement(code: str) -> str:
    """Text up to the first `;` outside quotes (models often append chatter or a second query)."""
    quote = None
    for i, ch in enumerate(code):
        if quote:
            if ch == quote:
                quote = None
        elif ch in ("'", '"', "`"):
            quote = ch
        elif ch == ";":
            return code[:i]
    return code


PY_EXTRACTOR = "py-extract-v1"
_PY_LANGS = ("python", "py", "python3")


def locate_python(raw: str) -> Span | None:
    """Where `extract_python` finds its program: the first ```python block (else the first fenced block,
    else the whole answer when it parses as Python), without surrounding newlines. An unterminated block is
    taken to the end: generation stops at the closing fence."""
    blocks = list(_FENCE.finditer(raw))
    match = next((m for m in blocks if m.group(1).lower() in _PY_LANGS), blocks[0] if blocks else None)
    if match is not None:
        start, end = _strip_span(raw, *match.span(2), "\n")
        return (start, end) if end > start else None
    start, end = _strip_span(raw, 0, len(raw), "\n")
    text = raw[start:end]
    if not text.strip():
        return None
    try:
        ast.parse(text)
    except (SyntaxError, ValueError):
        return None
    return start, end


def extract_python(raw: str) -> str | None:
    """The program to run, or None when the answer holds no code."""
    span = locate_python(raw)
    return raw[span[0]:span[1]] if span else None


EXTRACTORS = {"sql": (SQL_EXTRACTOR, extract_sql), "python": (PY_EXTRACTOR, extract_python)}
LOCATORS = {"sql": locate_sql, "python": locate_python}
