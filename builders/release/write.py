"""Writing a release: parquet per config and split, a dataset card, and the full build config.

A release directory is written under a temporary name and renamed into place, so it either exists whole
or not at all; an existing release is never overwritten.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable

import yaml

from codelutra_data import __version__
from codelutra_data.builders.release.read import PAIR_CONFIGS
from codelutra_data.builders.tasks import bundled_summary, registered, source_license
from codelutra_data.cards import card, render
from codelutra_data.errors import UserError
from codelutra_data.files import atomic_directory
from codelutra_data.records import Execution, Pair, Sample, Task, Trajectory


def sample_row(task: Task, sample: Sample, execution: Execution) -> dict:
    """One row of the `samples` config: the sample, its execution, and the task fields needed to read it."""
    row = {**sample.to_dict(), **{k: v for k, v in execution.to_dict().items() if k not in ("sample_id", "node", "test_cpu_s")}}
    row.update(source=task.source, domain=task.domain, split=task.split, prompt=task.prompt,
               reference=task.reference)
    return row


def _size_category(n: int) -> str:
    for bound, label in ((1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"), (1_000_000, "100K<n<1M")):
        if n < bound:
            return label
    return "1M<n<10M"


def _message_list():
    import pyarrow as pa

    return pa.list_(pa.struct([("role", pa.string()), ("content", pa.string())]))


def pairs_schema():
    """Explicit arrow schema of the `pairs` config, so empty lists and empty splits keep their types."""
    import pyarrow as pa

    msg = _message_list()
    types = {"prompt": msg, "chosen": msg, "rejected": msg, "rejected_error_spans": pa.list_(pa.list_(pa.int64())),
             "iteration": pa.int64(), "chosen_pass_rate": pa.float64(), "rejected_pass_rate": pa.float64()}
    return pa.schema([(f.name, types.get(f.name, pa.string())) for f in dataclasses.fields(Pair)])


def trajectories_schema():
    import pyarrow as pa

    round_type = pa.struct([("round", pa.int64()), ("sample_id", pa.string()), ("model", pa.string()),
                            ("raw_output", pa.string()), ("code", pa.string()), ("status", pa.string()),
                            ("tests_passed", pa.int64()), ("tests_total", pa.int64()), ("feedback", pa.string()),
                            ("resubmission_of", pa.int64())])
    types = {"rounds": pa.list_(round_type), "trajectory_index": pa.int64(), "solved": pa.bool_(),
             "solved_round": pa.int64(), "resubmissions": pa.int64()}
    return pa.schema([(f.name, types.get(f.name, pa.string())) for f in dataclasses.fields(Trajectory)])


def sft_schema():
    import pyarrow as pa

    return pa.schema([("messages", _message_list()), ("task_id", pa.string()), ("trajectory_id", pa.string()),
                      ("source", pa.string()), ("domain", pa.string()), ("split", pa.string()),
                      ("solved_round", pa.int64()), ("model", pa.string()), ("reviser", pa.string()),
                      ("build_id", pa.string())])


SCHEMAS = {"pairs": pairs_schema, "focal_pairs": pairs_schema, "trajectories": trajectories_schema,
           "sft": sft_schema}
CONFIG_TEXT = {
    "pairs": "TRL conversational preference format (`prompt`, `chosen`, `rejected`) plus provenance columns "
             "(`task_id`, `source`, `split`, `model`, `iteration`, both sides' status and pass rate, "
             "`chosen_origin`, `rejected_error_spans`, `build_id`).",
    "focal_pairs": "IterPref focal pairs: the task's prompt, chosen = the final passing attempt of a debug "
                   "trajectory, rejected = an earlier failing attempt, `rejected_error_spans` = character spans "
                   "of the rejected program's lines outside the longest common subsequence of lines with the "
                   "chosen program; the same columns as `pairs` (train with `--method focal`).",
    "trajectories": "one row per debug trajectory: every attempt (`rounds`: code, raw output, status, tests "
                    "passed, the feedback shown to the reviser, resubmission_of), `solved`, `solved_round`, "
                    "`stop_reason`, `model`, `reviser`, `feedback_version`.",
    "sft": "solved trajectories as TRL conversational `messages`: task, attempt, feedback + request for a fix, "
           "..., the final passing program.",
    "samples": "every sample with its execution (raw output, extracted code, status, feedback, limits).",
}


ROWS_PER_GROUP = 5_000  # a streamed table is converted and written this many rows at a time


@dataclass(frozen=True)
class Streamed:
    """A table too big to hold (every sample of a build): `rows()` yields it afresh, read from the run store,
    once to learn its schema and once to write it, a row group at a time."""

    rows: Callable[[], Iterable[dict]]


def _null_lists_as_int(schema):
    """An all-empty list column has no element type: say int64 (as every release has)."""
    import pyarrow as pa

    return pa.schema([pa.field(f.name, pa.list_(pa.int64())) if pa.types.is_list(f.type) and
                      pa.types.is_null(f.type.value_type) else f for f in schema])


def _batches(rows: Iterable[dict]) -> Iterable[tuple[str, list[dict]]]:
    """(split, rows) groups of at most ROWS_PER_GROUP rows, in order."""
    pending: dict[str, list[dict]] = {}
    for row in rows:
        batch = pending.setdefault(row["split"], [])
        batch.append(row)
        if len(batch) >= ROWS_PER_GROUP:
            yield row["split"], pending.pop(row["split"])
    yield from pending.items()


def _write_streamed(table: Streamed, folder: Path, build_id: str, schema=None) -> tuple[dict[str, int], dict | None]:
    """Write a streamed table as one parquet file per split; (rows per split, its first row). The schema is the
    table's own where it has one, else what the whole table would infer (each batch's, unified, in a first pass),
    so a streamed release reads as a held one."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    if schema is None:
        schemas = [pa.Table.from_pylist(batch).schema for _, batch in _batches(table.rows())]
        if not schemas:
            return {}, None
        schema = _null_lists_as_int(pa.unify_schemas(schemas, promote_options="permissive"))
    writers: dict[str, pq.ParquetWriter] = {}
    counts: dict[str, int] = {}
    first = None
    folder.mkdir(parents=True, exist_ok=True)
    try:
        for split, batch in _batches(table.rows()):
            first = first or batch[0]
            if split not in writers:
                writers[split] = pq.ParquetWriter(folder / f"{split}-{build_id}.parquet", schema)
            writers[split].write_table(pa.Table.from_pylist(batch, schema=schema))
            counts[split] = counts.get(split, 0) + len(batch)
    finally:
        for writer in writers.values():
            writer.close()
    return counts, first


