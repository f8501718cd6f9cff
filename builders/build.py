"""`build`: tasks -> samples -> executions -> pairs (or debug trajectories and focal pairs) -> a versioned release,
resumable at every step. The configuration is `build_config.BuildConfig`; the shared preparation (references,
gate, run store) is here, the sampling and execution loop is `pipeline`'s."""

from __future__ import annotations

import json
import tempfile
import time
from collections import Counter
import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from codelutra_data.builders import decontaminate, release
from codelutra_data.builders.build_config import BuildConfig
from codelutra_data.builders.executors import Executor, make_executor, overlap_choice
from codelutra_data.builders.pairs import REASONS, PairOptions, make_pairs
from codelutra_data.builders.pipeline import References, sample_and_execute
from codelutra_data.builders.tasks import load_tasks, pinned_spec
from codelutra_data.errors import UserError
from codelutra_data.machine import cpu_name, default_threads
from codelutra_data.models.engine import LazyBackend, generation_stats
from codelutra_data.models.spec import resolve
from codelutra_data.records import Execution, Sample, Task, content_hash
from codelutra_data.sandboxes.settings import resolved_compare_mode
from codelutra_data.store import RunStore


@dataclass
class BuildResult:
    release_dir: Path
    stats: dict


@dataclass
class _Tally:
    """What the stats say about every sample, counted in one pass instead of holding the samples."""

    samples: int = 0
    statuses: Counter = dataclasses.field(default_factory=Counter)
    versions: set = dataclasses.field(default_factory=set)

    def add(self, sample: Sample, execution: Execution) -> None:
        self.samples += 1
        self.statuses[execution.status] += 1
        self.versions.add(sample.backend_version)


@dataclass
class _Prepared:
    """What both modes start from: checked tasks, their time limits, the open sandboxes and the run store."""

    cfg: BuildConfig
    name: str
    version: str
    release_dir: Path
    tasks: list[Task]
    domain: str
    backend: LazyBackend
    reviser: LazyBackend | None
    executor: Executor
    references: References
    timeouts: dict[str, float]
    store: RunStore
    build_id: str
    timing: dict[str, float]
    contamination: list[dict]
    overlap: tuple[bool, str]  # whether the next chunk generates while this one executes, and why

    @property
    def backends(self) -> list[LazyBackend]:
        return [self.backend] + ([self.reviser] if self.reviser else [])


def run_build(cfg: BuildConfig, progress=None, on_start=None) -> BuildResult:
    """Run (or resume) a build and write its release. `progress` is an optional callback (see commands):
    called with (tasks, samples, statuses) per chunk in pairs mode, with a RoundProgress in trajectories mode."""
    t_start = time.monotonic()
    p = _prepare(cfg, on_start)
    try:
        build = _build_trajectories if p.cfg.mode == "trajectories" else _build_pairs
        result = build(p, progress, t_start)
    finally:
        p.executor.close()
    p.store.write_state({**p.store.read_state(), "finished": True, "release": str(result.release_dir)})
    return result


def _prepare(cfg: BuildConfig, on_start=None) -> _Prepared:
    """Validate, load tasks, refuse a bad resume, check every reference, open the run store."""
    cfg.validate()
    name = cfg.release_name
    version = release.choose_version(name, cfg.runs_dir, cfg.releases_dir, cfg.version, cfg.resume)
    release_dir = Path(cfg.releases_dir) / name / version
    if release_dir.exists():
        raise UserError(f"release {release_dir} already exists and is never overwritten: choose another --version")
    tasks = load_tasks(cfg.tasks, cfg.split, cfg.limit or None, cfg.task_format)
    named = decontaminate.parse_suites(cfg.decontaminate)
    tasks, contamination = decontaminate.check(tasks, named, cfg.tasks)
    if not tasks:
        raise UserError(f"every task of {cfg.tasks!r} overlaps {', '.join(named)}: nothing is left to build from")
    # a Hub source is recorded (build id, build_config.yaml, card) at the commit it came from, so a resume never
    # moves to newer data and a release names exactly its tasks
    # and `--compare-mode auto` as the source's own rule, which the card states
    sandbox = dataclasses.replace(cfg.sandbox, compare_mode=resolved_compare_mode(tasks, cfg.sandbox.compare_mode))
    cfg = BuildConfig(**{**cfg.__dict__, "tasks": pinned_spec(cfg.tasks, cfg.task_format), "sandbox": sandbox})
    domains = sorted({t.domain for t in tasks})
    if len(domains) != 1:
        raise UserError(f"a build takes tasks of one domain; {cfg.tasks!r} mixes {', '.join(domains)}")
    timing = {"generation_s": 0.0, "execution_s": 0.0, "model_load_s": 0.0}
    backend = LazyBackend(cfg.model, cfg.engine, timing)
    cfg = BuildConfig(**{**cfg.__dict__, "engine": backend.engine})  # `auto` resolved: what the release records
    reviser = LazyBackend(cfg.reviser, cfg.engine, timing) if cfg.reviser else None  # an unknown reviser fails now
    if cfg.mode == "trajectories" and cfg.tokenizer:
        resolve(cfg.tokenizer, prepare=False)  # an unknown tokenizer fails now, not after the sampling
    if cfg.mode != "trajectories" or (reviser and reviser.model_spec == cfg.model):
        reviser = None
    run_dir = Path(cfg.runs_dir) / name / version
    if (run_dir / "state.json").exists():
        state = RunStore(run_dir).read_state()
        if not cfg.resume:
            raise UserError(f"an unfinished build exists at {run_dir}: rerun with --resume to continue it "
                            f"(or delete that folder to start over)")
        if state.get("config") != cfg.determining():
            old, new = state.get("config", {}), cfg.determining()
            diff = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
            raise UserError(f"--resume with a different configuration than the run at {run_dir} "
                            f"(differs in: {', '.join(diff)})")
    executor = make_executor(cfg.sandbox, cfg.where)
    try:
        references = References.check(executor, tasks)
        references.require(cfg.min_reference_pass_rate, "reference solutions",
                           f"run `codelutra-data doctor --tasks {cfg.tasks}` for the list, or lower "
                           f"--min-reference-pass-rate")
    except BaseException:
        executor.close()
        raise
    timing["reference_check_s"] = references.seconds
    timeouts = references.timeouts(cfg.sandbox.cpu_time_s)
    failed_ids = {t.task_id for t, _ in references.failures}
    tasks = [t for t in tasks if t.task_id not in failed_ids]
    if on_start:
        on_start(len(tasks))
    store = RunStore(run_dir)
    build_id = content_hash(name, version, cfg.determining())
    store.write_state({"config": cfg.determining(), "name": name, "version": version, "build_id": build_id,
                       "finished": False})
    overlap = overlap_choice(cfg.where.overlap, backend, executor)
    return _Prepared(cfg, name, version, release_dir, tasks, domains[0], backend, reviser, executor, references,
                     timeouts, store, build_id, timing, contamination, overlap)


