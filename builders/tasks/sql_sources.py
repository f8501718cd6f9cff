"""Text-to-SQL task sources: the bundled Spider dev set, a Spider/BIRD-layout folder, and a JSONL file."""

from __future__ import annotations

import hashlib
import json
import os
import re
import sqlite3
from functools import lru_cache
from pathlib import Path
from typing import Callable
from urllib.parse import quote

from codelutra_data import duckdb_files
from codelutra_data.builders.prompts import DEFAULT_SQL_TEMPLATE, sql_prompt
from codelutra_data.errors import UserError
from codelutra_data.files import read_json
from codelutra_data.records import Task

BUNDLED_SPIDER = Path(__file__).parent / "data" / "spider_dev"
SPIDER_LICENSE = "CC BY-SA 4.0 (Yu et al., 2018, Spider: A Large-Scale Human-Labeled Dataset for Complex and Cross-Domain Semantic Parsing and Text-to-SQL)"
TEST_FRACTION = 0.3
VALIDATION_FRACTION = 0.15
_DB_ID = re.compile(r"^[\w-][\w.-]*$")  # a folder under database/: never a path
_ENGINES = {".sqlite": "sqlite", ".sqlite3": "sqlite", ".db": "sqlite", ".duckdb": "duckdb"}


def split_by_database(questions_per_db: dict[str, int], test_fraction: float = TEST_FRACTION,
                      validation_fraction: float = VALIDATION_FRACTION) -> dict[str, str]:
    """Deterministic train/validation/test split with no database in two splits: databases in the order of a
    hash of their name go to `test` until it holds `test_fraction` of the questions, the next ones to
    `validation` until it holds `validation_fraction`, the rest to `train`. Validation was added after test
    and takes only former train databases, so the test split (and numbers measured on it) did not change."""
    total = sum(questions_per_db.values())
    order = sorted(questions_per_db, key=lambda db: hashlib.sha256(f"split-v1:{db}".encode()).hexdigest())
    split, in_test, in_validation = {}, 0, 0
    for db in order:
        if in_test < test_fraction * total:
            split[db] = "test"
            in_test += questions_per_db[db]
        elif in_validation < validation_fraction * total:
            split[db] = "validation"
            in_validation += questions_per_db[db]
        else:
            split[db] = "train"
    return split


def database_in(folder: Path, name: str) -> Path:
    """The database a task names (`name`: relative to the task set's folder, or absolute), which must be a file of
    that folder: a path that leaves it (`..`, an absolute path elsewhere, a link to a file elsewhere) is refused, so
    a task set cannot put a database of this machine's into prompts, releases and feedback."""
    if "\0" in name:
        raise UserError(f"database {name!r}: a path with a NUL character")
    path = Path(folder) / name  # an absolute name stays as written
    real, home = os.path.realpath(path), os.path.realpath(folder)
    if os.path.commonpath([real, home]) != home:
        link = f"a link to {real}, " if real != os.path.abspath(path) else ""
        raise UserError(f"database {name!r} is {link}outside {folder}, the folder that holds the task set: a task's "
                        f"db must be a file in it")
    return path


def engine_for(db_path: Path) -> str:
    engine = _ENGINES.get(db_path.suffix.lower())
    if engine is None:
        raise UserError(f"unsupported database file {db_path}: expected one of {', '.join(sorted(_ENGINES))}")
    return engine


@lru_cache(maxsize=256)
def schema_text(db_path: str, engine: str) -> str:
    """CREATE statements of the database, read once; also proves the file is a readable database."""
    path = Path(db_path)
    if not path.is_file():
        raise UserError(f"database not found: {db_path}")
    try:
        if engine == "sqlite":
            con = sqlite3.connect(f"file:{quote(str(path))}?mode=ro", uri=True)
            try:
                rows = con.execute("SELECT sql FROM sqlite_master WHERE type='table' AND sql IS NOT NULL "
                                   "AND name NOT LIKE 'sqlite_%' "
                                   "ORDER BY rowid").fetchall()
            finally:
                con.close()
        else:
            con = duckdb_files.connect(path, enable_external_access=False)
            try:
                rows = con.execute("SELECT sql FROM duckdb_tables() ORDER BY table_name").fetchall()
            finally:
                con.close()
    except (sqlite3.Error, Exception) as exc:
        if isinstance(exc, UserError):
            raise
        raise UserError(f"cannot read database {db_path}: {duckdb_files.open_failure(path, exc)}") from None
    if not rows:
        raise UserError(f"database {db_path} has no tables")
    return "\n".join(r[0].strip().rstrip(";") + ";" for r in rows)


def make_sql_task(task_id: str, source: str, question: str, gold: str, db_path: Path, split: str,
                  hint: str = "", metadata: dict | None = None, compare_mode: str = "strict") -> Task:
    """`compare_mode` is the source's own grading rule (what `--compare-mode auto` uses): spider for Spider, set
    for BIRD, strict for a user's data."""
    engine = engine_for(db_path)
    schema = schema_text(str(db_path.resolve()), engine)
    dialect = "SQLite" if engine == "sqlite" else "DuckDB"
    return Task(
        task_id=task_id, source=source, domain="sql",
        prompt=sql_prompt(question, schema, dialect, hint),
        context={"engine": engine, "db_path": str(db_path.resolve()), "db_id": db_path.stem,
                 "compare_mode": compare_mode},
        reference=gold, split=split,
        metadata={"question": question, "template": DEFAULT_SQL_TEMPLATE, **(metadata or {})},
    )


