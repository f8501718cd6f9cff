"""Pair building rules and the release format (written, loaded back with `datasets`, card YAML parsed)."""

from __future__ import annotations

import dataclasses

import pytest
import yaml

from codelutra_data.builders.build import BuildConfig
from codelutra_data.builders.pairs import PairOptions, make_pairs
from codelutra_data.builders.release import sample_row, write_release
from codelutra_data.builders.tasks import load_tasks
from codelutra_data.errors import UserError
from codelutra_data.models.spec import resolve
from codelutra_data.records import Execution, Sample


def fake_results(task, outcomes):
    out = []
    for i, (code, status) in enumerate(outcomes):
        s = Sample(sample_id=f"{task.task_id}-{i}", task_id=task.task_id, model="m", model_revision="r",
                   backend="transformers", sampling={"temperature": 0.8}, seed=0, sample_index=i, prompt_hash="h",
                   template="sql-v1", raw_output=f"```sql\n{code}\n```", code=code, extractor="x")
        e = Execution(sample_id=s.sample_id, status=status, tests_passed=int(status == "passed"), tests_total=1,
                      feedback="", error_lines=[], duration_s=0.01, sandbox="sqlite", limits={"cpu_time_s": 5.0, "wall_time_s": 30.0},
                      compare_mode="spider")
        out.append((s, e))
    return out


@pytest.fixture(scope="module")
def task():
    return load_tasks("spider-dev", "train", limit=1)[0]


def test_pairs_are_deduplicated_deterministic_and_bounded(task):
    results = fake_results(task, [("SELECT count(*) FROM pets", "passed"), ("select COUNT(*)  from pets;", "passed"),
                                  ("SELECT 1", "wrong_answer"), ("SELECT 2", "runtime_error"),
                                  ("SELECT 1", "wrong_answer")])
    pairs, reason = make_pairs(task, results, PairOptions(pairs_per_task=5, seed=3), "b", "m")
    assert reason is None
    assert len(pairs) == 2  # one unique correct x two unique incorrect
    again, _ = make_pairs(task, results, PairOptions(pairs_per_task=5, seed=3), "b", "m")
    assert [p.pair_id for p in pairs] == [p.pair_id for p in again]
    one, _ = make_pairs(task, results, PairOptions(pairs_per_task=1, seed=3), "b", "m")
    assert len(one) == 1
    p = pairs[0]
    assert p.chosen_origin == "sample" and p.chosen_status == "passed" and p.rejected_status != "passed"
    assert p.prompt == task.prompt and p.chosen[0]["role"] == "assistant"


def test_pair_reasons_and_reference_fallback(task):
    all_bad = fake_results(task, [("SELECT 1", "wrong_answer"), ("SELECT 2", "syntax_error")])
    assert make_pairs(task, all_bad, PairOptions(), "b", "m") == ([], "no_correct")
    pairs, reason = make_pairs(task, all_bad, PairOptions(reference_fallback=True), "b", "m")
    assert reason is None and pairs[0].chosen_origin == "reference" and task.reference in pairs[0].chosen[0]["content"]
    assert make_pairs(task, fake_results(task, [("SELECT 1", "passed")]), PairOptions(), "b", "m") == ([], "all_correct")
    timeouts = fake_results(task, [("SELECT 1", "passed"), ("SELECT 2", "timeout")])
    assert make_pairs(task, timeouts, PairOptions(), "b", "m") == ([], "no_usable_rejected")
    assert len(make_pairs(task, timeouts, PairOptions(include_timeouts=True), "b", "m")[0]) == 1
    assert make_pairs(task, [], PairOptions(), "b", "m") == ([], "no_samples")


