"""Read a release's pairs and decide, pair by pair and with counts, what the trainer will see.

TRL drops a pair whose prompt fills `max_length` without saying so; we drop it first and count it, and for
the focal loss also drop pairs whose error spans were truncated away.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from codelutra_data.builders.release import PAIR_CONFIGS, pair_files
from codelutra_data.errors import UserError
from codelutra_data.files import read_jsonl
from codelutra_data.models.spec import HUB_ID

@dataclass
class DataInfo:
    """What the model card says about the training data."""

    name: str
    version: str
    location: str
    split: str
    build_id: str = ""


@dataclass
class Selection:
    rows: list[dict]
    loaded: int
    dropped: Counter = field(default_factory=Counter)
    notes: Counter = field(default_factory=Counter)
    longest: int = 0  # tokens of the longest kept sequence (prompt + its longer side), truncation applied

    def report(self) -> dict:
        return {"pairs_loaded": self.loaded, "pairs_used": len(self.rows), "dropped": dict(self.dropped),
                **dict(self.notes)}


def _read_files(files: list[Path]) -> list[dict]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows: list[dict] = []
    for f in files:
        if f.suffix != ".parquet":
            rows.extend(row for _, row in read_jsonl(f))
            continue
        try:
            rows.extend(pq.read_table(f).to_pylist())
        except (pa.ArrowException, OSError) as exc:  # truncated, or not parquet at all
            raise UserError(f"{f}: not a readable parquet file ({str(exc).splitlines()[0][:200]})") from None
    return rows


def load_pairs(data: str, split: str = "train", revision: str | None = None,
               config: str | None = None) -> tuple[list[dict], DataInfo]:
    """Rows of a release's pairs (`config`: `pairs`, or `focal_pairs` from a trajectories build; by default the
    first the release has): a release directory, a .parquet/.jsonl file, or a Hub dataset id."""
    if config is not None and config not in PAIR_CONFIGS:
        raise UserError(f"unknown data config {config!r}: use one of {', '.join(PAIR_CONFIGS)}")
    path = Path(os.path.expanduser(data))  # an unknown ~user stays as written
    if path.is_dir():
        files, release = pair_files(path, split, config)
        return _read_files(files), DataInfo(release["name"], release["version"], str(path.resolve()), split,
                                            release["build_id"])
    if path.is_file():
        if path.suffix not in (".parquet", ".jsonl", ".json"):
            raise UserError(f"{data}: expected a release directory, a .parquet or a .jsonl file of pairs")
        return _read_files([path]), DataInfo(path.stem, "", str(path.resolve()), split)
    if HUB_ID.match(data) and not data.startswith((".", "/")):
        import datasets

        try:
            chosen = config
            if chosen is None:
                names = datasets.get_dataset_config_names(data, revision=revision)
                chosen = next((c for c in PAIR_CONFIGS if c in names), "pairs")
            ds = datasets.load_dataset(data, chosen, split=split, revision=revision)
        except Exception as exc:  # network, auth, missing config: one line for the user
            raise UserError(f"cannot load {data!r} from the Hub: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}") from None
        return ds.to_list(), DataInfo(data.split("/")[-1], revision or "main", data, split)
    raise UserError(f"data {data!r} not found: give a release directory, a pairs file, or a Hub dataset id (org/name)")


def check_columns(rows: list[dict], needed: tuple[str, ...], method: str, data: str) -> None:
    """One clear line when the data cannot feed this method."""
    if not rows:
        raise UserError(f"{data} has no pairs")
    missing = [c for c in needed if c not in rows[0]]
    if missing:
        raise UserError(f"{data} has no column(s) {', '.join(missing)}: method {method} needs "
                        f"{', '.join(needed)}")
    for col in ("prompt", "chosen", "rejected"):
        if col not in needed:
            continue
        value = rows[0][col]
        if not (isinstance(value, list) and value and all(isinstance(m, dict) and "role" in m and "content" in m
                                                          for m in value)):
            raise UserError(f"{data}: column {col!r} must hold chat messages ([{{role, content}}, ...]), as "
                            f"codelutra-data releases do")
    if method == "focal" and not any(r.get("rejected_error_spans") for r in rows):
        raise UserError(f"{data} has no rejected_error_spans in any pair: focal training needs error spans "
                        f"(debug-trajectory pairs); use --method codelutra or dpo for plain pass/fail pairs")


def select_pairs(rows: list[dict], tokenizer, max_length: int, focal: bool, limit: int | None = None) -> Selection:
    """Pairs the preference trainers will train on, with every drop counted.

    Dropped: the prompt alone reaches `max_length` (TRL would silently drop it), and for focal, pairs whose
    error spans all lie past `max_length`. Counted but kept: pairs truncated at all, focal pairs with some
    span tokens truncated, and focal pairs without spans (trained as plain pairs)."""
    from codelutra_data.trainers.masks import MaskAlignmentError, span_token_mask, tokenize_pair

    rows = rows[:limit] if limit else rows
    sel = Selection(rows=[], loaded=len(rows))
    for n, row in enumerate(rows):
        pid = row.get("pair_id") or f"row {n}"
        toks = tokenize_pair(tokenizer, row["prompt"], row["chosen"], row["rejected"])
        room = max_length - len(toks.prompt_ids)
        if room <= 0:
            sel.dropped["prompt_too_long"] += 1
            continue
        if len(toks.chosen_ids) > room or len(toks.rejected_ids) > room:
            sel.notes["pairs_truncated"] += 1
        longest = len(toks.prompt_ids) + min(room, max(len(toks.chosen_ids), len(toks.rejected_ids)))
        if focal:
            spans = row.get("rejected_error_spans") or []
            if not spans:
                sel.notes["focal_fallback_plain"] += 1
            else:
                try:
                    mask = span_token_mask(tokenizer, row["prompt"], row["rejected"], spans,
                                           toks.prompt_ids, toks.rejected_ids)
                except MaskAlignmentError as exc:
                    raise UserError(f"pair {pid}: {exc}") from None
                kept = sum(mask[:room])
                if kept == 0:
                    sel.dropped["spans_truncated"] += 1
                    continue
                if kept < sum(mask):
                    sel.notes["spans_partly_truncated"] += 1
                sel.notes["focal_span_tokens"] += kept
                sel.notes["focal_rejected_tokens"] += min(len(toks.rejected_ids), room)
        sel.longest = max(sel.longest, longest)
        sel.rows.append(row)
    return sel


def select_sft(rows: list[dict], tokenizer, max_length: int, limit: int | None = None) -> Selection:
    """Prompt-completion examples from the chosen side, each distinct (prompt, chosen) once."""
    from codelutra_data.trainers.masks import tokenize_pair

    rows = rows[:limit] if limit else rows
    sel = Selection(rows=[], loaded=len(rows))
    seen = set()
    for row in rows:
        key = json.dumps([row["prompt"], row["chosen"]], sort_keys=True)
        if key in seen:
            sel.dropped["duplicate_chosen"] += 1
            continue
        seen.add(key)
        toks = tokenize_pair(tokenizer, row["prompt"], row["chosen"], None)
        if len(toks.prompt_ids) >= max_length:
            sel.dropped["prompt_too_long"] += 1
            continue
        if len(toks.prompt_ids) + len(toks.chosen_ids) > max_length:
            sel.notes["examples_truncated"] += 1
        sel.longest = max(sel.longest, min(max_length, len(toks.prompt_ids) + len(toks.chosen_ids)))
        sel.rows.append({"prompt": row["prompt"], "completion": row["chosen"]})
    return sel
