"""Files other tools read and write: EvalPlus sample JSONL, Spider `pred.txt` and BIRD prediction JSON.
Readers return candidate programs per task id and fail with one clear line on anything malformed."""

from __future__ import annotations

import json
from pathlib import Path

from codelutra_data.errors import UserError
from codelutra_data.files import atomic_write, read_json, read_jsonl, read_text, writable_destination
from codelutra_data.records import Task

BIRD_SEPARATOR = "\t----- bird -----\t"
SPIDER_DEV_SIZE = 1034


def read_evalplus(path: str | Path, tasks: list[Task]) -> dict[str, list[str]]:
    """EvalPlus samples: one JSON object a line with `task_id` and `solution` (a whole program) or
    `completion` (the code that continues the task's code prompt). Several lines per task = several samples.
    Every suite task needs at least one sample; an unknown task id is an error, not silently ignored."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"samples file not found: {path}")
    by_id = {t.task_id: t for t in tasks}
    out: dict[str, list[str]] = {}
    for lineno, row in read_jsonl(path):
        if "task_id" not in row:
            raise UserError(f"{path}:{lineno}: expected an object with task_id and solution or completion")
        task = by_id.get(str(row["task_id"]))
        if task is None:
            raise UserError(f"{path}:{lineno}: unknown task id {row['task_id']!r} for this suite")
        if isinstance(row.get("solution"), str):
            code = row["solution"]
        elif isinstance(row.get("completion"), str):
            code = task.metadata.get("code_prompt", "") + row["completion"]
        else:
            raise UserError(f"{path}:{lineno}: needs a `solution` or `completion` string")
        out.setdefault(task.task_id, []).append(code)
    if not out:
        raise UserError(f"{path}: no samples in file")
    missing = [t.task_id for t in tasks if t.task_id not in out]
    if missing:
        raise UserError(f"{path}: no samples for {len(missing)} of {len(tasks)} suite tasks (first: {missing[0]}); "
                        f"use --limit or --split to grade a subset")
    return out


def read_spider_predictions(path: str | Path, tasks: list[Task]) -> dict[str, list[str]]:
    """Spider `pred.txt`: one SQL query a line, in the suite's task order (a trailing tab and database id,
    as in gold files, is allowed and checked). A blank line is an empty prediction."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"predictions file not found: {path}")
    lines = read_text(path).splitlines()
    if len(lines) != len(tasks):
        raise UserError(f"{path} has {len(lines)} lines but the suite has {len(tasks)} tasks "
                        f"(one query a line, in task order; a file with one line per task of the whole source, "
                        f"e.g. {SPIDER_DEV_SIZE} for spider-dev, grades all of it)")
    out = {}
    for lineno, (line, task) in enumerate(zip(lines, tasks), 1):
        sql, _, db = line.partition("\t")
        if db.strip() and db.strip() != task.context.get("db_id"):
            raise UserError(f"{path}:{lineno}: database {db.strip()!r} but task {task.task_id} is on "
                            f"{task.context.get('db_id')!r}: are the lines in the suite's order?")
        out[task.task_id] = [sql.strip()]
    return out


def read_bird_predictions(path: str | Path, tasks: list[Task]) -> dict[str, list[str]]:
    """BIRD prediction JSON: {"0": "SQL\\t----- bird -----\\tdb_id", ...}, keys indexing the suite's tasks."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"predictions file not found: {path}")
    data = read_json(path)
    if not isinstance(data, dict):
        raise UserError(f"{path}: expected a JSON object of index -> 'SQL\\t----- bird -----\\tdb_id'")
    keys = {str(i) for i in range(len(tasks))}
    if set(data) != keys:
        extra = sorted(set(data) - keys, key=lambda k: (len(k), k))
        missing = sorted(keys - set(data), key=lambda k: (len(k), k))
        detail = f"unexpected key {extra[0]!r}" if extra else f"missing key {missing[0]!r}"
        raise UserError(f"{path} has {len(data)} predictions but the suite has {len(tasks)} tasks ({detail})")
    out = {}
    for i, task in enumerate(tasks):
        value = data[str(i)]
        if not isinstance(value, str):
            raise UserError(f"{path}: prediction {i} is not a string")
        sql, sep, db = value.partition(BIRD_SEPARATOR)
        if sep and db.strip() != task.context.get("db_id"):
            raise UserError(f"{path}: prediction {i} names database {db.strip()!r} but task {task.task_id} is on "
                            f"{task.context.get('db_id')!r}")
        out[task.task_id] = [sql.strip()]
    return out


def count_predictions(path: str | Path) -> int | None:
    """Entries in a predictions file (lines of a pred.txt, keys of a BIRD JSON); None when unreadable (the
    reader then says why)."""
    path = Path(path)
    try:
        if path.suffix.lower() == ".json":
            data = json.loads(path.read_text(encoding="utf-8"))
            return len(data) if isinstance(data, dict) else None
        return len(path.read_text(encoding="utf-8").splitlines())
    except (OSError, ValueError, RecursionError):
        return None


def read_predictions(path: str | Path, tasks: list[Task]) -> dict[str, list[str]]:
    suffix = Path(path).suffix.lower()
    if suffix == ".json":
        return read_bird_predictions(path, tasks)
    if suffix in (".txt", ".sql"):
        return read_spider_predictions(path, tasks)
    raise UserError(f"unknown predictions format {suffix!r}: use a Spider pred.txt (one query a line) or a BIRD "
                    f".json file; EvalPlus samples go to --samples")


def _one_line(sql: str) -> str:
    """A query on one line: line breaks and tabs become spaces (string literals keep their inner spacing)."""
    return sql.replace("\r\n", " ").replace("\n", " ").replace("\r", " ").replace("\t", " ").strip()


PREDICTION_FORMATS = {".jsonl": "EvalPlus", ".txt": "Spider", ".json": "BIRD"}


def check_predictions_path(path: str | Path, tasks: list[Task]) -> Path:
    """Refuse, before any grading, a predictions destination that cannot be written in a known format."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in PREDICTION_FORMATS:
        raise UserError(f"unknown predictions format {suffix or path.name!r}: use .jsonl (EvalPlus), .txt (Spider) "
                        f"or .json (BIRD)")
    if suffix in (".txt", ".json") and any(t.domain != "sql" for t in tasks):
        raise UserError(f"{suffix} predictions are for SQL suites; write Python samples as .jsonl (EvalPlus)")
    return writable_destination(path, "--write-predictions")


def predictions_text(path: str | Path, tasks: list[Task], codes: dict[str, list[str]]) -> str:
    """What was graded in another tool's format, chosen by suffix: .jsonl (EvalPlus, every sample), .txt
    (Spider, first sample per task, one line each) or .json (BIRD, first sample per task)."""
    suffix = check_predictions_path(path, tasks).suffix.lower()
    one_line = lambda t: _one_line(codes[t.task_id][0] if codes[t.task_id] else "")  # noqa: E731
    if suffix == ".jsonl":
        return "".join(json.dumps({"task_id": t.task_id, "solution": code}) + "\n" for t in tasks
                       for code in codes[t.task_id])
    if suffix == ".txt":
        return "".join(one_line(t) + "\n" for t in tasks)
    return json.dumps({str(i): one_line(t) + BIRD_SEPARATOR + str(t.context.get("db_id", ""))
                       for i, t in enumerate(tasks)}, indent=1)


def write_predictions(path: str | Path, tasks: list[Task], codes: dict[str, list[str]]) -> Path:
    return atomic_write(path, predictions_text(path, tasks, codes))