def test_release_loads_with_datasets_and_card_parses(tmp_path, task):
    import datasets

    results = fake_results(task, [("SELECT count(*) FROM pets", "passed"), ("SELECT 1", "wrong_answer")])
    pairs, _ = make_pairs(task, results, PairOptions(), "b", "m")
    rows = [sample_row(task, s, e) for s, e in results]
    cfg = BuildConfig()
    stats = {"tasks": 1, "samples": 2, "pairs": len(pairs), "pass_rate": 0.5,
             "status_histogram": {"passed": 1, "wrong_answer": 1}, "tasks_without_pairs": {"no_correct": 0},
             "chosen_origin": {"sample": 1}, "cpu": "x86_64", "threads": 2, "timing": {}, "sandbox": "sql-sqlite",
             "reference_pass_rate": 1.0, "tasks_dropped_failing_reference": []}
    ref = resolve("smollm2-135m", prepare=False)
    out = tmp_path / "releases" / "demo" / "0.1.0"
    kwargs = dict(name="demo", version="0.1.0", build_id="b", config=cfg, model=ref,
                  tables={"pairs": [p.to_dict() for p in pairs], "samples": rows}, stats=stats,
                  limits={"cpu_time_s": 5.0, "wall_time_s": 30.0})
    write_release(out, **kwargs)
    text = (out / "README.md").read_text()
    header = yaml.safe_load(text.split("---")[1])
    assert header["license"] == "cc-by-sa-4.0" and header["pretty_name"]
    assert {c["config_name"] for c in header["configs"]} == {"pairs", "samples"}
    for key in ("task_categories", "tags", "size_categories", "source_datasets"):
        assert header[key]
    for needle in ("Contamination", "CC BY-SA 4.0", "cpu_time_s", "wall_time_s", "2 generation thread(s)", "wrong_answer", "temperature"):
        assert needle in text
    loaded = datasets.load_dataset(str(out))
    assert loaded["train"].num_rows == 1 and loaded["train"][0]["chosen_origin"] == "sample"
    samples = datasets.load_dataset(str(out), "samples")
    assert samples["train"].num_rows == 2
    config = yaml.safe_load((out / "build_config.yaml").read_text())
    assert config["config"]["samples"] == cfg.samples and config["model"]["model_id"]
    with pytest.raises(UserError, match="never overwritten"):
        write_release(out, **kwargs)
    assert not list(out.parent.glob(".*partial*"))


def test_release_without_pairs_keeps_its_shape(tmp_path, task):
    """No pairs made: the pairs config is still written (empty, with its schema) and still the default, so
    loading the release never silently gives another table."""
    import datasets
    import pyarrow.parquet as pq

    from codelutra_data.builders.release import pairs_schema, read_release

    results = fake_results(task, [("SELECT 1", "wrong_answer")])
    out = tmp_path / "r" / "0.1.0"
    write_release(out, name="r", version="0.1.0", build_id="c", config=BuildConfig(),
                  model=resolve("smollm2-135m", prepare=False),
                  tables={"pairs": [], "samples": [sample_row(task, s, e) for s, e in results]},
                  stats={"tasks": 1, "samples": 1, "pairs": 0, "pass_rate": 0.0, "status_histogram": {},
                         "tasks_without_pairs": {"no_correct": 1}, "chosen_origin": {}, "cpu": "x", "timing": {},
                         "sandbox": "sql-sqlite", "reference_pass_rate": 1.0, "tasks_dropped_failing_reference": []},
                  limits={})
    (pairs_file,) = (out / "pairs").glob("*.parquet")
    assert pairs_file.name == "train-c.parquet" and pq.read_table(pairs_file).schema.equals(pairs_schema())
    assert pq.read_table(pairs_file).num_rows == 0
    text = (out / "README.md").read_text()
    configs = yaml.safe_load(text.split("---")[1])["configs"]
    assert [(c["config_name"], c.get("default")) for c in configs] == [("pairs", True), ("samples", None)]
    assert "This build made no pairs" in text and "| pairs | train | 0 |" in text
    assert read_release(out).rows == {"pairs/train": 0, "samples/train": 1}
    try:
        loaded = datasets.load_dataset(str(out), split="train")
    except ValueError as exc:  # datasets 5.x refuses a split without rows: loudly, not with another table
        assert "corresponds to no data" in str(exc)
    else:
        assert loaded.num_rows == 0 and loaded.column_names == pairs_schema().names
    assert datasets.load_dataset(str(out), "samples")["train"].num_rows == 1


def test_build_config_validation():
    for bad in (dict(version="1.0"), dict(samples=0), dict(compare_mode="fuzzy"), dict(name="a/b"), dict(top_p=2.0),
                dict(mode="debug"), dict(rejected="middle"), dict(max_rounds=-1), dict(trajectories_per_task=0)):
        with pytest.raises(UserError):
            dataclasses.replace(BuildConfig(), **bad).validate()
