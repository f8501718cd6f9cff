"""The one record schema. Every module reads and writes these types; nothing else defines them.

Records are plain dataclasses of JSON/arrow-friendly values (str, int, float, bool, lists, flat dicts), so
they go to JSONL (the run store) and parquet (releases) unchanged. Keys are content hashes of what
determines a record, which is what makes resuming exact.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field, fields
from typing import Any, Literal

Domain = Literal["sql", "python"]
STATUSES = ("passed", "wrong_answer", "syntax_error", "runtime_error", "timeout", "oom", "no_code", "sandbox_error")
Message = dict  # {"role": "system"|"user"|"assistant", "content": str}


def content_hash(*parts: Any, length: int = 16) -> str:
    """Stable hash of JSON-serialisable parts: the key of every record."""
    blob = json.dumps(parts, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()[:length]


class _Record:
    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict):
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})


@dataclass
class Task(_Record):
    """A problem with ground truth. `context` holds what the sandbox needs (SQL: engine, db_path, schema)."""

    task_id: str
    source: str
    domain: str
    prompt: list[Message]
    context: dict
    reference: str
    split: str = "train"
    metadata: dict = field(default_factory=dict)

    @property
    def prompt_hash(self) -> str:
        return content_hash(self.prompt)


@dataclass
class Sample(_Record):
    """One model output for one task, with everything needed to reproduce or audit it."""

    sample_id: str
    task_id: str
    model: str
    model_revision: str
    backend: str
    sampling: dict
    seed: int
    sample_index: int
    prompt_hash: str
    template: str
    raw_output: str
    code: str
    extractor: str
    iteration: int = 0
    round: int = 0  # debug trajectories: 0 is the first attempt, r >= 1 the r-th revision
    parent_id: str = ""  # the sample this one revises ("" for a first attempt)
    prefill: str = "continued"  # "continued": the opened code fence was continued; "fenced": the model was
    # asked for a fenced block instead (a server that does not continue an assistant turn)
    backend_version: str = ""  # the engine that generated it, e.g. "ctranslate2 4.8.5 (float32)"
    tokens: int = -1  # tokens generated, end token included (-1: not reported, e.g. a server's n > 1 answer)
    finish_reason: str = ""  # "stop" (end token or stop string) or "length" (the token budget ran out)


@dataclass
class Execution(_Record):
    """The sandbox's verdict on one sample. `feedback` is bounded and meant to be shown to a model."""

    sample_id: str
    status: str
    tests_passed: int
    tests_total: int
    feedback: str
    error_lines: list[int]
    duration_s: float
    sandbox: str
    limits: dict
    compare_mode: str = ""
    error: str = ""  # the exception (type: message) or the engine's message, without test text
    failing_test: str = ""  # Python: the first failing test's source
    returned: str = ""  # Python wrong answers: a bounded repr of what the tested expression returned
    cpu_s: float = 0.0  # CPU time the program consumed (what the time limit counts); duration_s is wall time
    node: str = ""  # the cluster node that ran it (Ray executor); where, not what: left out of releases
    test_cpu_s: list[float] = field(default_factory=list)  # each step's CPU time, when the job measured them
    # (references of suites with per-test time limits); machine-dependent: left out of releases

    @property
    def pass_rate(self) -> float:
        return self.tests_passed / self.tests_total if self.tests_total else 0.0


@dataclass
class Pair(_Record):
    """A preference pair in TRL's conversational format plus provenance columns."""

    pair_id: str
    prompt: list[Message]
    chosen: list[Message]
    rejected: list[Message]
    task_id: str
    source: str
    domain: str
    split: str
    model: str
    iteration: int
    chosen_status: str
    rejected_status: str
    chosen_pass_rate: float
    rejected_pass_rate: float
    chosen_origin: str
    chosen_sample_id: str
    rejected_sample_id: str
    rejected_error_spans: list[list[int]]
    build_id: str


@dataclass
class Trajectory(_Record):
    """One debug trajectory (CodeFlow / IterPref): attempts on one task, each run, its failure fed back, revised.

    `rounds` holds one dict per attempt: round, sample_id, model, raw_output, code, status, tests_passed,
    tests_total, feedback (the message shown to the reviser; empty for the last attempt when it passed) and
    resubmission_of (the earlier round whose program this one repeats, or -1).
    """

    trajectory_id: str
    task_id: str
    trajectory_index: int
    source: str
    domain: str
    split: str
    model: str
    reviser: str
    rounds: list[dict]
    solved: bool
    solved_round: int  # -1 when unsolved
    stop_reason: str  # passed | max_rounds | repeated | sandbox_error
    resubmissions: int
    feedback_version: str
    build_id: str

    @property
    def attempts(self) -> int:
        return len(self.rounds)
