"""Comparison modes on crafted result pairs."""

from __future__ import annotations

import pytest

from codelutra_data.sandboxes.compare import describe_difference, order_matters, prepare_query, results_equal


def eq(gold, pred, mode="spider", gold_sql="SELECT a FROM t"):
    return results_equal(gold, pred, mode, order_matters(gold_sql, mode))


def test_duplicates_count_in_spider_and_ordered_but_not_in_set():
    gold, pred = [(1,), (1,), (2,)], [(1,), (2,), (2,)]
    assert not eq(gold, pred, "spider")
    assert not eq(gold, pred, "ordered")
    assert eq(gold, pred, "set")


def test_row_order_matters_only_when_gold_orders():
    gold, pred = [(1,), (2,)], [(2,), (1,)]
    assert eq(gold, pred, "spider", "SELECT a FROM t")
    assert not eq(gold, pred, "spider", "SELECT a FROM t ORDER BY a")
    assert not eq(gold, pred, "spider", "select a from t order by a desc")
    # the official evaluator's rule is a plain substring test on the lowercased gold query
    assert not eq(gold, pred, "spider", "SELECT a FROM t WHERE b = 'order by'")
    assert eq(gold, pred, "set") and not eq(gold, pred, "ordered")


def test_numerically_equal_values_are_equal():
    assert eq([(1, 2.0)], [(1.0, 2)], "spider")
    assert eq([(1, 2.0)], [(1.0, 2)], "set")
    assert eq([(1, 2.0)], [(1.0, 2)], "ordered")
    assert not eq([(1.5,)], [(1,)], "spider")
    assert not eq([("1",)], [(1,)], "spider")  # text is not a number, as in the official evaluator


def test_nulls():
    assert eq([(None, 1)], [(None, 1)])
    assert not eq([(None,)], [(0,)])
    assert eq([(None,), (1,)], [(1,), (None,)])


def test_column_permutation_in_spider_mode_only():
    gold, pred = [(1, "a"), (2, "b")], [("a", 1), ("b", 2)]
    assert eq(gold, pred, "spider")
    assert not eq(gold, pred, "set")
    assert not eq(gold, pred, "ordered")
    # a permutation must be consistent across rows, not per row
    assert not eq([(1, 2), (3, 4)], [(2, 1), (3, 4)], "spider")


def test_shapes_and_empties():
    assert eq([], [], "spider")
    assert not eq([(1,)], [], "spider")
    assert not eq([(1, 2)], [(1,)], "spider")
    assert not eq([(1,), (1,)], [(1,)], "spider")


def test_permutation_search_handles_equal_columns():
    gold = [(1, 1, 2), (1, 1, 3)]
    pred = [(2, 1, 1), (3, 1, 1)]
    assert eq(gold, pred, "spider")


def test_prepare_query_spider_rules():
    assert prepare_query("SELECT DISTINCT a FROM t WHERE b > = 1 AND c ! = 2", "spider") == \
        "SELECT  a FROM t WHERE b >= 1 AND c != 2"
    assert prepare_query("SELECT count(DISTINCT a) FROM t WHERE n = 'distinct'", "spider") == \
        "SELECT count( a) FROM t WHERE n = 'distinct'"
    assert prepare_query("SELECT DISTINCT a FROM t", "set") == "SELECT DISTINCT a FROM t"


def test_unknown_mode():
    with pytest.raises(ValueError):
        results_equal([], [], "fuzzy", False)


def test_feedback_is_bounded_and_informative():
    text = describe_difference([(1, "x" * 500)] * 3, [(2, "y")], limit=200)
    assert len(text) <= 200
    assert text.startswith("wrong result: expected 3 rows x 2 columns, got 1 rows x 2 columns")
    assert "same rows in a different order" in describe_difference([(1,), (2,)], [(2,), (1,)])
    assert describe_difference([(7,)], []).startswith("wrong result: expected 1 rows x 1 columns, got no rows")


def test_strict_mode_keeps_distinct_counts_duplicates_and_orders_only_when_gold_orders():
    assert prepare_query("SELECT count(DISTINCT city) FROM c", "strict") == "SELECT count(DISTINCT city) FROM c"
    assert not eq([(1,), (1,), (2,)], [(1,), (2,), (2,)], "strict")  # a multiset, not a set
    assert eq([(1,), (2,)], [(2,), (1,)], "strict", "SELECT a FROM t")
    assert not eq([(1,), (2,)], [(2,), (1,)], "strict", "SELECT a FROM t ORDER BY a")
    assert not eq([(1, 2)], [(2, 1)], "strict")  # columns as the question asks for them, not permuted
    assert eq([(1, 2.0)], [(1.0, 2)], "strict")


def test_each_source_is_graded_by_its_own_rule_and_user_data_strictly(tmp_path):
    """`--compare-mode auto` (the default): Spider keeps the official match, BIRD folders BIRD's set rule, a user's
    own database the strict one, where `count(DISTINCT city)` does not answer "how many customers?"."""
    import json

    from codelutra_data.builders.tasks import load_tasks
    from codelutra_data.sandboxes.settings import SandboxSettings, compare_mode_for, open_sandbox, job_for
    from codelutra_data import duckdb_files

    db = tmp_path / "shop.duckdb"
    con = duckdb_files.connect(str(db), read_only=False)
    con.execute("CREATE TABLE customers (id INTEGER, city TEXT)")
    con.execute("INSERT INTO customers VALUES (1, 'Oslo'), (2, 'Oslo'), (3, 'Rome')")
    con.close()
    (tmp_path / "t.jsonl").write_text(json.dumps({"question": "How many customers?", "db": "shop.duckdb",
                                                  "gold": "SELECT count(*) FROM customers", "split": "test"}) + "\n")
    mine = load_tasks(str(tmp_path / "t.jsonl"))[0]
    spider = load_tasks("spider-dev")[0]
    assert (compare_mode_for(mine, "auto"), compare_mode_for(spider, "auto")) == ("strict", "spider")
    assert compare_mode_for(mine, "set") == "set"
    wrong = "SELECT count(DISTINCT city) FROM customers"
    verdicts = {}
    for mode in ("auto", "spider"):
        settings = SandboxSettings(compare_mode=mode)
        with open_sandbox("sql", settings) as sandbox:
            (_, execution), = list(sandbox.run_iter([job_for(mine, "k", wrong, settings)]))
        verdicts[mode] = (execution.status, execution.compare_mode)
    assert verdicts == {"auto": ("wrong_answer", "strict"), "spider": ("passed", "spider")}
