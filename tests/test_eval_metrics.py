"""Benchmark metrics against brute force and known distributions; suite identity; interop files."""

from __future__ import annotations

import itertools
import json
import math

import pytest

from codelutra_data.benchmarks import interop
from codelutra_data.benchmarks.metrics import bootstrap_interval, pass_at_k, per_task_pass_at_k, status_histogram
from codelutra_data.benchmarks.suites import load_suite
from codelutra_data.errors import UserError


@pytest.mark.parametrize("n", range(1, 8))
def test_pass_at_k_equals_brute_force_enumeration(n):
    for c in range(n + 1):
        items = [True] * c + [False] * (n - c)
        for k in range(1, n + 1):
            subsets = list(itertools.combinations(range(n), k))
            expected = sum(any(items[i] for i in s) for s in subsets) / len(subsets)
            assert math.isclose(pass_at_k(n, c, k), expected, abs_tol=1e-12), (n, c, k)


def test_pass_at_k_is_only_defined_for_k_up_to_n():
    assert pass_at_k(200, 3, 100) > 0.85 and pass_at_k(1000, 0, 500) == 0.0  # large n: no overflow
    with pytest.raises(ValueError, match="at least 5 samples"):
        pass_at_k(3, 1, 5)
    with pytest.raises(ValueError, match="2 task"):
        per_task_pass_at_k([(10, 1), (4, 0), (4, 4)], 5)


def test_bootstrap_interval_covers_a_known_bernoulli_mean():
    import numpy as np

    p, n = 0.3, 400
    covered = 0
    for trial in range(40):
        values = (np.random.default_rng(1000 + trial).random(n) < p).astype(float)
        low, high = bootstrap_interval(values, resamples=1000, seed=trial)
        width = 2 * 1.96 * math.sqrt(p * (1 - p) / n)
        assert abs((high - low) - width) < 0.25 * width  # the normal-theory width, within 25%
        covered += low <= p <= high
    assert covered >= 34  # ~95% of 40 intervals; 34 leaves room for chance (P[X<34] < 3%)
    assert bootstrap_interval([1.0] * 50) == (1.0, 1.0)
    assert bootstrap_interval([0.2, 0.4], seed=3) == bootstrap_interval([0.2, 0.4], seed=3)


def test_status_histogram_lists_every_status_in_order():
    hist = status_histogram(["passed", "timeout", "passed"])
    assert list(hist)[:2] == ["passed", "wrong_answer"] and hist["passed"] == 2 and hist["oom"] == 0
    with pytest.raises(ValueError, match="bogus"):
        status_histogram(["bogus"])


def test_suite_hash_names_the_tasks_and_databases_not_the_paths(tmp_path):
    test = load_suite("spider-dev")
    assert test.split == "test" and test.headline == "execution_accuracy" and len(test.tasks) == 352
    assert load_suite("spider-dev").hash == test.hash
    assert load_suite("spider-dev", limit=10).hash != test.hash
    assert load_suite("spider-dev", compare_mode="set").hash != test.hash
    humaneval = load_suite("humaneval")
    assert humaneval.split == "test" and humaneval.metric_name(10) == "pass@10" and len(humaneval.tasks) == 164
    assert len(load_suite("mbpp").tasks) == 257
    assert len(load_suite("spider-dev", "validation").tasks) == 158
    with pytest.raises(UserError, match="no tasks in split 'validation'"):
        load_suite("humaneval", "validation")


def test_evalplus_samples_read_solutions_and_completions(tmp_path):
    tasks = load_suite("humaneval", limit=3).tasks
    path = tmp_path / "s.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in [
        {"task_id": "HumanEval/0", "completion": "    return True\n"},
        {"task_id": "HumanEval/0", "solution": "def has_close_elements(a, b):\n    return 1\n"},
        {"task_id": "HumanEval/1", "solution": "x"}, {"task_id": "HumanEval/2", "solution": "y"}]))
    got = interop.read_evalplus(path, tasks)
    assert got["HumanEval/0"][0] == tasks[0].metadata["code_prompt"] + "    return True\n"
    assert len(got["HumanEval/0"]) == 2 and got["HumanEval/2"] == ["y"]
    path.write_text(json.dumps({"task_id": "HumanEval/99", "solution": "x"}) + "\n")
    with pytest.raises(UserError, match="unknown task id 'HumanEval/99'"):
        interop.read_evalplus(path, tasks)
    path.write_text(json.dumps({"task_id": "HumanEval/0", "solution": "x"}) + "\n")
    with pytest.raises(UserError, match="no samples for 2 of 3"):
        interop.read_evalplus(path, tasks)


def test_spider_and_bird_prediction_files_round_trip_and_check_their_shape(tmp_path):
    tasks = load_suite("spider-dev", limit=4).tasks
    codes = {t.task_id: [t.reference.replace(" ", "\n", 1)] for t in tasks}
    for name, reader in (("pred.txt", interop.read_spider_predictions), ("pred.json", interop.read_bird_predictions)):
        path = interop.write_predictions(tmp_path / name, tasks, codes)
        back = reader(path, tasks)
        assert back == {t.task_id: [" ".join(t.reference.split(" "))] for t in tasks}
    (tmp_path / "short.txt").write_text("SELECT 1\nSELECT 2\n")
    with pytest.raises(UserError, match="has 2 lines but the suite has 4 tasks"):
        interop.read_predictions(tmp_path / "short.txt", tasks)
    (tmp_path / "wrongdb.txt").write_text("".join(f"SELECT 1\tnot_{t.context['db_id']}\n" for t in tasks))
    with pytest.raises(UserError, match="are the lines in the suite's order"):
        interop.read_predictions(tmp_path / "wrongdb.txt", tasks)
    (tmp_path / "bird.json").write_text(json.dumps({"0": "SELECT 1", "1": "SELECT 1", "2": "SELECT 1", "7": "x"}))
    with pytest.raises(UserError, match="unexpected key '7'"):
        interop.read_predictions(tmp_path / "bird.json", tasks)
    with pytest.raises(UserError, match="unknown predictions format"):
        interop.read_predictions(tmp_path / "p.csv", tasks)
