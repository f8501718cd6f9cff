"""Error regions of a failing program relative to its fix: IterPref's longest-common-subsequence over lines.

The rejected program's lines that are not in the LCS with the chosen program are the error set D⁻. They
are stored as character spans over the rejected completion's text (masks are data, never token ids), so
any tokenizer can turn them into a token mask at training time.
"""

from __future__ import annotations


def _key(line: str) -> str:
    # Trailing whitespace and the newline do not change a line's meaning; indentation does (Python).
    return line.rstrip()


def lcs_line_indices(a: list[str], b: list[str]) -> set[int]:
    """Indices of `a` on one longest common subsequence of `a` and `b` (lines compared without trailing space)."""
    ka, kb = [_key(x) for x in a], [_key(x) for x in b]
    n, m = len(ka), len(kb)
    # Suffix table: best[i][j] = LCS length of ka[i:] and kb[j:].
    best = [[0] * (m + 1) for _ in range(n + 1)]
    for i in range(n - 1, -1, -1):
        row, below = best[i], best[i + 1]
        for j in range(m - 1, -1, -1):
            row[j] = below[j + 1] + 1 if ka[i] == kb[j] else max(below[j], row[j + 1])
    kept, i, j = set(), 0, 0
    while i < n and j < m:
        if ka[i] == kb[j]:
            kept.add(i)
            i, j = i + 1, j + 1
        elif best[i + 1][j] >= best[i][j + 1]:
            i += 1
        else:
            j += 1
    return kept


def error_lines(rejected: str, chosen: str) -> list[int]:
    """1-based numbers of the rejected text's non-blank lines outside the LCS with the chosen text."""
    r_lines, c_lines = rejected.splitlines(), chosen.splitlines()
    kept = lcs_line_indices(r_lines, c_lines)
    return [i + 1 for i, line in enumerate(r_lines) if i not in kept and line.strip()]


def line_spans(text: str, lines: list[int]) -> list[list[int]]:
    """Character spans [start, end) of the given 1-based lines, consecutive lines merged, newlines excluded."""
    wanted = set(lines)
    spans: list[list[int]] = []
    pos, prev = 0, None
    for number, line in enumerate(text.splitlines(keepends=True), start=1):
        body = line.rstrip("\r\n")
        if number in wanted:
            if prev == number - 1 and spans:
                spans[-1][1] = pos + len(body)
            else:
                spans.append([pos, pos + len(body)])
            prev = number
        pos += len(line)
    return spans


def error_spans(rejected: str, chosen: str) -> list[list[int]]:
    """Character spans of the rejected text's error lines (IterPref's D⁻), ready for `rejected_error_spans`."""
    return line_spans(rejected, error_lines(rejected, chosen))
