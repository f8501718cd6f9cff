"""Benchmark suites: a task source + split + metric + comparison mode, identified by a version string and a
content hash of what decides a score (tasks, tests, gold queries and the databases they run on), so two
results are comparable exactly when their suite hashes agree."""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from functools import lru_cache

from codelutra_data.benchmarks.variants import variant_names
from codelutra_data.builders.tasks.adapters import TaskFormatSettings
from codelutra_data.builders.tasks.window import DateWindow
from codelutra_data.errors import UserError
from codelutra_data.records import Task, content_hash
from codelutra_data.sandboxes.settings import resolved_compare_mode

# Bump when grading changes (extraction, harness, comparison rules): older results stop being comparable.
GRADING_VERSION = "eval-v1"


@dataclass
class Suite:
    spec: str  # what the user named: a registered source, a folder or a .jsonl file
    name: str
    split: str
    domain: str
    compare_mode: str
    tasks: list[Task] = field(repr=False)
    version: str = GRADING_VERSION
    hash: str = ""
    revision: str = ""  # a Hub source's commit
    variants: tuple[str, ...] = ()  # test variants graded besides the suite's own tests (EvalPlus's base)
    window: str = ""  # the contest dates graded (LiveCodeBench), `SINCE..UNTIL`; part of the name

    @property
    def headline(self) -> str:
        return "execution_accuracy" if self.domain == "sql" else "pass@1"

    def metric_name(self, k: int) -> str:
        return "execution_accuracy" if (self.domain == "sql" and k == 1) else f"pass@{k}"

    def describe(self) -> dict:
        return {"name": self.name, "spec": self.spec, "split": self.split, "domain": self.domain,
                "compare_mode": self.compare_mode if self.domain == "sql" else "", "version": self.version,
                "hash": self.hash, "tasks": len(self.tasks), **({"revision": self.revision} if self.revision else {}),
                **({"variants": list(self.variants)} if self.variants else {}),
                **({"window": self.window} if self.window else {})}


@lru_cache(maxsize=256)
def _file_digest(path: str, mtime: float, size: int) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def file_digest(path: str) -> str:
    st = os.stat(path)
    return _file_digest(path, st.st_mtime, st.st_size)


def task_fingerprint(task: Task) -> dict:
    """What decides a task's verdicts, without machine-specific paths (a database counts by its content)."""
    context = dict(task.context)
    if "db_path" in context:
        context["db_path"] = file_digest(context["db_path"])
    context.pop("schema", None)  # derived from the database
    return {"task_id": task.task_id, "prompt": task.prompt, "context": context, "reference": task.reference}


def suite_hash(tasks: list[Task], compare_mode: str, revision: str = "") -> str:
    parts = [GRADING_VERSION, compare_mode, [task_fingerprint(t) for t in tasks]]
    return content_hash(*parts, revision) if revision else content_hash(*parts)


def suite_name(spec: str) -> str:
    from codelutra_data.builders.tasks import source_name

    return source_name(spec)


def load_suite(spec: str, split: str | None = None, limit: int | None = None,
               compare_mode: str = "auto", fmt: TaskFormatSettings | None = None,
               window: DateWindow | None = None) -> Suite:
    """Resolve a suite. Without a split, a source's `test` split when it has one (HumanEval, MBPP, Spider by
    database), else all tasks: the number a paper would report. A date window keeps the problems dated in it
    and names the suite `NAME[SINCE..UNTIL]`, so scores on different windows are never ranked together."""
    from codelutra_data.builders.tasks import default_split, load_tasks, require_unique_ids

    every = load_tasks(spec, "all", None, fmt, window, unique=False)
    if split is None:
        split = "test" if any(t.split == "test" for t in every) else default_split(every) or "all"
    tasks = every if split == "all" else [t for t in every if t.split == split]
    if not tasks:
        splits = ", ".join(sorted({t.split for t in every}))
        raise UserError(f"suite {spec!r} has no tasks in split {split!r} (splits: {splits})")
    require_unique_ids(tasks, spec)
    if limit:
        tasks = tasks[:limit]
    domains = {t.domain for t in tasks}
    if len(domains) != 1:
        raise UserError(f"suite {spec!r} mixes domains {sorted(domains)}")
    domain = domains.pop()
    revision = tasks[0].metadata.get("revision", "")
    compare_mode = resolved_compare_mode(tasks, compare_mode)
    label = window.label if window else ""
    suite = Suite(spec=spec, name=suite_name(spec) + (f"[{label}]" if label else ""), split=split, domain=domain,
                  compare_mode=compare_mode, tasks=tasks, revision=revision, variants=variant_names(tasks),
                  window=label)
    suite.hash = suite_hash(tasks, compare_mode if domain == "sql" else "", revision)
    return suite
