"""The run store: append-only JSONL files in a run directory, keyed by content hashes.

Every batch is appended and fsynced before the build moves on, so `kill -9` loses at most the batch in
flight. On open, a torn last line (a write cut by the kill) is cut off, and each record's place in the file is
indexed by its key; a resumed build skips every key it finds. Records stay on disk and are read back when asked
for, so what a build holds does not grow with its samples (an offset per key, not the record). DuckDB reads these
files directly (`read_json_auto`) when a summary is needed.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Iterable

from codelutra_data.files import atomic_write

_LENGTH_BITS = 32  # a record's place packed in one int: offset << 32 | length (lines under 4 GiB)


class JsonlTable:
    """One append-only table: a JSONL file whose records carry a unique key field (in memory only when
    `path` is None, for library callers that keep no run directory)."""

    def __init__(self, path: Path | None, key: str):
        self.path = path
        self.key = key
        self._memory: dict[str, dict] = {}  # path is None: the records themselves
        self._places: dict[str, int] = {}  # on disk: where each record's line is
        self._size = 0
        self._reader = None
        if path is not None and path.exists():
            self._load()

    def _load(self) -> None:
        offset = 0
        with self.path.open("rb") as fh:
            for line in fh:
                if not line.endswith(b"\n"):  # a torn write from a killed run: drop the partial line
                    break
                if line.strip():
                    self._places.setdefault(json.loads(line)[self.key], offset << _LENGTH_BITS | len(line))
                offset += len(line)
        if offset != self.path.stat().st_size:
            with self.path.open("r+b") as fh:
                fh.truncate(offset)
        self._size = offset

    def __contains__(self, key: str) -> bool:
        return key in (self._memory if self.path is None else self._places)

    def __len__(self) -> int:
        return len(self._memory if self.path is None else self._places)

    def get(self, key: str) -> dict | None:
        if self.path is None:
            return self._memory.get(key)
        place = self._places.get(key)
        if place is None:
            return None
        if self._reader is None:
            self._reader = self.path.open("rb", buffering=0)
        self._reader.seek(place >> _LENGTH_BITS)
        return json.loads(self._reader.read(place & ((1 << _LENGTH_BITS) - 1)))

    def append(self, records: Iterable[dict]) -> int:
        """Write new records (those whose key is not stored yet) durably; return how many were new. A record
        reads back as JSON does (`get` parses the line written), so a resumed run and this one agree."""
        fresh: dict[str, bytes] = {}
        for rec in records:
            k = rec[self.key]
            if k not in self and k not in fresh:
                fresh[k] = (json.dumps(rec, ensure_ascii=False, sort_keys=True) + "\n").encode("utf-8")
        if not fresh:
            return 0
        if self.path is None:
            self._memory.update((k, json.loads(line)) for k, line in fresh.items())
            return len(fresh)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("ab") as fh:
            fh.write(b"".join(fresh.values()))
            fh.flush()
            os.fsync(fh.fileno())
        for k, line in fresh.items():  # indexed only once durable
            self._places[k] = self._size << _LENGTH_BITS | len(line)
            self._size += len(line)
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
