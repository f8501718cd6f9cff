"""The path `build` and `eval` share: check the tasks' reference solutions (a source whose references fail
cannot grade anything) and refuse it below the pass-rate gate, then sample in chunks and execute each chunk as it
arrives, keeping every record in a store keyed by what determines it (so a killed build resumes exactly)."""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from typing import Callable, Sequence

from codelutra_data.builders.executors import Executor, generated_chunks
from codelutra_data.builders.sampling import generation_work, sample_key, samples_from
from codelutra_data.errors import UserError
from codelutra_data.models.base import SamplingParams
from codelutra_data.records import Execution, Sample, Task
from codelutra_data.sandboxes.limits import REFERENCE_CPU_FACTOR, SAMPLE_CPU_FACTOR


@dataclass
class References:
    """Every task's reference solution, run."""

    tasks: list[Task]
    executions: list[Execution | None]  # None: the task has no reference (LiveCodeBench ships none)
    seconds: float

    @property
    def failures(self) -> list[tuple[Task, Execution]]:
        return [(t, e) for t, e in zip(self.tasks, self.executions) if e is not None and e.status != "passed"]

    @property
    def unchecked(self) -> int:
        """Tasks without a reference solution: nothing proves them gradable, and nothing fails the gate."""
        return sum(e is None for e in self.executions)

    @property
    def pass_rate(self) -> float:
        checked = len(self.tasks) - self.unchecked
        return 1 - len(self.failures) / checked if checked else 1.0

    def require(self, min_rate: float, what: str, advice: str) -> None:
        """The pass-rate gate: one line naming the first failure and what to do about it."""
        if self.pass_rate >= min_rate:
            return
        missing = self.missing_libraries()
        if missing:
            count = sum(1 for _, e in self.failures if _missing_module(e.feedback))
            names = ", ".join(f"{name} ({n})" for name, n in missing[:8]) + (", ..." if len(missing) > 8 else "")
            raise UserError(f"{what} pass on only {self.pass_rate:.1%} of {len(self.tasks)} tasks: {count} need "
                            f"libraries the sandbox's Python lacks: {names}; run them under an environment that has "
                            f"them (--sandbox-python PATH), or {advice}")
        task, execution = self.failures[0]
        feedback = " ".join(execution.feedback.split())[:120]
        raise UserError(f"{what} pass on only {self.pass_rate:.1%} of {len(self.tasks)} tasks (first: {task.task_id}: "
                        f"{execution.status}: {feedback}); {advice}")

    def missing_libraries(self) -> list[tuple[str, int]]:
        """Top-level modules the failing references could not import, most needed first."""
        counts: dict[str, int] = {}
        for _, execution in self.failures:
            name = _missing_module(execution.feedback)
            if name:
                counts[name] = counts.get(name, 0) + 1
        return sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))

    @classmethod
    def check(cls, executor: Executor, tasks: Sequence[Task],
              progress: Callable[[Execution], None] | None = None) -> "References":
        started = time.monotonic()
        executions = check_references(executor, tasks, progress)
        return cls(list(tasks), executions, time.monotonic() - started)

    def timeouts(self, floor_s: float) -> dict[str, float]:
        """Per-task CPU limits scaled to the reference's own CPU time (never below the configured limit), so a
        slow-but-correct program on a heavy task is not a timeout. A task whose suite limits each test (its
        `time_rule`: EvalPlus's factor times the reference's time on that test, never below the floor) gets
        those limits in `context["step_cpu_s"]`, and a whole-program limit that fits them (at most `cap`)."""
        limits = {}
        for task, execution in zip(self.tasks, self.executions):
            if execution is None:  # no reference to measure: the suite's own limit (LiveCodeBench: 6 s a test)
                limits[task.task_id] = max(floor_s, float(task.context.get("job_cpu_s") or 0))
                continue
            limit = max(floor_s, round(SAMPLE_CPU_FACTOR * execution.cpu_s, 2),
                        float(task.context.get("job_cpu_s") or 0))  # a suite's own limit (BigCodeBench: 240 s)
            rule = task.context.get("time_rule")
            if rule and execution.test_cpu_s and len(execution.test_cpu_s) == len(task.context["tests"]):
                steps = [round(max(rule["floor_s"], rule["factor"] * t), 3) for t in execution.test_cpu_s]
                task.context["step_cpu_s"] = steps
                limit = max(limit, round(min(rule["cap_s"], sum(steps)) + 1, 2))
            limits[task.task_id] = limit
        return limits


