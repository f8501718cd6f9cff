"""The LCS-over-lines error regions (IterPref's D⁻), and the hand-made focal pairs they are used on."""

from __future__ import annotations

from codelutra_data.builders.executors import LocalExecutor
from codelutra_data.sandboxes.settings import SandboxSettings
from codelutra_data.builders.extract import extract_python, extract_sql
from codelutra_data.builders.spans import error_lines, error_spans, lcs_line_indices, line_spans
from focal_pairs import focal_pairs, tasks_by_id


def test_lcs_keeps_common_lines_in_order():
    a = ["x = 1", "y = 2", "z = 3", "return z"]
    b = ["x = 1", "z = 3", "w = 0", "return z"]
    assert lcs_line_indices(a, b) == {0, 2, 3}
    assert lcs_line_indices(["a", "b"], ["b", "a"]) in ({0}, {1})  # one of two equally long answers
    assert lcs_line_indices([], ["a"]) == set()


def test_error_lines_are_the_rejected_lines_outside_the_lcs():
    chosen = "def f(xs):\n    total = 0\n    for x in xs:\n        total += x\n    return total\n"
    rejected = "def f(xs):\n    total = 1\n    for x in xs:\n        total += x\n\n    return total  \n"
    # the changed line only; a blank line and trailing spaces are not errors
    assert error_lines(rejected, chosen) == [2]
    spans = error_spans(rejected, chosen)
    assert [rejected[s:e] for s, e in spans] == ["    total = 1"]


def test_indentation_is_significant_and_consecutive_lines_merge():
    chosen = "if a:\n    b()\n    c()\nd()"
    rejected = "if a:\n    b()\nc()\nd()\ne()"
    assert error_lines(rejected, chosen) == [3, 5]
    assert line_spans(rejected, [3, 4]) == [[14, 21]]
    assert [rejected[s:e] for s, e in line_spans(rejected, [3, 4])] == ["c()\nd()"]
    assert error_spans(chosen, chosen) == []
    assert error_spans("only\nnew\n", "") == [[0, 8]]


def test_focal_pairs_are_real():
    """Every hand-made pair: the fixed program passes and the failing one fails, in the real sandboxes."""
    tasks = tasks_by_id()
    pairs = focal_pairs()
    assert {p.domain for p in pairs} == {"sql", "python"}
    with LocalExecutor(SandboxSettings(workers=1)) as executor:
        for domain, extract in (("python", extract_python), ("sql", extract_sql)):
            chosen = [p for p in pairs if p.domain == domain]
            items = []
            for p in chosen:
                items.append((tasks[p.task_id], f"{p.pair_id}-c", extract(p.chosen[0]["content"])))
                items.append((tasks[p.task_id], f"{p.pair_id}-r", extract(p.rejected[0]["content"])))
            results = executor.run(items)
            for p, fixed, failing in zip(chosen, results[0::2], results[1::2]):
                assert fixed.status == "passed", (p.task_id, fixed.feedback)
                assert failing.status not in ("passed", "sandbox_error"), p.task_id
                assert p.rejected_error_spans, p.task_id
