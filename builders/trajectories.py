"""CodeFlow-style debug trajectories: sample, run, feed the failure back, revise, run again.

Round 0 is an ordinary sample (the same key, prompt and batching as the pair builder). Each later round
takes every trajectory still open, builds the feedback on its last attempt and the conversation so far,
and asks the reviser for a fix: one batched generate call per chunk of `batch_size` trajectories across all
tasks, never one per task. Every attempt is executed and recorded in the store before the next chunk, so a
killed build resumes where it was: keys are content hashes of everything that determines an attempt, and
whatever is already stored is neither generated nor executed again.

A trajectory stops at its first pass, after `max_rounds` revisions, after `max_repeats` resubmissions in a
row (a program identical to an earlier attempt is not run again: its verdict is reused, it stays out of the
chat and the reviser is told it repeated itself), or when the sandbox (not the program) failed.

While it runs, a trajectory holds only each round's key, verdict and program fingerprint; its programs, raw
outputs and feedback are read back from the store when a revision prompt or the finished trajectory needs them,
so what a build holds grows by a few hundred bytes a round, not by the text of every attempt.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable, Iterable, Iterator, NamedTuple, Sequence

from codelutra_data.builders.code_equivalence import canonical
from codelutra_data.builders.executors import Executor, generated_chunks
from codelutra_data.builders.extract import EXTRACTORS
from codelutra_data.builders.feedback import (attempts_shown, conversation, feedback_id, feedback_message,
                                               repeat_notice)
from codelutra_data.builders.pipeline import sample_and_execute
from codelutra_data.builders.sampling import PREFILLS
from codelutra_data.models.base import Backend, GenerationWork, SamplingParams
from codelutra_data.records import Execution, Sample, Task, Trajectory, content_hash
from codelutra_data.store import MemoryStore

STOP_REASONS = ("passed", "max_rounds", "repeated", "sandbox_error")


@dataclass(frozen=True)
class TrajectoryOptions:
    trajectories_per_task: int = 1
    max_rounds: int = 5  # revisions after the first attempt
    seed: int = 0
    batch_size: int = 32  # sequences per generate call
    max_repeats: int = 2  # resubmissions in a row that close a trajectory
    overlap: bool = False  # generate the next chunk while this one executes (same records)


@dataclass(frozen=True)
class RoundProgress:
    """Reported after every chunk: which round, how many trajectories are still open, solved so far."""

    round: int
    open: int
    solved: int
    trajectories: int
    new_samples: int
    statuses: tuple[str, ...]


class _Round(NamedTuple):
    round: int
    sample_id: str
    status: str
    resubmission_of: int
    fingerprint: str  # of the program's canonical form; empty for an empty program


@dataclass
class _State:
    task: Task
    index: int
    rounds: list[_Round] = field(default_factory=list)
    stop: str = ""
    repeats: int = 0

    @property
    def open(self) -> bool:
        return not self.stop


def revision_key(parent: Sample, prompt: list[dict], reviser: Backend, sampling: SamplingParams, seed: int,
                 round_: int, domain: str) -> str:
    """Everything that determines a revision: the attempt it revises (whose key carries the task, model
    and sampling), the full conversation shown to the reviser, the reviser and its sampling."""
    return content_hash("revision", parent.sample_id, content_hash(prompt), reviser.name, reviser.ref.model_id,
                        reviser.ref.revision, sampling.to_dict(), seed, round_, feedback_id(),
                        EXTRACTORS[domain][0])


def revision_prompt(state: _State, store) -> list[dict]:
    """The chat so far (task, attempt, feedback + 'fix it', ...) with the answer opened by a code fence."""
    chat = conversation(state.task, attempts_shown(_full_rounds(state, store)))
    return chat + [{"role": "assistant", "content": PREFILLS[state.task.domain]}]


def _full_rounds(state: _State, store) -> list[dict]:
    """Every round of a trajectory as its record shows it, read back from the store."""
    return [_round_record(state.task, Sample.from_dict(store.samples.get(r.sample_id)),
                          Execution.from_dict(store.executions.get(r.sample_id)), r.resubmission_of)
            for r in state.rounds]


def _round_record(task: Task, sample: Sample, execution: Execution, repeat_of: int) -> dict:
    if execution.status == "passed":
        feedback = ""
    elif repeat_of >= 0:
        feedback = repeat_notice(task.domain, repeat_of + 1)
    else:
        feedback = feedback_message(task, sample.code, execution)
    return {"round": sample.round, "sample_id": sample.sample_id, "model": sample.model,
            "raw_output": sample.raw_output, "code": sample.code, "status": execution.status,
            "tests_passed": execution.tests_passed, "tests_total": execution.tests_total,
            "feedback": feedback, "resubmission_of": repeat_of}


def _fingerprint(code: str, domain: str) -> str:
    return content_hash("canonical", canonical(code, domain)) if code.strip() else ""


def _advance(state: _State, sample: Sample, execution: Execution, repeat_of: int, max_rounds: int,
             max_repeats: int) -> None:
    state.rounds.append(_Round(sample.round, sample.sample_id, execution.status, repeat_of,
                               _fingerprint(sample.code, state.task.domain)))
    state.repeats = state.repeats + 1 if repeat_of >= 0 else 0
    if execution.status == "passed":
        state.stop = "passed"
    elif execution.status == "sandbox_error":
        state.stop = "sandbox_error"  # the sandbox failed, not the program: nothing to tell the reviser
    elif state.repeats >= max_repeats:
        state.stop = "repeated"
    elif sample.round >= max_rounds:
        state.stop = "max_rounds"


def _repeat_of(state: _State, code: str) -> int:
    """The earlier round whose program this one repeats (same canonical form), or -1."""
    key = _fingerprint(code, state.task.domain)
    if not key:
        return -1
    return next((r.round for r in state.rounds if r.fingerprint == key), -1)


def run_trajectories(tasks: Sequence[Task], backend: Backend, executor: Executor, sampling: SamplingParams,
                     options: TrajectoryOptions, *, reviser: Backend | None = None, store=None,
                     timeouts: dict[str, float] | None = None, build_id: str = "",
                     progress: Callable[[RoundProgress], None] | None = None,
                     timing: dict[str, float] | None = None) -> "Trajectories":
    """Debug trajectories for `tasks`: `backend` writes the first attempts, `reviser` (default: the same
    backend) the fixes. `store` (a RunStore, or in memory when None) makes the run resumable; `timing`
    accumulates generation and execution seconds. The result is read back from the store each time it is
    iterated."""
    reviser = reviser or backend
    store = store if store is not None else MemoryStore()
    timing = timing if timing is not None else {}
    timing.setdefault("generation_s", 0.0)
    timing.setdefault("execution_s", 0.0)
    n = options.trajectories_per_task
    states = [_State(task, i) for task in tasks for i in range(n)]
    by_task: dict[str, list[_State]] = {}
    for state in states:
        by_task.setdefault(state.task.task_id, []).append(state)
    task_of = {t.task_id: t for t in tasks}

    def report(round_: int, new: int, statuses: list[str]) -> None:
        if progress:
            progress(RoundProgress(round_, sum(s.open for s in states), sum(s.stop == "passed" for s in states),
                                   len(states), new, tuple(statuses)))

    def execute(samples: list[Sample], repeats: dict[str, int]) -> None:
        """Run the samples not yet executed; a resubmission reuses the verdict of the attempt it repeats."""
        pending, copies = [], []
        for s in samples:
            if s.sample_id in store.executions:
                continue
            if repeats.get(s.sample_id, -1) >= 0:
                state = by_task[s.task_id][s.sample_index]
                earlier = Execution.from_dict(store.executions.get(state.rounds[repeats[s.sample_id]].sample_id))
                copies.append(Execution.from_dict({**earlier.to_dict(), "sample_id": s.sample_id, "duration_s": 0.0}))
            else:
                pending.append(s)
        if copies:
            store.executions.append(e.to_dict() for e in copies)
        if pending:
            t0 = time.monotonic()
            results = executor.run([(task_of[s.task_id], s.sample_id, s.code) for s in pending], timeouts)
            timing["execution_s"] += time.monotonic() - t0
            store.executions.append(e.to_dict() for e in results)

    # Round 0: ordinary samples, chunked by task exactly as the pair builder does.
    def first_attempts(chunk: list[Task], samples: list[Sample], new: int, _executed: int) -> None:
        for s in samples:
            _advance(by_task[s.task_id][s.sample_index], s, Execution.from_dict(store.executions.get(s.sample_id)),
                     -1, options.max_rounds, options.max_repeats)
        report(0, new, [store.executions.get(s.sample_id)["status"] for s in samples])

    sample_and_execute(executor, backend, tasks, n, sampling, options.seed, options.batch_size, store, timeouts or {},
                       timing, first_attempts, options.overlap)

    # Rounds 1..max_rounds: revisions of every open trajectory, batched across tasks; a round's chunks are
    # independent, so they are generated together (in parallel on a cluster) and advanced as each finishes.
    for round_ in range(1, options.max_rounds + 1):
        open_states = [s for s in states if s.open]
        if not open_states:
            break
        chunks = []
        for start in range(0, len(open_states), options.batch_size):
            chunk = open_states[start:start + options.batch_size]
            prompts = [revision_prompt(s, store) for s in chunk]
            parents = [Sample.from_dict(store.samples.get(s.rounds[-1].sample_id)) for s in chunk]
            chunk_keys = [revision_key(p, prompt, reviser, sampling, options.seed, round_, s.task.domain)
                          for p, prompt, s in zip(parents, prompts, chunk)]
            chunks.append((chunk, prompts, parents, chunk_keys))

        def revised(chunk, chunk_keys, new: int) -> None:
            samples = [Sample.from_dict(store.samples.get(k)) for k in chunk_keys]
            repeats = {s.sample_id: _repeat_of(state, s.code) for s, state in zip(samples, chunk)}
            execute(samples, repeats)
            for s, state in zip(samples, chunk):
                _advance(state, s, Execution.from_dict(store.executions.get(s.sample_id)), repeats[s.sample_id],
                         options.max_rounds, options.max_repeats)
            report(round_, new, [store.executions.get(s.sample_id)["status"] for s in samples])

        missing = [c for c in chunks if any(k not in store.samples for k in c[3])]
        for c in chunks:
            if not any(c is m for m in missing):
                revised(c[0], c[3], 0)
        works = [GenerationWork(prompts, 1, sampling, int(content_hash(options.seed, round_, chunk_keys), 16) % (2**31))
                 for _, prompts, _, chunk_keys in missing]
        for i, outputs in generated_chunks(executor, reviser, works, timing, options.overlap):
            chunk, prompts, parents, chunk_keys = missing[i]
            fresh = []
            for state, prompt, parent, key, completions in zip(chunk, prompts, parents, chunk_keys, outputs):
                raw = PREFILLS[state.task.domain] + completions[0].text
                extractor, extract = EXTRACTORS[state.task.domain]
                fresh.append(Sample(
                    sample_id=key, task_id=state.task.task_id, model=reviser.ref.model_id,
                    model_revision=reviser.ref.revision, backend=reviser.name, sampling=sampling.to_dict(),
                    seed=options.seed, sample_index=state.index, prompt_hash=content_hash(prompt),
                    template=feedback_id(), raw_output=raw, code=extract(raw) or "", extractor=extractor,
                    iteration=parent.iteration, round=round_, parent_id=parent.sample_id,
                    prefill=completions[0].prefill, backend_version=reviser.version,
                    tokens=completions[0].tokens, finish_reason=completions[0].finish_reason))
            revised(chunk, chunk_keys, store.samples.append(s.to_dict() for s in fresh))
    return Trajectories(states, store, backend, reviser, build_id)


class Trajectories:
    """A finished run's trajectories, in task order: each iteration reads them back from the store one at a time,
    so no caller needs every trajectory's text at once. `keys()` and `solved()` need no reading."""

    def __init__(self, states: list[_State], store, backend: Backend, reviser: Backend, build_id: str):
        self._states, self._store = states, store
        self._backend, self._reviser, self._build_id = backend, reviser, build_id

    def __len__(self) -> int:
        return len(self._states)

    def __iter__(self) -> Iterator[Trajectory]:
        return (self._trajectory(s) for s in self._states)

    def keys(self) -> list[tuple[Task, str]]:
        """(task, sample id) of every attempt, in order."""
        return [(s.task, r.sample_id) for s in self._states for r in s.rounds]

    def solved(self) -> int:
        return sum(any(r.status == "passed" for r in s.rounds) for s in self._states)

    def _trajectory(self, state: _State) -> Trajectory:
        solved_round = next((r.round for r in state.rounds if r.status == "passed"), -1)
        task = state.task
        return Trajectory(
            trajectory_id=content_hash(self._build_id, task.task_id, state.index,
                                       [r.sample_id for r in state.rounds]),
            task_id=task.task_id, trajectory_index=state.index, source=task.source, domain=task.domain,
            split=task.split, model=self._backend.ref.model_id, reviser=self._reviser.ref.model_id,
            rounds=_full_rounds(state, self._store), solved=solved_round >= 0, solved_round=solved_round,
            stop_reason=state.stop, resubmissions=sum(r.resubmission_of >= 0 for r in state.rounds),
            feedback_version=feedback_id(), build_id=self._build_id)


