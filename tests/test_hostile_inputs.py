"""The adversarial battery: inputs a careless or hostile user gives, and what the tool must do with them (one
line and exit status 2, nothing half-written, no network, nothing unbounded started)."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import textwrap

import pytest


def sqlite_named_duckdb(folder):
    path = folder / "trap.duckdb"
    con = sqlite3.connect(path)
    con.execute("CREATE TABLE singer (name TEXT, age INTEGER)")
    con.execute("INSERT INTO singer VALUES ('a', 30)")
    con.commit()
    con.close()
    return path


def test_no_input_makes_duckdb_reach_the_network(tmp_path):
    """A SQLite file named .duckdb is the input that makes DuckDB download its sqlite extension: every place
    that opens DuckDB (task loader, sandbox, table-columns helper, results store) is given it, under strace,
    and no socket other than a local one may be connected."""
    trap = sqlite_named_duckdb(tmp_path)
    tasks = tmp_path / "tasks.jsonl"
    tasks.write_text(json.dumps({"id": "t1", "question": "How many singers?", "db": str(trap),
                                 "gold": "SELECT count(*) FROM singer"}) + "\n")
    script = textwrap.dedent(f"""
        from codelutra_data.builders.tasks import load_tasks
        from codelutra_data.errors import UserError
        from codelutra_data.sandboxes.sql import SqlLimits, QueryFailed, run_query, table_columns
        from codelutra_data.benchmarks.store import read_rows
        messages = []
        try:
            load_tasks({str(tasks)!r})
        except UserError as exc:
            messages.append(str(exc))
        try:
            run_query("duckdb", {str(trap)!r}, "SELECT 1", SqlLimits())
        except QueryFailed as exc:
            messages.append(exc.message)
        try:
            table_columns("duckdb", {str(trap)!r})
        except QueryFailed as exc:
            messages.append(exc.message)
        try:
            read_rows({str(trap)!r})
        except UserError as exc:
            messages.append(str(exc))
        print("\\n".join(messages))
    """)
    trace = tmp_path / "trace.txt"
    done = subprocess.run(["strace", "-f", "-qq", "-e", "trace=connect", "-o", str(trace), sys.executable, "-c", script],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    messages = done.stdout.splitlines()
    assert len(messages) == 4, done.stdout
    for m in messages:
        assert "is a SQLite database, not a DuckDB one" in m or "sqlite" in m.lower(), m
    assert not any("INSTALL" in m or "download" in m.lower() for m in messages), messages
    calls = trace.read_text().splitlines()
    network = [c for c in calls if "connect(" in c and "AF_UNIX" not in c]
    assert network == [], network


# Each DuckDB type: the gold query, a correct answer written another way, and a wrong answer.
DUCK_TYPES = {
    "list": ("SELECT tags FROM typed WHERE id = 1", "SELECT list_value('b', 'a')[2:2] || ['b'] FROM typed WHERE id = 1",
             "SELECT ['a'] FROM typed WHERE id = 1"),
    "struct": ("SELECT info FROM typed ORDER BY id", "SELECT {'k': id, 'v': [id * 2]} FROM typed ORDER BY id",
               "SELECT {'k': id, 'v': [id]} FROM typed ORDER BY id"),
    "map": ("SELECT attrs FROM typed", "SELECT MAP {'y': id * 10, 'x': id} FROM typed",
            "SELECT MAP {'x': id} FROM typed"),
    "timestamptz": ("SELECT seen FROM typed WHERE id = 1",
                    "SELECT TIMESTAMPTZ '2024-03-01 10:00:00+00' FROM typed WHERE id = 1",
                    "SELECT TIMESTAMPTZ '2024-03-01 10:00:00+02' FROM typed WHERE id = 1"),
    "interval": ("SELECT wait FROM typed", "SELECT to_days(id) FROM typed", "SELECT to_hours(id) FROM typed"),
    "decimal": ("SELECT price FROM typed", "SELECT id * 1.25 FROM typed", "SELECT id * 1.2 FROM typed"),
    "blob": ("SELECT raw FROM typed", "SELECT ('\\x0' || id)::BLOB FROM typed", "SELECT 'x'::BLOB FROM typed"),
    "uuid": ("SELECT uid FROM typed WHERE id = 1", "SELECT '00000000-0000-0000-0000-000000000001'::UUID",
             "SELECT '00000000-0000-0000-0000-000000000002'::UUID"),
    "nested": ("SELECT [info] AS x, tags FROM typed ORDER BY id", "SELECT tags, [info] FROM typed ORDER BY id",
               "SELECT tags, [info, info] FROM typed ORDER BY id"),
}


def typed_duckdb(folder):
    import duckdb

    path = folder / "typed.duckdb"
    con = duckdb.connect(str(path))
    con.execute("SET TimeZone = 'Europe/Paris'")  # the writer's zone must not matter
    con.execute("""CREATE TABLE typed AS SELECT range AS id,
        CASE WHEN range = 1 THEN ['a', 'b'] ELSE ['c'] END AS tags,
        {'k': range, 'v': [range * 2]} AS info,
        MAP {'x': range, 'y': range * 10} AS attrs,
        TIMESTAMPTZ '2024-03-01 11:00:00+01' + to_days(range - 1) AS seen,
        to_days(range) AS wait,
        (range * 1.25)::DECIMAL(10, 2) AS price,
        ('\\x0' || range)::BLOB AS raw,
        ('00000000-0000-0000-0000-00000000000' || range)::UUID AS uid
        FROM range(1, 4)""")
    con.close()
    return path


@pytest.mark.parametrize("mode", ["spider", "set", "ordered"])
def test_duckdb_types_are_graded(tmp_path, mode):
    from codelutra_data.sandboxes.sql import SqlJob, SqlLimits, SqlSandbox

    db = str(typed_duckdb(tmp_path))
    jobs = []
    for name, (gold, right, wrong) in DUCK_TYPES.items():
        if mode != "spider" and name == "nested":
            right = "SELECT [info], tags FROM typed ORDER BY id"  # columns in order outside spider mode
        jobs += [SqlJob(f"{name}/right", "duckdb", db, gold, right, mode=mode),
                 SqlJob(f"{name}/wrong", "duckdb", db, gold, wrong, mode=mode)]
    with SqlSandbox(SqlLimits(cpu_time_s=5.0), workers=2) as sandbox:
        results = {e.sample_id: e for e in sandbox.run(jobs)}
    for name in DUCK_TYPES:
        right, wrong = results[f"{name}/right"], results[f"{name}/wrong"]
        assert right.status == "passed", (name, right.status, right.feedback)
        assert wrong.status == "wrong_answer", (name, wrong.status, wrong.feedback)
        assert "Traceback" not in wrong.feedback and "expected" in wrong.feedback
