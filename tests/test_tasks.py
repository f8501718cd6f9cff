"""Task sources: the bundled Spider dev set, Spider folders, JSONL files, and their errors."""

from __future__ import annotations

import json
import shutil
from collections import Counter

import pytest

from codelutra_data.builders.extract import extract_sql
from codelutra_data.builders.tasks import load_tasks
from codelutra_data.builders.tasks.sql_sources import split_by_database
from codelutra_data.errors import UserError
from codelutra_data.sandboxes.sql import SqlJob, SqlSandbox
from conftest import SHARED, SPIDER_DBS


def test_bundled_spider_dev_is_complete_and_split_by_database():
    tasks = load_tasks("spider-dev", "all")
    assert len(tasks) == 1034
    assert len({t.context["db_id"] for t in tasks}) == 20
    splits = Counter(t.split for t in tasks)
    assert splits == {"train": 524, "validation": 158, "test": 352}
    dbs = {s: {t.context["db_id"] for t in tasks if t.split == s} for s in splits}
    assert not dbs["train"] & dbs["test"] and not dbs["train"] & dbs["validation"]
    assert not dbs["validation"] & dbs["test"]
    # The test split is the one every earlier number was measured on: it must never move.
    assert dbs["test"] == {"concert_singer", "course_teach", "cre_Doc_Template_Mgt", "dog_kennels",
                           "real_estate_properties", "singer", "voter_1", "wta_1"}
    assert dbs["validation"] == {"flight_2", "employee_hire_evaluation", "orchestra"}
    assert [t.task_id for t in load_tasks("spider-dev", "all")] == [t.task_id for t in tasks]
    assert len(load_tasks("spider-dev", "train", limit=5)) == 5
    t = tasks[0]
    assert t.prompt[0]["role"] == "system" and "CREATE TABLE" in t.prompt[1]["content"]
    assert t.metadata["question"] in t.prompt[1]["content"]


def test_bundled_questions_match_the_shared_source():
    shared = json.loads((SHARED / "spider-dev" / "dev.json").read_text())
    tasks = load_tasks("spider-dev", "all")
    assert [(q["db_id"], q["query"]) for q in shared] == [(t.context["db_id"], t.reference) for t in tasks]


def test_every_gold_query_passes_against_itself():
    tasks = load_tasks("spider-dev", "all")
    jobs = [SqlJob(t.task_id, "sqlite", t.context["db_path"], t.reference, t.reference) for t in tasks]
    with SqlSandbox(workers=2) as sandbox:
        statuses = Counter(e.status for e in sandbox.run(jobs))
    assert statuses == {"passed": 1034}


def test_split_is_deterministic_and_disjoint():
    counts = {f"db{i}": 10 + i for i in range(12)}
    a, b = split_by_database(counts), split_by_database(dict(reversed(list(counts.items()))))
    assert a == b
    test_share = sum(n for db, n in counts.items() if a[db] == "test") / sum(counts.values())
    assert 0.3 <= test_share < 0.5
    validation_share = sum(n for db, n in counts.items() if a[db] == "validation") / sum(counts.values())
    assert 0.15 <= validation_share < 0.3 and "train" in a.values()
    no_validation = split_by_database(counts, validation_fraction=0)
    assert {db for db, s in no_validation.items() if s == "test"} == {db for db, s in a.items() if s == "test"}


def write_jsonl(path, rows):
    path.write_text("\n".join(r if isinstance(r, str) else json.dumps(r) for r in rows) + "\n")


def test_jsonl_source(tmp_path):
    shutil.copy(SPIDER_DBS / "singer.sqlite", tmp_path / "singer.sqlite")
    write_jsonl(tmp_path / "mine.jsonl", [
        {"question": "How many singers?", "db": "singer.sqlite", "gold": "SELECT count(*) FROM singer", "id": "q1"},
        {"question": "Names?", "db": str(tmp_path / "singer.sqlite"), "query": "SELECT name FROM singer", "split": "test"},
    ])
    tasks = load_tasks(str(tmp_path / "mine.jsonl"))
    assert [t.task_id for t in tasks] == ["q1", "mine-00002"]
    assert tasks[1].split == "test" and tasks[0].context["engine"] == "sqlite"


@pytest.mark.parametrize("rows, message", [
    (['{"question": "q", "db": "singer.sqlite", "gold": "SELECT 1"}', "{not json"], r"mine.jsonl:2: not valid JSON"),
    ([{"question": "q", "db": "singer.sqlite"}], r"mine.jsonl:1: missing or empty field 'gold'"),
    ([{"question": "q", "db": "nowhere.sqlite", "gold": "SELECT 1"}], r"mine.jsonl:1: database not found"),
    ([{"question": "q", "db": "corrupt.sqlite", "gold": "SELECT 1"}], r"mine.jsonl:1: cannot read database"),
    ([{"question": "q", "db": "data.csv", "gold": "SELECT 1"}], r"unsupported database file"),
    (["[1, 2]"], r"mine.jsonl:1: expected a JSON object"),
])
def test_jsonl_errors_name_the_line(tmp_path, rows, message):
    shutil.copy(SPIDER_DBS / "singer.sqlite", tmp_path / "singer.sqlite")
    (tmp_path / "corrupt.sqlite").write_bytes(b"this is not a database" * 100)
    (tmp_path / "data.csv").write_text("a,b\n")
    write_jsonl(tmp_path / "mine.jsonl", rows)
    with pytest.raises(UserError, match=message):
        load_tasks(str(tmp_path / "mine.jsonl"))


def test_spider_folder_layout(tmp_path):
    (tmp_path / "database" / "singer").mkdir(parents=True)
    shutil.copy(SPIDER_DBS / "singer.sqlite", tmp_path / "database" / "singer" / "singer.sqlite")
    (tmp_path / "dev.json").write_text(json.dumps([
        {"db_id": "singer", "question": "How many singers?", "query": "SELECT count(*) FROM singer"},
        {"db_id": "singer", "question": "Oldest?", "SQL": "SELECT max(birth_year) FROM singer", "evidence": "hint"},
    ]))
    tasks = load_tasks(str(tmp_path))
    assert len(tasks) == 2 and tasks[1].reference.startswith("SELECT max") and "Hint: hint" in tasks[1].prompt[1]["content"]
    (tmp_path / "dev.json").write_text(json.dumps([{"db_id": "absent", "question": "q", "query": "SELECT 1"}]))
    with pytest.raises(UserError, match="database 'absent' not found"):
        load_tasks(str(tmp_path))


def test_unknown_source_and_split():
    with pytest.raises(UserError, match="unknown task source 'spidr'"):
        load_tasks("spidr")
    with pytest.raises(UserError, match="no tasks in split 'validation'"):
        load_tasks("humaneval", "validation")


@pytest.mark.parametrize("raw, code", [
    ("```sql\nSELECT 1;\n```", "SELECT 1"),
    ("Here:\n```\nSELECT a FROM t\n```\nDone", "SELECT a FROM t"),
    ("```python\nx=1\n```\n```sql\nSELECT 2\n```", "SELECT 2"),
    ("The answer is SELECT name FROM t WHERE a = 'x;y'; and more", "SELECT name FROM t WHERE a = 'x;y'"),
    ("I cannot answer that.", None),
    ("```sql\n\n```", None),
])
def test_extract_sql(raw, code):
    assert extract_sql(raw) == code