def sft_messages(task: Task, trajectory: Trajectory) -> list[dict]:
    """The conversation of a solved trajectory exactly as the reviser saw it before its fix (task, attempt,
    feedback + 'fix it', ...), then the passing program."""
    rounds = trajectory.rounds
    messages = conversation(task, attempts_shown(rounds[:-1]))
    return messages + [{"role": "assistant", "content": rounds[-1]["raw_output"]}]


def trajectory_stats(trajectories: Iterable[Trajectory], max_rounds: int) -> dict:
    """First-try and cumulative solve rates per round, the rounds histogram, stop reasons, resubmissions (one pass:
    `trajectories` may be read back from a store)."""
    count = resubmissions = attempts = unsolved = 0
    solved_at, tasks, first, final, stops = [], set(), set(), set(), {r: 0 for r in STOP_REASONS}
    for t in trajectories:
        count += 1
        resubmissions += t.resubmissions
        attempts += t.attempts
        tasks.add(t.task_id)
        stops[t.stop_reason] = stops.get(t.stop_reason, 0) + 1
        if t.solved:
            solved_at.append(t.solved_round)
            final.add(t.task_id)
        else:
            unsolved += 1
        if t.solved_round == 0:
            first.add(t.task_id)
    total = count or 1
    cumulative = [round(sum(1 for r in solved_at if r <= k) / total, 4) for k in range(max_rounds + 1)]
    histogram = {str(k): sum(1 for r in solved_at if r == k) for k in range(max_rounds + 1)}
    histogram["unsolved"] = unsolved
    return {
        "trajectories": count,
        "first_try_pass_rate": cumulative[0] if cumulative else 0.0,
        "final_solve_rate": round(len(solved_at) / total, 4),
        "cumulative_solve_rate": cumulative,
        "solved_round_histogram": histogram,
        "stop_reasons": {r: stops[r] for r in STOP_REASONS},
        "resubmissions": resubmissions,
        "attempts": attempts,
        "tasks_solved_first_try": len(first),
        "tasks_solved": len(final),
        "task_first_try_solve_rate": round(len(first) / (len(tasks) or 1), 4),
        "task_final_solve_rate": round(len(final) / (len(tasks) or 1), 4),
    }
