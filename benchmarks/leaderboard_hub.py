"""A leaderboard shared as a Hub dataset, the way the Open LLM Leaderboard shares its results and details: config
`results` (one row per model, suite and metric, with the suite hash, revision and configuration) and config
`details` (one row per graded task of each result). `leaderboard --push-to-hub ORG/NAME` merges the local store
into what is there (a result is its config hash and metric; the local copy wins) and writes both in ONE commit whose
parent is the head it read, so two teammates pushing at once cannot lose each other's rows (the later one is
refused and pushes again); `--from-hub ORG/NAME` reads the results back, so a team shares one board without a
server."""

from __future__ import annotations

import datetime as dt
import io
import json
from pathlib import Path
from typing import Callable

from codelutra_data.errors import UserError

RESULTS_FILE = "data/results.parquet"
DETAILS_FILE = "data/details.parquet"
RESULT_KEY = ("config_hash", "metric")
DETAIL_KEY = ("config_hash", "task_id")
LOCAL_ONLY = ("results_file",)  # a path on the machine that graded: meaningless elsewhere
CARD = """---
configs:
- config_name: results
  data_files: {results}
  default: true
- config_name: details
  data_files: {details_file}
tags:
- codelutra-data
- leaderboard
---
# Leaderboard results

Written by `codelutra-data leaderboard --push-to-hub`; read it back with `codelutra-data leaderboard --from-hub
{repo}`, or with `datasets.load_dataset("{repo}", "results")` (one row per model, suite and metric: score, 95%
interval, suite hash and revision, configuration) and `"details"` (one row per graded task: samples, correct,
statuses). Two scores are comparable when their `suite_hash` agrees.

{count} results over {suites} suites, {details} task rows; last push {date}.
"""


def detail_rows(rows: list[dict]) -> tuple[list[dict], int]:
    """Per-task rows of each result, from the per_task.jsonl beside its results.json; and how many results had no
    such file here (a result read from the Hub, or one whose folder was deleted)."""
    out, missing, seen = [], 0, set()
    for row in rows:
        if row["config_hash"] in seen:
            continue
        seen.add(row["config_hash"])
        per_task = Path(row.get("results_file") or "").parent / "per_task.jsonl"
        if not row.get("results_file") or not per_task.is_file():
            missing += 1
            continue
        for line in per_task.read_text(encoding="utf-8").splitlines():
            task = json.loads(line)
            out.append({"config_hash": row["config_hash"], "suite": row["suite"], "suite_hash": row["suite_hash"],
                        "model": row["model"], "task_id": task["task_id"], "n": task["n"],
                        "correct": task["correct"], "statuses": list(task["statuses"]),
                        "passed": [bool(p) for p in task["passed"]]})
    return out, missing


def _merged(remote: list[dict], local: list[dict], key: tuple[str, ...]) -> list[dict]:
    by_key = {tuple(r[k] for k in key): r for r in remote}
    by_key.update({tuple(r[k] for k in key): r for r in local})
    return list(by_key.values())


def _parquet(rows: list[dict]) -> bytes:
    import pyarrow as pa
    import pyarrow.parquet as pq

    buffer = io.BytesIO()
    pq.write_table(pa.Table.from_pylist(rows), buffer)
    return buffer.getvalue()


def _read_parquet(path: str) -> list[dict]:
    import pyarrow.parquet as pq

    return pq.read_table(path).to_pylist()


def _hub_rows(repo_id: str, filename: str, revision: str | None, token: str | None) -> list[dict] | None:
    """A file of the repository read as rows; None when the repository or the file is not there."""
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import EntryNotFoundError, RepositoryNotFoundError, RevisionNotFoundError

    try:
        path = hf_hub_download(repo_id, filename, repo_type="dataset", revision=revision, token=token)
    except (EntryNotFoundError, RepositoryNotFoundError, RevisionNotFoundError):
        return None
    try:
        return _read_parquet(path)
    except Exception as exc:  # noqa: BLE001 - a file someone else wrote: one line
        raise UserError(f"{repo_id}: {filename} is not a results table this tool can read ({type(exc).__name__})"
                        ) from None