def _common_stats(p: _Prepared, tally: _Tally, sandbox_name: str, resumed: int, t_start: float) -> dict:
    statuses = tally.statuses
    timing = p.timing
    timing["total_s"] = time.monotonic() - t_start
    # overlapped generation ran while execution did: counted once in the total, so added back here
    timing["bookkeeping_s"] = (timing["total_s"] + 2 * timing.get("overlapped_s", 0.0)
                               - sum(v for k, v in timing.items() if k != "total_s"))
    return {
        "tasks": len(p.tasks), "samples": tally.samples,
        "pass_rate": statuses.get("passed", 0) / tally.samples if tally.samples else 0.0,
        "status_histogram": dict(sorted(statuses.items())),
        "resumed_samples": resumed,
        "reference_pass_rate": round(p.references.pass_rate, 4),
        **({"tasks_without_reference": p.references.unchecked} if p.references.unchecked else {}),
        "tasks_dropped_failing_reference": sorted(t.task_id for t, _ in p.references.failures),
        "contamination": p.contamination,
        "sandbox": sandbox_name,
        "timing": {k: round(v, 2) for k, v in timing.items()},
        "cpu": cpu_name(), "threads": p.cfg.engine.threads or default_threads(), "executor": p.executor.describe(),
        "generation": {**generation_stats(p.backends, tally.versions, timing["generation_s"]),
                       "overlap": p.overlap[0], "overlap_chosen": p.overlap[1]},
    }


def _stored(p: _Prepared, key: str) -> tuple[Sample, Execution]:
    return Sample.from_dict(p.store.samples.get(key)), Execution.from_dict(p.store.executions.get(key))


def _samples_table(p: _Prepared, keys: list[tuple[Task, str]]) -> release.Streamed:
    """The release's `samples` table, read from the run store as it is written: a build holds its keys, never
    every sample."""
    return release.Streamed(lambda: (release.sample_row(task, *_stored(p, key)) for task, key in keys))


def _write(p: _Prepared, tables: dict[str, list[dict] | release.Streamed], stats: dict, limits: dict) -> BuildResult:
    release.write_release(p.release_dir, name=p.name, version=p.version, build_id=p.build_id, config=p.cfg,
                          model=p.backend.ref, tables=tables, stats=stats, limits=limits)
    return BuildResult(p.release_dir, stats)


