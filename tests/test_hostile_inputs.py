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