def _write_parquet(rows: list[dict], path: Path, schema=None) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    path.parent.mkdir(parents=True, exist_ok=True)
    if not rows and schema is not None:  # no row group at all: `datasets` then says the split has no data
        pq.ParquetWriter(path, schema).close()
        return
    table = pa.Table.from_pylist(rows, schema=schema)
    for i, col in enumerate(table.schema):  # an all-empty list column has no element type: say int64
        if pa.types.is_list(col.type) and pa.types.is_null(col.type.value_type):
            table = table.set_column(i, col.name, table.column(i).cast(pa.list_(pa.int64())))
    pq.write_table(table, path)


def card_metadata(name: str, config, splits: dict[str, list[str]], n_rows: int, build_id: str,
                  domain: str = "sql") -> dict:
    """The card's YAML header (Hub dataset-card fields). File names carry the build id: `datasets` caches a
    local folder by its config (not its path), so two releases with equal file names would share a cache."""
    configs = []
    for cfg_name, cfg_splits in splits.items():
        files = [{"split": s, "path": f"{cfg_name}/{s}-{build_id}.parquet"} for s in cfg_splits]
        configs.append({"config_name": cfg_name, "data_files": files})
    default = next((c for c in configs if c["config_name"] in PAIR_CONFIGS), configs[0])
    configs.remove(default)
    configs.insert(0, {**default, "default": True})
    lic = "cc-by-sa-4.0" if config.tasks == "spider-dev" else "other"
    trajectories = getattr(config, "mode", "pairs") == "trajectories"
    tags = ["code", "text-to-sql" if domain == "sql" else "python", "preference", "dpo", "execution-verified"]
    tags += ["iterpref", "codeflow", "debug-trajectories", "focal-dpo"] if trajectories else ["codelutra"]
    return {
        "configs": configs,
        "license": lic,
        "task_categories": ["text-generation"],
        "tags": tags,
        "size_categories": [_size_category(n_rows)],
        "source_datasets": [config.tasks if config.tasks in registered() else "user-provided"],
        "pretty_name": f"{name} ({'IterPref debug trajectories' if trajectories else 'CodeLutra pairs'})",
    }


