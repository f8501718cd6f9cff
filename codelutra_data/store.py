"""The run store: append-only JSONL files in a run directory, keyed by content hashes.

Every batch is appended and fsynced before the build moves on, so `kill -9` loses at most the batch in
flight. On open, a torn last line (a write cut by the kill) is cut off, and records are read back into
dicts keyed by their key; a resumed build skips every key it finds. DuckDB reads these files directly
(`read_json_auto`) when a summary is needed.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Iterable

from codelutra_data.files import atomic_write


class JsonlTable:
    """One append-only table: a JSONL file whose records carry a unique key field (in memory only when
    `path` is None, for library callers that keep no run directory)."""

    def __init__(self, path: Path | None, key: str):
        self.path = path
        self.key = key
        self.records: dict[str, dict] = {}
        if path is not None and path.exists():
            self._load()

    def _load(self) -> None:
        data = self.path.read_bytes()
        end = data.rfind(b"\n") + 1
        if end != len(data):  # a torn write from a killed run: drop the partial line
            with self.path.open("r+b") as fh:
                fh.truncate(end)
            data = data[:end]
        for line in data.splitlines():
            if line.strip():
                rec = json.loads(line)
                self.records.setdefault(rec[self.key], rec)

    def __contains__(self, key: str) -> bool:
        return key in self.records

    def __len__(self) -> int:
        return len(self.records)

    def get(self, key: str) -> dict | None:
        return self.records.get(key)

    def append(self, records: Iterable[dict]) -> int:
        """Write new records (those whose key is not stored yet) durably; return how many were new."""
        fresh = []
        for rec in records:
            k = rec[self.key]
            if k not in self.records:
                line = json.dumps(rec, ensure_ascii=False, sort_keys=True)
                self.records[k] = json.loads(line)  # exactly what a resumed run reads back, so releases agree
                fresh.append(line)
        if not fresh or self.path is None:
            return len(fresh)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        blob = "".join(line + "\n" for line in fresh)
        with self.path.open("a", encoding="utf-8") as fh:
            fh.write(blob)
            fh.flush()
            os.fsync(fh.fileno())
        return len(fresh)


class RunStore:
    """The run directory of one build: samples, executions and the build's state file."""

    def __init__(self, root: Path):
        self.root = root
        root.mkdir(parents=True, exist_ok=True)
        self.samples = JsonlTable(root / "samples.jsonl", "sample_id")
        self.executions = JsonlTable(root / "executions.jsonl", "sample_id")

    @property
    def state_path(self) -> Path:
        return self.root / "state.json"

    def read_state(self) -> dict:
        return json.loads(self.state_path.read_text()) if self.state_path.exists() else {}

    def write_state(self, state: dict) -> None:
        atomic_write(self.state_path, json.dumps(state, indent=1, sort_keys=True) + "\n")


class MemoryStore:
    """The same tables as RunStore, kept in memory: nothing survives the process."""

    def __init__(self):
        self.samples = JsonlTable(None, "sample_id")
        self.executions = JsonlTable(None, "sample_id")
