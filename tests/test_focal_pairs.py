"""Focal pairs from trajectories: error regions placed on the stored text, each filter, the rejected rule."""

from __future__ import annotations

import pytest

from codelutra_data.builders.code_equivalence import canonical, cosmetic_equal, same_structure
from codelutra_data.builders.extract import extract_python, extract_sql, locate_python, locate_sql
from codelutra_data.builders.focal_pairs import (FILTERS, FocalOptions, error_region, filter_reason, focal_pair,
                                                 focal_pairs)
from codelutra_data.builders.tasks import load_tasks
from codelutra_data.records import Trajectory


def fence(code: str, lang: str = "python") -> str:
    return f"```{lang}\n{code}\n```"


def marked(raw: str, region) -> list[str]:
    return [raw[s:e] for s, e in region.spans]


# ------------------------------------------------------------------------------------------ LCS spans
def test_changed_line():
    chosen = fence("def f(x):\n    y = x + 1\n    return y")
    rejected = fence("def f(x):\n    y = x - 1\n    return y")
    assert marked(rejected, error_region(rejected, chosen, "python")) == ["    y = x - 1"]


def test_inserted_line_in_the_fix_marks_nothing():
    # the fix adds a line; the failing program has no line outside the LCS (the pair is then filtered)
    chosen = fence("import math\ndef f(x):\n    return math.sqrt(x)")
    rejected = fence("def f(x):\n    return math.sqrt(x)")
    region = error_region(rejected, chosen, "python")
    assert region.spans == [] and region.lines == []


def test_deleted_line_is_marked():
    chosen = fence("def f(xs):\n    return sorted(xs)")
    rejected = fence("def f(xs):\n    xs.reverse()\n    return sorted(xs)")
    assert marked(rejected, error_region(rejected, chosen, "python")) == ["    xs.reverse()"]


def test_moved_block_marks_one_side_of_the_move():
    chosen = fence("a = 1\nb = 2\nc = 3\nprint(a, b, c)")
    rejected = fence("c = 3\na = 1\nb = 2\nprint(a, b, c)")
    region = error_region(rejected, chosen, "python")
    assert marked(rejected, region) == ["c = 3"]


def test_crlf_spans_exclude_the_line_ending():
    chosen = "```python\r\ndef f():\r\n    return 1\r\n```"
    rejected = "```python\r\ndef f():\r\n    return 2\r\n```"
    region = error_region(rejected, chosen, "python")
    assert marked(rejected, region) == ["    return 2"]


def test_tabs_versus_spaces_is_a_difference():
    chosen = fence("def f():\n    return 1")
    rejected = fence("def f():\n\treturn 1")
    assert marked(rejected, error_region(rejected, chosen, "python")) == ["\treturn 1"]


def test_unicode_offsets_are_characters():
    chosen = fence("def f():\n    return 'héllo wörld ✓'")
    rejected = fence("def f():\n    return 'hello wörld ✗'")
    region = error_region(rejected, chosen, "python")
    assert marked(rejected, region) == ["    return 'hello wörld ✗'"]


def test_identical_programs_give_no_spans_and_no_pair():
    raw = fence("def f():\n    return 1")
    region = error_region(raw, raw, "python")
    assert region.spans == []
    assert filter_reason(raw, raw, "def f():\n    return 1", "def f():\n    return 1", region, "python",
                         FocalOptions()) == "no_error_lines"


def test_text_around_the_fence_is_never_marked_but_spans_index_the_stored_text():
    chosen = "Sure, here it is:\n```sql\nSELECT name\nFROM singer\nWHERE age > 30\n```\nThis works."
    rejected = ("I think this is right.\n```sql\nSELECT name\nFROM singers\nWHERE age > 30\n```\n"
                "Explanation: singers holds the rows.")
    region = error_region(rejected, chosen, "sql")
    assert marked(rejected, region) == ["FROM singers"]
    start = rejected.index("FROM singers")
    assert region.spans == [[start, start + len("FROM singers")]]