def write_release(release_dir: Path, *, name: str, version: str, build_id: str, config, model,
                  tables: dict[str, list[dict] | Streamed], stats: dict, limits: dict) -> Path:
    """Write every table (config name -> rows, each row with its `split`) as parquet per split, the card and
    build_config.yaml, all under a temporary name renamed into place. Every table gets its config even with no
    rows (an empty file with the schema), so a release's shape never depends on what the model sampled, and
    the pairs are always the default config. `config` is the build's configuration (a BuildConfig)."""
    if release_dir.exists():
        raise UserError(f"release {release_dir} already exists and is never overwritten")
    with atomic_directory(release_dir) as tmp:
        by_split: dict[str, dict[str, list[dict]]] = {}
        counts: dict[str, dict[str, int]] = {}
        first_rows: dict[str, dict | None] = {}
        for cfg_name, rows in tables.items():
            if isinstance(rows, Streamed):
                schema = SCHEMAS[cfg_name]() if cfg_name in SCHEMAS else None
                counts[cfg_name], first_rows[cfg_name] = _write_streamed(rows, tmp / cfg_name, build_id, schema)
                if not counts[cfg_name] and schema is not None:
                    by_split[cfg_name] = {}  # empty: a file per split with its schema, as a held table gets
                continue
            by_split[cfg_name] = {}
            for row in rows:
                by_split[cfg_name].setdefault(row["split"], []).append(row)
            first_rows[cfg_name] = rows[0] if rows else None
        splits_made = sorted({s for v in by_split.values() for s in v} | {s for v in counts.values() for s in v}) \
            or ["train"]
        for cfg_name in SCHEMAS:  # a table that came out empty keeps its place and schema, one file per split
            if cfg_name in by_split and not by_split[cfg_name]:
                by_split[cfg_name] = {s: [] for s in splits_made}
        for cfg_name, splits in by_split.items():
            schema = SCHEMAS[cfg_name]() if cfg_name in SCHEMAS else None
            for split, rows in splits.items():
                _write_parquet(rows, tmp / cfg_name / f"{split}-{build_id}.parquet", schema=schema)
            counts[cfg_name] = {split: len(rows) for split, rows in splits.items()}
        counts = {k: counts[k] for k in tables}  # the tables' own order: the card lists them so
        full_config = {**config.relevant(), "name": name, "version": version}
        build_info = {"build_id": build_id, "codelutra_data_version": __version__,
                      "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
                      "model": dataclasses.asdict(model), "sandbox_limits": limits, "stats": stats,
                      "config": full_config}
        (tmp / "build_config.yaml").write_text(yaml.safe_dump(build_info, sort_keys=False, allow_unicode=True))
        sample_row_ = first_rows.get("samples")
        domain = sample_row_["domain"] if sample_row_ else "sql"
        first_table = next(iter(tables))
        metadata = card_metadata(name, config, {k: sorted(v) for k, v in counts.items()},
                                 sum(counts[first_table].values()), build_id, domain)
        context = {"name": name, "version": version, "config": full_config, "model": dataclasses.asdict(model),
                   "stats": stats, "limits": limits, "build_id": build_id, "created": build_info["created"],
                   "source_license": source_license(config.tasks, sample_row_["source"] if sample_row_ else None),
                   "domain": domain, "mode": full_config.get("mode", "pairs"),
                   "empty_gold": bundled_summary(config.tasks).get("empty_gold_by_db", {}),
                   "counts": counts,
                   "config_text": {k: CONFIG_TEXT.get(k, "") for k in counts},
                   "default_config": metadata["configs"][0]["config_name"],
                   "empty_configs": [k for k, v in counts.items() if not any(v.values())],
                   "tool_version": __version__}
        (tmp / "README.md").write_text(card(metadata, render("dataset_card.md.j2", **context)), encoding="utf-8")
    return release_dir