def _missing_module(feedback: str) -> str | None:
    match = re.search(r"(?:ModuleNotFoundError|ImportError): No module named '([\w.]+)'", feedback)
    return match.group(1).split(".")[0] if match else None


def check_references(executor: Executor, tasks: Sequence[Task],
                     progress: Callable[[Execution | None], None] | None = None) -> list[Execution | None]:
    """Run every task's reference solution, with REFERENCE_CPU_FACTOR times the sandbox's CPU limit (trusted code,
    run only to prove the task gradable). A task without a reference gets None."""
    checked = [i for i, t in enumerate(tasks) if t.reference]
    items = [(tasks[i], f"reference:{tasks[i].task_id}", tasks[i].reference) for i in checked]
    budget = {t.task_id: executor.settings.cpu_time_s * REFERENCE_CPU_FACTOR for t in tasks}
    out: list = [None] * len(tasks)
    for i, execution in executor.run_iter(items, budget) if items else ():
        out[checked[i]] = execution
        if progress:
            progress(execution)
    if progress:
        for _ in range(len(tasks) - len(checked)):
            progress(None)
    return out


ChunkDone = Callable[[list[Task], list[Sample], int, int], None]  # (tasks, their samples, new samples, new executions)


def sample_and_execute(executor: Executor, backend, tasks: Sequence[Task], n: int, sampling: SamplingParams,
                       seed: int, batch_size: int, store, timeouts: dict[str, float], timing: dict,
                       chunk_done: ChunkDone, overlap: bool = False) -> dict[str, list[str]]:
    """n samples per task, generated in chunks of `batch_size` sequences and executed chunk by chunk; the sample
    keys per task are returned. Chunks whose samples are all in `store` (a resumed build) come first, then the
    others as the executor finishes them; nothing stored is generated or executed again. With `overlap` the next
    chunk generates while this one executes (executors.base.generated_chunks); the records are the same."""
    timing.setdefault("execution_s", 0.0)
    per_chunk = max(1, batch_size // n)
    keys = {t.task_id: [sample_key(t, backend.name, backend.ref.model_id, backend.ref.revision, sampling, seed, i, 0)
                        for i in range(n)] for t in tasks}
    chunks = [list(tasks[i:i + per_chunk]) for i in range(0, len(tasks), per_chunk)]
    missing = [c for c in chunks if any(k not in store.samples for t in c for k in keys[t.task_id])]

    def finish(chunk: list[Task], new_samples: int) -> None:
        samples = [Sample.from_dict(store.samples.get(k)) for t in chunk for k in keys[t.task_id]]
        pending = [s for s in samples if s.sample_id not in store.executions]
        if pending:
            by_id = {t.task_id: t for t in chunk}
            t0 = time.monotonic()
            executions = executor.run([(by_id[s.task_id], s.sample_id, s.code) for s in pending], timeouts)
            timing["execution_s"] += time.monotonic() - t0
            store.executions.append(e.to_dict() for e in executions)
        chunk_done(chunk, samples, new_samples, len(pending))

    for chunk in chunks:
        if not any(chunk is c for c in missing):
            finish(chunk, 0)
    works = [generation_work(c, n, sampling, seed) for c in missing]
    for i, outputs in generated_chunks(executor, backend, works, timing, overlap):
        fresh = samples_from(backend, missing[i], outputs, sampling, seed)
        finish(missing[i], store.samples.append(s.to_dict() for s in fresh))
    return keys