def test_locators_agree_with_extractors():
    for raw in ("```python\n\ndef f():\n    pass\n\n```\ntext", "no code", "x = 1\n", "```py\n```",
                "pre ```sql\nSELECT 1; SELECT 2\n```", "SELECT a FROM t;\nmore", "```\n  select 1  \n"):
        for locate, extract in ((locate_python, extract_python), (locate_sql, extract_sql)):
            span = locate(raw)
            assert (raw[span[0]:span[1]] if span else None) == extract(raw), raw


# ------------------------------------------------------------------------------------------ filters
def check(chosen_code, rejected_code, domain="python", options=FocalOptions(), count_tokens=None):
    lang = "python" if domain == "python" else "sql"
    chosen, rejected = fence(chosen_code, lang), fence(rejected_code, lang)
    region = error_region(rejected, chosen, domain)
    return filter_reason(chosen, rejected, chosen_code, rejected_code, region, domain, options, count_tokens)


def test_filter_comment_only_error_lines():
    assert check("def f(x):\n    # add one\n    return x + 1", "def f(x):\n    # increment\n    return x + 1") \
        == "comments_or_blank_only"
    assert check("SELECT 1 -- one", "-- first\nSELECT 1 -- one", "sql") == "comments_or_blank_only"
    assert check("def f(x):\n    return x + 1", "def f(x):\n    # add\n    return x - 1") is None


def test_filter_too_many_error_lines():
    chosen = "def f(x):\n    return x"
    many = "def f(x):\n" + "".join(f"    x = x + {i}\n" for i in range(21)) + "    return x"
    assert check(chosen, many) == "too_many_error_lines"
    assert check(chosen, many, options=FocalOptions(max_error_lines=30)) is None
    few = "def f(x):\n" + "".join(f"    x = x + {i}\n" for i in range(20)) + "    return x"
    assert check(chosen, few) is None


def test_filter_too_long_in_the_models_tokens():
    from transformers import AutoTokenizer

    from codelutra_data.models.spec import resolve

    tokenizer = AutoTokenizer.from_pretrained(resolve("smollm2-135m").path)
    count = lambda text: len(tokenizer(text, add_special_tokens=False)["input_ids"])  # noqa: E731
    chosen = "def f(x):\n    return x"
    long_rejected = "def f(x):\n    data = " + repr(list(range(1200))) + "\n    return x + 1"
    assert count(fence(long_rejected)) > 2048
    assert check(chosen, long_rejected, count_tokens=count) == "too_long"
    assert check(chosen, "def f(x):\n    return x + 1", count_tokens=count) is None


def test_filter_same_ast_and_same_statement():
    assert check("def f(x):\n    return (x+1)", "def f( x ):\n    return x + 1  # same") == "same_structure"
    assert check("def f(x):\n    return x + 1", "def f(x):\n    return x + 2") is None
    assert check("SELECT name FROM singer WHERE age > 3", "select NAME\nfrom SINGER where AGE>3", "sql") \
        == "same_structure"
    assert check("SELECT name FROM singer WHERE age > 3", "SELECT name FROM singer WHERE age >= 3", "sql") is None


def test_filter_cosmetic_only():
    chosen = 'def f(items):\n    """Sum."""\n    total = 0\n    for item in items:\n        total += item\n    return total'
    renamed = "def f(xs):\n    acc = 0\n    for x in xs:\n        acc += x\n    return acc"
    assert check(chosen, renamed) == "cosmetic_only"
    assert check(chosen, renamed.replace("acc += x", "acc -= x")) is None
    # renaming a free name (a builtin) is not cosmetic, nor is renaming the function a test calls
    assert not cosmetic_equal("def f(x):\n    return len(x)", "def f(y):\n    return sum(y)", "python")
    assert not cosmetic_equal("def f(x):\n    return x", "def g(x):\n    return x", "python")
    assert check("SELECT T1.name FROM singer AS T1", "SELECT s.name AS n FROM singer AS s", "sql") == "cosmetic_only"
    assert check("SELECT T1.name FROM singer AS T1", "SELECT s.age FROM singer AS s", "sql") is None


def test_canonical_resubmission_keys():
    assert canonical("def f():\n    return 1  # x\n", "python") == canonical("def f():\n  return 1", "python")
    assert canonical("SELECT  name\nFROM t;", "sql") == canonical("select name from T", "sql")
    assert canonical("SELECT 'Paris'", "sql") != canonical("SELECT 'paris'", "sql")
    assert same_structure("SELECT 1", "not sql at all (", "sql") is False