def _build_pairs(p: _Prepared, progress, t_start: float) -> BuildResult:
    cfg, store = p.cfg, p.store
    sampling = cfg.sampling.params(p.domain)
    generated = [0]

    def chunk_done(chunk: list[Task], samples: list[Sample], new_samples: int, new_executions: int) -> None:
        generated[0] += new_samples
        if progress:
            progress(len(chunk), new_samples, new_executions,
                     [store.executions.get(s.sample_id)["status"] for s in samples])

    keys = sample_and_execute(p.executor, p.backend, p.tasks, cfg.samples, sampling, cfg.seed, cfg.engine.batch_size,
                              store, p.timeouts, p.timing, chunk_done, p.overlap[0])
    sandbox_name, limits = p.executor.sandbox_info(p.domain)
    pairs, reasons, tally = [], Counter(), _Tally()
    opts = PairOptions(cfg.pairs_per_task, cfg.seed, cfg.reference_fallback, cfg.include_timeouts)
    for task in p.tasks:  # one task's samples in memory at a time
        results = [_stored(p, k) for k in keys[task.task_id]]
        for s, e in results:
            tally.add(s, e)
        task_pairs, reason = make_pairs(task, results, opts, p.build_id, p.backend.ref.model_id)
        pairs.extend(task_pairs)
        if reason:
            reasons[reason] += 1
    stats = _common_stats(p, tally, sandbox_name, tally.samples - generated[0], t_start)
    stats.update({
        "pairs": len(pairs),
        "tasks_without_pairs": {r: reasons.get(r, 0) for r in REASONS},
        "chosen_origin": dict(Counter(x.chosen_origin for x in pairs)),
        "splits": dict(Counter(x.split for x in pairs)),
    })
    samples = _samples_table(p, [(task, k) for task in p.tasks for k in keys[task.task_id]])
    return _write(p, {"pairs": [x.to_dict() for x in pairs], "samples": samples}, stats, limits)


def _build_trajectories(p: _Prepared, progress, t_start: float) -> BuildResult:
    from codelutra_data.builders.focal_pairs import FocalOptions, iter_focal_pairs, token_counter
    from codelutra_data.builders.trajectories import (TrajectoryOptions, run_trajectories, sft_messages,
                                                      trajectory_stats)

    cfg, store, timing = p.cfg, p.store, p.timing
    options = TrajectoryOptions(trajectories_per_task=cfg.trajectories_per_task, max_rounds=cfg.max_rounds,
                                seed=cfg.seed, batch_size=cfg.engine.batch_size, max_repeats=cfg.max_repeats,
                                overlap=p.overlap[0])
    t0 = time.monotonic()
    count_tokens = token_counter(cfg.tokenizer or cfg.model)
    timing["tokenizer_load_s"] = time.monotonic() - t0
    resumed_samples = len(store.samples)
    trajectories = run_trajectories(p.tasks, p.backend, p.executor, cfg.sampling.params(p.domain), options,
                                    reviser=p.reviser, store=store, timeouts=p.timeouts, build_id=p.build_id,
                                    progress=progress, timing=timing)
    sandbox_name, limits = p.executor.sandbox_info(p.domain)
    by_id = {t.task_id: t for t in p.tasks}
    focal_options = FocalOptions(rejected=cfg.rejected, seed=cfg.seed, max_error_lines=cfg.max_error_lines,
                                 max_tokens=cfg.max_pair_tokens, include_timeouts=cfg.include_timeouts)

    # The pairs go to a spool file beside the run store as they are made (filtering them parses every program),
    # and the release reads them back: the count is known before the release is written, the pairs never held.
    spool = tempfile.TemporaryFile("w+", encoding="utf-8", dir=getattr(store, "root", None))
    reasons: dict[str, int] = {}
    pair_splits: Counter = Counter()
    for pair in iter_focal_pairs(by_id, trajectories, focal_options, p.build_id, p.backend.ref.model_id,
                                 count_tokens, reasons):
        pair_splits[pair.split] += 1
        spool.write(json.dumps(pair.to_dict()) + "\n")
    n_pairs = sum(pair_splits.values())

    def pairs() -> Iterator[dict]:
        spool.seek(0)
        return (json.loads(line) for line in spool)

    keys = trajectories.keys()
    tally = _Tally()
    for _, key in keys:
        tally.add(*_stored(p, key))

    def sft() -> Iterator[dict]:
        for t in trajectories:
            if t.solved:
                yield {"messages": sft_messages(by_id[t.task_id], t), "task_id": t.task_id,
                       "trajectory_id": t.trajectory_id, "source": t.source, "domain": t.domain, "split": t.split,
                       "solved_round": t.solved_round, "model": t.model, "reviser": t.reviser, "build_id": t.build_id}

    stats = _common_stats(p, tally, sandbox_name, resumed_samples, t_start)
    stats.update(trajectory_stats(trajectories, cfg.max_rounds))
    filters = {k: reasons[k] for k in ("no_error_lines", "comments_or_blank_only", "too_many_error_lines",
                                       "too_long", "same_structure", "cosmetic_only")}
    stats.update({
        "focal_pairs": n_pairs,
        "pairs": n_pairs,
        "pairs_per_task": round(n_pairs / (len(p.tasks) or 1), 4),
        "sft_conversations": trajectories.solved(),
        "filters": filters,
        "trajectories_without_pairs": {k: v for k, v in reasons.items() if k not in filters},
        "samples_per_task": round(tally.samples / (len(p.tasks) or 1), 3),
        "splits": dict(pair_splits),
        "reviser": (p.reviser or p.backend).ref.model_id,
    })
    tables = {"focal_pairs": release.Streamed(pairs),
              "trajectories": release.Streamed(lambda: (t.to_dict() for t in trajectories)),
              "sft": release.Streamed(sft), "samples": _samples_table(p, keys)}
    with spool:
        return _write(p, tables, stats, limits)
