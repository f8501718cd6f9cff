"""Contamination checks: which tasks share text with a benchmark.

The rule is the 13-gram convention (GPT-3's appendix C, lm-evaluation-harness's `Janitor`, used by BigCode and
OpenCoder reports): text lowercased (ASCII), punctuation deleted, split on whitespace; a task overlaps a suite
when any 13 consecutive words of its problem statement or reference solution also occur, in order, in the
problem statement or reference of one of the suite's tasks. The templates our prompts add are never part of the
text: only what the task set itself says (`problem_text`)."""

from __future__ import annotations

import string
from dataclasses import dataclass, field
from typing import Iterable

from codelutra_data.errors import UserError
from codelutra_data.records import Task

N = 13
_TABLE = str.maketrans(string.ascii_uppercase, string.ascii_lowercase, string.punctuation)


def words(text: str) -> list[str]:
    return text.translate(_TABLE).split()


def ngrams(text: str, n: int = N) -> set[tuple[str, ...]]:
    tokens = words(text)
    return {tuple(tokens[i:i + n]) for i in range(len(tokens) - n + 1)}


def problem_text(task: Task) -> str:
    """What a task set says about a task: its problem statement (as the source gives it) and its reference."""
    meta = task.metadata
    statement = meta.get("problem") or meta.get("question") or meta.get("code_prompt") or ""
    if not statement:  # a task made before problem statements were recorded: its last user message
        statement = next((m["content"] for m in reversed(task.prompt) if m.get("role") == "user"), "")
    return statement + "\n" + task.reference


@dataclass
class Overlap:
    """One suite's overlap with a set of tasks."""

    suite: str
    suite_tasks: int
    overlapping: dict[str, list[str]] = field(default_factory=dict)  # task id -> ids of the suite's tasks it overlaps

    def describe(self, dropped: bool) -> dict:
        return {"suite": self.suite, "suite_tasks": self.suite_tasks, "overlapping": len(self.overlapping),
                "tasks": sorted(self.overlapping), "dropped": dropped}


def overlap(tasks: Iterable[Task], suite: str, suite_tasks: list[Task]) -> Overlap:
    index: dict[tuple[str, ...], set[str]] = {}
    for other in suite_tasks:
        for gram in ngrams(problem_text(other)):
            index.setdefault(gram, set()).add(other.task_id)
    found = Overlap(suite, len(suite_tasks))
    for task in tasks:
        hits: set[str] = set()
        for gram in ngrams(problem_text(task)):
            hits |= index.get(gram, set())
        if hits:
            found.overlapping[task.task_id] = sorted(hits)[:10]
    return found


def parse_suites(text: str) -> list[str]:
    names = [s.strip() for s in text.split(",") if s.strip()]
    if len(set(names)) != len(names):
        raise UserError(f"--decontaminate names a suite twice: {text!r}")
    return names


def suite_tasks(spec: str) -> list[Task]:
    """The tasks a suite grades (its default split), as `eval --suite SPEC` would load them."""
    from codelutra_data.builders.tasks import default_split, load_tasks

    every = load_tasks(spec, "all", unique=False)
    graded = [t for t in every if t.split == (default_split(every) or "test")]
    return graded or every


def default_suites() -> list[str]:
    """Suites every build's card reports on without being asked: those readable here without a download (bundled,
    or fetched before)."""
    from codelutra_data.builders.tasks import hub, registered

    cached = {(c["repo"], c["commit"]) for c in hub.cached_sets()}
    names = []
    for name, info in registered().items():
        if not info.hub:
            names.append(name)
            continue
        spec = hub.parse(info.hub)
        if (spec.repo, spec.revision) in cached:
            names.append(name)
    return names


def check(tasks: list[Task], named: list[str], source: str) -> tuple[list[Task], list[dict]]:
    """The tasks left after dropping those that overlap a named suite, and the report of every suite checked (the
    named ones, and the ones readable here, which are reported but not dropped). A suite that is the build's own
    source is compared on its test split only, so a train split does not count against itself."""
    reports, drop = [], set()
    for name in named + [n for n in default_suites() if n not in named]:
        if name in named:
            others = suite_tasks(name)  # a named suite that cannot be read is the user's error: one line
        else:
            try:
                others = suite_tasks(name)
            except UserError:
                continue
        mine = tasks if name != source else [t for t in tasks if t.split != "test"]
        found = overlap(mine, name, others)
        reports.append(found.describe(name in named))
        if name in named:
            drop |= set(found.overlapping)
    return [t for t in tasks if t.task_id not in drop], reports
