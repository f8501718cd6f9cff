"""The results store: one DuckDB file every eval appends to and the leaderboard reads. Plain tables, so users
query it with `duckdb results/results.duckdb "SELECT ..."`. Rerunning a configuration replaces its rows."""

from __future__ import annotations

from pathlib import Path

from codelutra_data import duckdb_files
from codelutra_data.errors import UserError

DEFAULT_STORE = "results/results.duckdb"

# One row per (run configuration, metric): a run with --k 1,5,10 gives three rows.
COLUMNS = {
    "config_hash": "VARCHAR",
    "metric": "VARCHAR",
    "value": "DOUBLE",
    "ci_low": "DOUBLE",
    "ci_high": "DOUBLE",
    "n": "INTEGER",
    "k": "INTEGER",
    "tasks": "INTEGER",
    "suite": "VARCHAR",
    "split": "VARCHAR",
    "suite_version": "VARCHAR",
    "suite_hash": "VARCHAR",
    "compare_mode": "VARCHAR",
    "model": "VARCHAR",
    "model_revision": "VARCHAR",
    "model_path": "VARCHAR",
    "base_model": "VARCHAR",
    "dataset": "VARCHAR",
    "dataset_version": "VARCHAR",
    "method": "VARCHAR",
    "source": "VARCHAR",  # model | samples | predictions
    "temperature": "DOUBLE",
    "reference_pass_rate": "DOUBLE",
    "references_override": "BOOLEAN",
    "cpu_time_s": "DOUBLE",
    "wall_time_s": "DOUBLE",
    "date": "TIMESTAMP",
    "machine": "VARCHAR",
    "tool_version": "VARCHAR",
    "config": "VARCHAR",  # the run's full configuration as JSON text
    "results_file": "VARCHAR",
}


def _connect(path: Path, read_only: bool = False):
    import duckdb

    try:
        return duckdb_files.connect(path, read_only=read_only)
    except duckdb.Error as exc:
        raise UserError(f"cannot open the results store {path}: {duckdb_files.open_failure(path, exc)}") from None


def write_rows(path: str | Path, rows: list[dict]) -> None:
    """Replace the rows of these runs' configurations in one transaction: never duplicated, never half."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    con = _connect(path)
    try:
        columns = ", ".join(f"{name} {kind}" for name, kind in COLUMNS.items())
        con.execute(f"CREATE TABLE IF NOT EXISTS results ({columns}, PRIMARY KEY (config_hash, metric))")
        con.execute("BEGIN TRANSACTION")
        for config_hash in sorted({r["config_hash"] for r in rows}):
            con.execute("DELETE FROM results WHERE config_hash = ?", [config_hash])
        names = list(COLUMNS)
        con.executemany(f"INSERT INTO results ({', '.join(names)}) VALUES ({', '.join('?' * len(names))})",
                        [[row.get(n) for n in names] for row in rows])
        con.execute("COMMIT")
    except BaseException:
        try:
            con.execute("ROLLBACK")
        except Exception:  # noqa: BLE001 - nothing open to roll back
            pass
        raise
    finally:
        con.close()


def read_rows(path: str | Path, suite: str | None = None) -> list[dict]:
    path = Path(path)
    if not path.exists():
        raise UserError(f"no results store at {path}: run `codelutra-data eval` first (or pass --store)")
    con = _connect(path, read_only=True)
    try:
        query = "SELECT * FROM results" + (" WHERE suite = ?" if suite else "") + " ORDER BY suite, metric, value DESC"
        cursor = con.execute(query, [suite] if suite else [])
        names = [d[0] for d in cursor.description]
        return [dict(zip(names, row)) for row in cursor.fetchall()]
    finally:
        con.close()
