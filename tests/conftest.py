from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

# pytest-xdist runs one process per core: each torch must not start a thread per core too (oversubscribed
# CPUs made the real-model tests several times slower).
_WORKERS = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
if _WORKERS > 1:
    _threads = str(max(1, (os.cpu_count() or 1) // _WORKERS))
    os.environ.setdefault("OMP_NUM_THREADS", _threads)
    os.environ.setdefault("MKL_NUM_THREADS", _threads)

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared" / "data"
SPIDER_DBS = ROOT / "builders" / "tasks" / "data" / "spider_dev" / "databases"


@pytest.fixture
def spider_db(tmp_path: Path):
    """A private copy of a bundled Spider database (tests may check it stays byte-identical)."""

    def copy(name: str = "concert_singer") -> Path:
        dst = tmp_path / f"{name}.sqlite"
        shutil.copy(SPIDER_DBS / f"{name}.sqlite", dst)
        return dst

    return copy


@pytest.fixture
def duck_db(tmp_path: Path) -> Path:
    import duckdb

    path = tmp_path / "shop.duckdb"
    con = duckdb.connect(str(path))
    con.execute("CREATE TABLE items AS SELECT range AS id, 'item' || range AS name, range * 1.5 AS price "
                "FROM range(5000)")
    con.execute("CREATE TABLE tags AS SELECT range % 50 AS id, 'tag' || range AS tag FROM range(2000)")
    con.close()
    return path


def sqlite_rows(path: Path, sql: str) -> list[tuple]:
    con = sqlite3.connect(path)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


@pytest.fixture
def saturated_cores():
    """Two spinning processes per core for the duration of a test: a machine busy with other work. Each in a
    session of its own: with the kernel's autogroup scheduling, spinners sharing one session would together
    get only one session's share of the cores and barely slow anything down."""
    spinners = [subprocess.Popen([sys.executable, "-c", "while True: pass"], start_new_session=True)
                for _ in range(2 * (os.cpu_count() or 1))]
    try:
        yield len(spinners)
    finally:
        for proc in spinners:
            proc.kill()
            proc.wait()