# ------------------------------------------------------------------------------------------ pairs
@pytest.fixture(scope="module")
def task():
    return load_tasks("mbpp", "train", limit=1)[0]


def attempt(round_, code, status, passed=0):
    return {"round": round_, "sample_id": f"s{round_}", "model": "m", "raw_output": fence(code), "code": code,
            "status": status, "tests_passed": passed, "tests_total": 3, "feedback": "" if status == "passed" else "fb",
            "resubmission_of": -1}


def trajectory(task, rounds, index=0):
    solved = next((r["round"] for r in rounds if r["status"] == "passed"), -1)
    return Trajectory(trajectory_id=f"t{index}", task_id=task.task_id, trajectory_index=index, source=task.source,
                      domain="python", split=task.split, model="m", reviser="m", rounds=rounds, solved=solved >= 0,
                      solved_round=solved, stop_reason="passed" if solved >= 0 else "max_rounds", resubmissions=0,
                      feedback_version="v", build_id="b")


def test_rejected_rules_and_pair_columns(task):
    rounds = [attempt(0, "def f(x):\n    return x - 1", "wrong_answer", 1),
              attempt(1, "def f(x):\n    return x * 1", "runtime_error"),
              attempt(2, "def f(x):\n    return x / 1", "wrong_answer", 2),
              attempt(3, "def f(x):\n    return x + 1", "passed", 3)]
    t = trajectory(task, rounds)
    first, _ = focal_pair(task, t, FocalOptions(rejected="first"), "b", "m")
    last, _ = focal_pair(task, t, FocalOptions(rejected="last"), "b", "m")
    assert first.rejected_sample_id == "s0" and last.rejected_sample_id == "s2"
    picks = {focal_pair(task, trajectory(task, rounds, i), FocalOptions(seed=0), "b", "m")[0].rejected_sample_id
             for i in range(12)}
    assert len(picks) > 1 and picks <= {"s0", "s1", "s2"}  # random, seeded per trajectory
    again = focal_pair(task, t, FocalOptions(seed=0), "b", "m")[0]
    assert again == focal_pair(task, t, FocalOptions(seed=0), "b", "m")[0]
    assert first.prompt == task.prompt and first.chosen[0]["content"] == rounds[3]["raw_output"]
    assert first.chosen_status == "passed" and first.rejected_status == "wrong_answer"
    assert first.rejected_pass_rate == pytest.approx(1 / 3)
    spans = first.rejected_error_spans
    assert [first.rejected[0]["content"][s:e] for s, e in spans] == ["    return x - 1"]


def test_reasons_without_a_pair(task):
    unsolved = trajectory(task, [attempt(0, "def f(x):\n    return 0", "wrong_answer")])
    first_try = trajectory(task, [attempt(0, "def f(x):\n    return x + 1", "passed", 3)])
    timeout_only = trajectory(task, [attempt(0, "def f(x):\n    while True: pass", "timeout"),
                                     attempt(1, "def f(x):\n    return x + 1", "passed", 3)])
    assert focal_pair(task, unsolved, FocalOptions(), "b", "m") == (None, "unsolved")
    assert focal_pair(task, first_try, FocalOptions(), "b", "m") == (None, "solved_first_try")
    assert focal_pair(task, timeout_only, FocalOptions(), "b", "m") == (None, "no_usable_rejected")
    assert focal_pair(task, timeout_only, FocalOptions(include_timeouts=True), "b", "m")[0] is not None
    same = [attempt(0, "def f(x):\n    return x - 1", "wrong_answer"), attempt(1, "def f(x):\n    return x + 1", "passed")]
    pairs, reasons = focal_pairs({task.task_id: task}, [trajectory(task, same, 0), trajectory(task, same, 1),
                                                        unsolved, first_try], FocalOptions(), "b", "m")
    assert len(pairs) == 1 and reasons["duplicate"] == 1 and reasons["unsolved"] == 1
    assert reasons["solved_first_try"] == 1 and set(FILTERS) <= set(reasons)
