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
