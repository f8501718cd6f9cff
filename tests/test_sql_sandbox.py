"""The SQL sandbox against hostile SQL: right status, database unchanged, time limit holds."""

from __future__ import annotations

import hashlib

import pytest

from codelutra_data.sandboxes.sql import SqlJob, SqlLimits, SqlSandbox


def digest(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


SQLITE_HOSTILE = {
    "attach": ("ATTACH DATABASE '/tmp/evil.db' AS evil", "runtime_error"),
    "writable_schema": ("PRAGMA writable_schema = 1", "runtime_error"),
    "pragma_journal": ("PRAGMA journal_mode = DELETE", "runtime_error"),
    "drop": ("DROP TABLE city", "runtime_error"),
    "insert": ("INSERT INTO city (Name) VALUES ('Atlantis')", "runtime_error"),
    "update": ("UPDATE city SET Population = 0", "runtime_error"),
    "create": ("CREATE TABLE evil (x)", "runtime_error"),
    "load_extension": ("SELECT load_extension('/tmp/evil.so')", "runtime_error"),
    "second_statement": ("SELECT 1; DROP TABLE city", "runtime_error"),
    "endless_cte": ("WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) FROM c",
                    "timeout"),
    "cartesian": ("SELECT count(*) FROM city a, city b, city c", "timeout"),
    "ten_million_rows": ("WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c LIMIT 10000000) "
                         "SELECT x FROM c", "runtime_error"),
    "syntax": ("SELEC Name FROM city", "syntax_error"),
    "no_such_table": ("SELECT * FROM nowhere", "runtime_error"),
    "wrong": ("SELECT count(*) FROM country", "wrong_answer"),
    "right": ("select COUNT(*) from city;", "passed"),
}


def test_sqlite_hostile_queries(spider_db):
    db = spider_db("world_1")
    before = digest(db)
    jobs = [SqlJob(name, "sqlite", str(db), "SELECT count(*) FROM city", sql) for name, (sql, _) in SQLITE_HOSTILE.items()]
    limits = SqlLimits(cpu_time_s=1.0, wall_time_s=10.0)
    with SqlSandbox(limits, workers=2) as sandbox:
        results = {e.sample_id: e for e in sandbox.run(jobs)}
    for name, (_, expected) in SQLITE_HOSTILE.items():
        assert results[name].status == expected, (name, results[name])
        assert results[name].cpu_s < limits.cpu_time_s + 1, (name, results[name].cpu_s)
    assert "not authorized" in results["attach"].feedback
    assert results["endless_cte"].feedback == "CPU time limit of 1 s exceeded"
    assert "rows" in results["ten_million_rows"].feedback
    assert digest(db) == before
    assert not list(db.parent.glob("*-journal")) and not list(db.parent.glob("*-wal"))
    assert not (db.parent / "evil.db").exists()


DUCK_HOSTILE = {
    "read_csv": ("SELECT * FROM read_csv('/etc/passwd')", "runtime_error"),
    "read_text": ("SELECT * FROM read_text('/etc/hostname')", "runtime_error"),
    "copy_to": ("COPY items TO '/tmp/stolen.csv'", "runtime_error"),
    "install": ("INSTALL httpfs", "runtime_error"),
    "load": ("LOAD httpfs", "runtime_error"),
    "attach": ("ATTACH '/tmp/other.duckdb' AS other", "runtime_error"),
    "set": ("SET threads = 8", "runtime_error"),
    "drop": ("DROP TABLE items", "runtime_error"),
    "insert": ("INSERT INTO items VALUES (1, 'x', 1.0)", "runtime_error"),
    "two_statements": ("SELECT 1; SELECT 2", "runtime_error"),
    "cartesian": ("SELECT count(*) FROM items a, items b, items c WHERE hash(a.id, b.id, c.id) = 42",
                  "timeout"),
    "ten_million_rows": ("SELECT * FROM range(10000000)", "runtime_error"),
    "syntax": ("SELEC * FROM items", "syntax_error"),
    "wrong": ("SELECT count(*) FROM tags", "wrong_answer"),
    "right": ("SELECT COUNT(id) FROM items", "passed"),
}


def test_duckdb_hostile_queries(duck_db, tmp_path):
    before = digest(duck_db)
    jobs = [SqlJob(name, "duckdb", str(duck_db), "SELECT count(*) FROM items", sql) for name, (sql, _) in DUCK_HOSTILE.items()]
    limits = SqlLimits(cpu_time_s=1.0, wall_time_s=10.0)
    with SqlSandbox(limits, workers=2) as sandbox:
        results = {e.sample_id: e for e in sandbox.run(jobs)}
    for name, (_, expected) in DUCK_HOSTILE.items():
        assert results[name].status == expected, (name, results[name])
        assert results[name].cpu_s < limits.cpu_time_s + 1, (name, results[name].cpu_s)
    assert results["cartesian"].feedback == "CPU time limit of 1 s exceeded"
    assert digest(duck_db) == before
    import os

    assert not os.path.exists("/tmp/stolen.csv")


def test_verdict_records_mode_limits_and_feedback(spider_db):
    db = spider_db()
    with SqlSandbox(SqlLimits(cpu_time_s=2.0), workers=1) as sandbox:
        (e,) = sandbox.run([SqlJob("k", "sqlite", str(db), "SELECT name FROM singer ORDER BY age",
                                   "SELECT name FROM singer ORDER BY age DESC", mode="spider")])
    assert e.status == "wrong_answer"
    assert e.compare_mode == "spider" and e.limits["cpu_time_s"] == 2.0 and e.limits["wall_time_s"] == 30.0 and e.sandbox == "sqlite"
    assert "order" in e.feedback and len(e.feedback) <= 600


def test_no_code_and_broken_reference(spider_db):
    db = spider_db()
    with SqlSandbox(workers=1) as sandbox:
        a, b = sandbox.run([SqlJob("a", "sqlite", str(db), "SELECT 1", None),
                            SqlJob("b", "sqlite", str(db), "SELECT * FROM missing_table", "SELECT 1")])
    assert a.status == "no_code"
    assert b.status == "sandbox_error" and "reference query failed" in b.feedback


def test_unknown_engine_is_an_error(spider_db):
    with SqlSandbox(workers=1) as sandbox, pytest.raises(ValueError, match="unknown SQL engine"):
        sandbox.run([SqlJob("a", "postgres", str(spider_db()), "SELECT 1", "SELECT 1")])


def test_spider_mode_drops_distinct_and_normalises_operators(spider_db):
    db = spider_db()
    gold = "SELECT DISTINCT country FROM singer WHERE age > = 20"
    with SqlSandbox(workers=1) as sandbox:
        spider, ordered = sandbox.run([
            SqlJob("s", "sqlite", str(db), gold, "SELECT country FROM singer WHERE age >= 20", mode="spider"),
            SqlJob("o", "sqlite", str(db), "SELECT DISTINCT country FROM singer WHERE age >= 20",
                   "SELECT country FROM singer WHERE age >= 20", mode="ordered"),
        ])
    assert spider.status == "passed"  # the official evaluator removes DISTINCT from both sides
    assert ordered.status == "wrong_answer"