def _with_splits(rows: list[dict]) -> None:
    counts: dict[str, int] = {}
    for r in rows:
        counts[r["db_id"]] = counts.get(r["db_id"], 0) + 1
    assignment = split_by_database(counts)
    for r in rows:
        r.setdefault("split", assignment[r["db_id"]])


def load_spider_dev() -> list[Task]:
    """The bundled Spider dev set (1034 questions, 20 SQLite databases converted from the shared dump)."""
    path = BUNDLED_SPIDER / "questions.jsonl"
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    _with_splits(rows)
    return [make_sql_task(r["id"], "spider-dev", r["question"], r["query"],
                          BUNDLED_SPIDER / "databases" / f"{r['db_id']}.sqlite", r["split"], compare_mode="spider")
            for r in rows]


def load_spider_folder(folder: Path) -> list[Task]:
    """A folder in the Spider or BIRD layout: dev.json / train_spider.json / train.json, and databases under
    database/, dev_databases/ or train_databases/ as <db>/<db>.sqlite."""
    files = [folder / n for n in ("dev.json", "train_spider.json", "train_others.json", "train.json")
             if (folder / n).is_file()]
    if not files:
        raise UserError(f"{folder} is not a Spider/BIRD folder: no dev.json, train_spider.json or train.json")
    db_roots = [folder / n for n in ("database", "dev_databases", "train_databases") if (folder / n).is_dir()]
    if not db_roots:
        raise UserError(f"{folder} has no database/ (or dev_databases/) folder")
    source = folder.resolve().name
    rows = []
    bird = any(r.name != "database" for r in db_roots)
    for file in files:
        items = read_json(file)
        if not isinstance(items, list):
            raise UserError(f"{file}: expected a JSON list of questions (objects with question, db_id and query)")
        for i, item in enumerate(items):
            if not isinstance(item, dict):
                raise UserError(f"{file}: entry {i} is not an object with question, db_id and query/SQL")
            gold = item.get("query") or item.get("SQL")
            bird = bird or "SQL" in item
            if not gold or "question" not in item or "db_id" not in item:
                raise UserError(f"{file}: entry {i} lacks question, db_id or query/SQL")
            hint = item.get("evidence") or ""
            for name, value in (("question", item["question"]), ("db_id", item["db_id"]), ("query", gold),
                                ("evidence", hint)):
                if not isinstance(value, str):
                    raise UserError(f"{file}: entry {i}: {name} must be text, got {type(value).__name__}")
            if not _DB_ID.match(item["db_id"]):
                raise UserError(f"{file}: entry {i}: db_id {item['db_id']!r} is not a database folder name")
            rows.append({"id": f"{source}-{file.stem}-{i:05d}", "db_id": item["db_id"], "question": item["question"],
                         "query": gold, "hint": hint, "where": f"{file}: entry {i}"})
    _with_splits(rows)
    tasks = []
    for r in rows:
        db = next((root / r["db_id"] / f"{r['db_id']}.sqlite" for root in db_roots
                   if (root / r["db_id"] / f"{r['db_id']}.sqlite").is_file()), None)
        if db is None:
            raise UserError(f"database {r['db_id']!r} not found under {', '.join(str(d) for d in db_roots)}")
        try:
            database_in(folder, str(db.relative_to(folder)))
        except UserError as exc:
            raise UserError(f"{r['where']}: {exc}") from None
        tasks.append(make_sql_task(r["id"], source, r["question"], r["query"], db, r["split"], r["hint"],
                                   compare_mode="set" if bird else "spider"))
    return tasks


def load_sql_rows(items: list[tuple[str, dict, str | None]], name: str, file: Callable[[str], Path]) -> list[Task]:
    """Tasks of our SQL format (`items`: where each row is, the row, its dataset split or None): {"question", "db"
    (a .sqlite/.duckdb file of the task set: `file` finds it, and refuses one outside it), "gold" (or
    "query"/"sql"), optional "id", "split", "hint"}."""
    rows = []
    found: dict[str, Path] = {}
    for n, (where, item, split) in enumerate(items):
        gold = item.get("gold") or item.get("query") or item.get("sql")
        for field, value in (("question", item.get("question")), ("db", item.get("db")), ("gold", gold)):
            if not value or not isinstance(value, str):
                raise UserError(f"{where}: missing or empty field {field!r}")
        try:
            db = found.get(item["db"]) or found.setdefault(item["db"], file(item["db"]))
        except UserError as exc:
            raise UserError(f"{where}: {exc}") from None
        if not db.is_file():
            raise UserError(f"{where}: database not found: {db}")
        for field, kinds in (("split", str), ("hint", str), ("id", (str, int))):
            value = item.get(field)
            if value is not None and (isinstance(value, bool) or not isinstance(value, kinds)):
                raise UserError(f"{where}: field {field!r} must be text")
        line = where.rpartition(":")[2]
        number = int(line) if line.isdigit() else n + 1
        split = item.get("split") or split
        rows.append({"id": str(item.get("id") or f"{name}-{number:05d}"), "db_id": db.stem, "db": db,
                     "question": item["question"], "query": gold, "hint": item.get("hint", ""),
                     **({"split": split} if split else {}), "where": where})
    _with_splits(rows)
    tasks = []
    for r in rows:
        try:
            tasks.append(make_sql_task(r["id"], name, r["question"], r["query"], r["db"], r["split"], r["hint"]))
        except UserError as exc:
            raise UserError(f"{r['where']}: {exc}") from None
    return tasks