def push(rows: list[dict], repo_id: str, token: str | None = None, private: bool = False,
         log: Callable[[str], None] = print) -> dict:
    """Merge `rows` (and their per-task details) into the Hub dataset `repo_id` in one commit."""
    from huggingface_hub import CommitOperationAdd

    from codelutra_data.builders.publish import Hub, _check_write_role, check_repo_id

    check_repo_id(repo_id, "--push-to-hub")
    hub = Hub(token)
    _check_write_role(hub.whoami())
    found = hub.tags_and_head(repo_id)
    if found is None:
        try:
            hub.api.create_repo(repo_id, repo_type="dataset", private=private, exist_ok=True)
        except Exception as exc:  # noqa: BLE001
            raise hub.error(exc, "create the repository", repo_id) from None
        log(f"created {'private ' if private else ''}dataset repository {repo_id}")
        found = hub.tags_and_head(repo_id) or ({}, None)
    head = found[1]
    try:
        remote = (_hub_rows(repo_id, RESULTS_FILE, head, hub.token) or []) if head else []
        remote_details = (_hub_rows(repo_id, DETAILS_FILE, head, hub.token) or []) if head else []
    except UserError:
        raise
    except Exception as exc:  # noqa: BLE001
        raise hub.error(exc, "read the results already there", repo_id) from None
    local = [{k: v for k, v in r.items() if k not in LOCAL_ONLY} for r in rows]
    details, without = detail_rows(rows)
    results = sorted(_merged(remote, local, RESULT_KEY), key=lambda r: (r["suite"], r["metric"], -r["value"]))
    merged_details = _merged(remote_details, details, DETAIL_KEY)
    added = len({tuple(r[k] for k in RESULT_KEY) for r in local} - {tuple(r[k] for k in RESULT_KEY) for r in remote})
    date = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
    card = CARD.format(results=RESULTS_FILE, details_file=DETAILS_FILE, repo=repo_id, count=len(results),
                       suites=len({r["suite"] for r in results}), details=len(merged_details), date=date)
    operations = [CommitOperationAdd(RESULTS_FILE, _parquet(results)),
                  CommitOperationAdd(DETAILS_FILE, _parquet(merged_details)),
                  CommitOperationAdd("README.md", card.encode("utf-8"))]
    title = f"leaderboard: {len(local)} results pushed ({added} new), {len(results)} in all"
    try:
        info = hub.api.create_commit(repo_id, operations, commit_message=title, repo_type="dataset",
                                     parent_commit=head)
    except Exception as exc:  # noqa: BLE001
        raise hub.error(exc, "commit the results", repo_id) from None
    log(f"committed {info.oid[:12]} to {repo_id}: {title}"
        + (f" ({without} results without per-task files here)" if without else ""))
    return {"repo": repo_id, "commit": info.oid, "results": len(results), "new": added,
            "details": len(merged_details), "without_details": without}


def pull(repo_id: str, revision: str | None = None, token: str | None = None) -> list[dict]:
    """The results a Hub leaderboard dataset holds, as store rows."""
    from huggingface_hub import get_token

    from codelutra_data.builders.publish import check_repo_id

    check_repo_id(repo_id, "--from-hub")
    try:
        rows = _hub_rows(repo_id, RESULTS_FILE, revision, token or get_token())
    except UserError:
        raise
    except Exception as exc:  # noqa: BLE001 - the transport's errors
        raise UserError(f"cannot read {repo_id} from the Hub ({type(exc).__name__}: {str(exc)[:150]})") from None
    if rows is None:
        raise UserError(f"{repo_id} has no {RESULTS_FILE} on the Hub (push one with leaderboard --push-to-hub)")
    for row in rows:
        row.setdefault("results_file", "")
    return rows


def combined(local: list[dict], remote: list[dict]) -> list[dict]:
    """The local store's rows and a Hub board's, one row per result (the local copy wins)."""
    rows = _merged(remote, local, RESULT_KEY)
    return sorted(rows, key=lambda r: (r["suite"], r["metric"], -r["value"]))
