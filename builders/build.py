"""`build`: tasks -> samples -> executions -> pairs -> a versioned release, resumable at every step."""

from __future__ import annotations

import dataclasses
import os
import platform
import re
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from codelutra_data.builders import release as release_mod
from codelutra_data.builders.execute import (ClusterOptions, ExecOptions, check_references, make_executor,
                                             reference_timeouts, timed_generation)
from codelutra_data.builders.focal_pairs import REJECTED_RULES
from codelutra_data.builders.pairs import REASONS, PairOptions, make_pairs
from codelutra_data.builders.sampling import generation_work, sample_key, samples_from
from codelutra_data.builders.tasks import load_tasks
from codelutra_data.errors import UserError
from codelutra_data.models.base import (BACKENDS, LazyBackend, SamplingParams, default_threads, generation_stats,
                                         resolve_backend)
from codelutra_data.models.spec import resolve
from codelutra_data.records import Execution, Sample, Task, content_hash
from codelutra_data.sandboxes.compare import MODES
from codelutra_data.sandboxes.isolation import ISOLATIONS
from codelutra_data.sandboxes.limits import check_time_limits
from codelutra_data.store import RunStore

DEFAULT_MAX_NEW_TOKENS = {"sql": 128, "python": 384}
_SEMVER = re.compile(r"^\d+\.\d+\.\d+$")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
# Options that do not change what is built, so a resumed run may differ in them.
_NOT_DETERMINING = {"resume", "runs_dir", "releases_dir", "workers", "batch_size", "version", "name", "isolation",
                    "base_url", "api_key_env", "concurrency", "request_timeout_s", "threads", "tensor_parallel_size",
                    "executor", "ray_address", "replicas", "sandbox_workers"}
BUILD_MODES = ("pairs", "trajectories")
# Options that only one mode reads: left out of the other mode's configuration (and its build id).
_MODE_ONLY = {"pairs": {"samples", "pairs_per_task", "reference_fallback"},
              "trajectories": {"trajectories_per_task", "max_rounds", "reviser", "rejected", "max_error_lines",
                               "max_pair_tokens", "max_repeats"}}


@dataclass
class BuildConfig:
    """Everything that determines a build; written in full into every release."""

    tasks: str = "spider-dev"
    mode: str = "pairs"  # pairs (CodeLutra) | trajectories (CodeFlow / IterPref)
    split: str = "auto"
    limit: int = 30
    samples: int = 8
    pairs_per_task: int = 2
    seed: int = 0
    model: str = "smollm2-135m"
    backend: str = "auto"  # auto: ctranslate2 on CPU where installed, else transformers (resolved and recorded)
    base_url: str | None = None  # openai backend: the server, e.g. http://127.0.0.1:8000/v1
    api_key_env: str = "OPENAI_API_KEY"  # openai backend: the variable holding the key (never recorded)
    concurrency: int = 8  # openai backend: requests in flight
    request_timeout_s: float = 120.0  # openai backend: per request, before a retry
    tokenizer: str | None = None  # model spec whose tokenizer measures focal pairs; default: --model
    threads: int | None = None  # CPU generation threads; default: OMP_NUM_THREADS, else the usable cores
    tensor_parallel_size: int = 1  # vllm backend: GPUs per model
    temperature: float = 0.8
    top_p: float = 0.95
    max_new_tokens: int | None = None  # None: 128 for SQL, 384 for Python
    batch_size: int = 32
    compare_mode: str = "spider"
    cpu_time_s: float = 5.0  # per program; Python tasks get up to 10x their reference's CPU time
    wall_time_s: float = 30.0  # backstop for programs that sleep or block
    max_rows: int = 10_000
    workers: int = 2
    isolation: str = "bwrap"
    memory_mb: int = 1024
    min_reference_pass_rate: float = 0.95
    reference_fallback: bool = False
    include_timeouts: bool = False
    trajectories_per_task: int = 1
    max_rounds: int = 5  # revisions after the first attempt
    reviser: str | None = None  # model spec that writes the fixes; None: the sampling model itself
    rejected: str = "random"  # random | first | last earlier failing attempt
    max_error_lines: int = 20
    max_pair_tokens: int = 2048
    max_repeats: int = 2  # resubmissions in a row that close a trajectory
    name: str | None = None
    version: str | None = None
    runs_dir: str = "runs"
    releases_dir: str = "releases"
    resume: bool = False
    executor: str = "local"  # local | ray (where the work runs; never what is built)
    ray_address: str | None = None  # ray: "auto" (the running cluster), host:port, or None (a local one)
    replicas: int = 1  # ray: model replicas
    sandbox_workers: int | None = None  # ray: sandbox processes across the cluster (None: each node's CPUs)

    def cluster(self) -> ClusterOptions:
        return ClusterOptions(self.executor, self.ray_address, self.replicas, self.sandbox_workers)

    def validate(self) -> None:
        if self.mode not in BUILD_MODES:
            raise UserError(f"unknown mode {self.mode!r}: use one of {', '.join(BUILD_MODES)}")
        if self.rejected not in REJECTED_RULES:
            raise UserError(f"unknown --rejected rule {self.rejected!r}: use one of {', '.join(REJECTED_RULES)}")
        if self.trajectories_per_task < 1 or self.max_rounds < 0 or self.max_repeats < 1:
            raise UserError("--trajectories-per-task and --max-repeats must be at least 1, --max-rounds at least 0")
        if self.max_error_lines < 1 or self.max_pair_tokens < 1:
            raise UserError("--max-error-lines and --max-pair-tokens must be at least 1")
        if self.samples < 1 or self.pairs_per_task < 1:
            raise UserError("--samples and --pairs-per-task must be at least 1")
        if self.limit < 0:
            raise UserError("--limit must be 0 (all tasks) or more")
        if self.isolation not in ISOLATIONS:
            raise UserError(f"unknown isolation {self.isolation!r}: use one of {', '.join(ISOLATIONS)}")
        if not 0 <= self.min_reference_pass_rate <= 1:
            raise UserError("--min-reference-pass-rate must be between 0 and 1")
        if self.compare_mode not in MODES:
            raise UserError(f"unknown comparison mode {self.compare_mode!r}: use one of {', '.join(MODES)}")
        if self.backend != "auto" and self.backend not in BACKENDS:
            raise UserError(f"unknown backend {self.backend!r}: available: auto, {', '.join(BACKENDS)}")
        if self.version is not None and not _SEMVER.match(self.version):
            raise UserError(f"version {self.version!r} is not semver (MAJOR.MINOR.PATCH)")
        if self.name is not None and not _NAME.match(self.name):
            raise UserError(f"name {self.name!r} may use only letters, digits, '.', '_' and '-'")
        if not 0 < self.top_p <= 1 or self.temperature < 0 or (self.max_new_tokens or 1) < 1:
            raise UserError("sampling needs temperature >= 0, 0 < top_p <= 1 and max_new_tokens >= 1")
        check_time_limits(self.cpu_time_s, self.wall_time_s)
        if self.backend == "openai" and not self.base_url:
            raise UserError("--backend openai needs --base-url (e.g. http://127.0.0.1:8000/v1)")
        if self.threads is not None and self.threads < 1:
            raise UserError("--threads must be at least 1")
        if self.tensor_parallel_size < 1:
            raise UserError("--tensor-parallel-size must be at least 1")
        if self.concurrency < 1 or self.request_timeout_s <= 0:
            raise UserError("--concurrency must be at least 1 and --request-timeout positive")
        self.cluster().validate()

    def server(self):
        """The openai backend's connection settings (None for in-process backends)."""
        if self.backend != "openai":
            return None
        from codelutra_data.models.openai_api import ServerOptions

        return ServerOptions(self.base_url or "", self.api_key_env, self.concurrency, self.request_timeout_s)

    def sampling(self, domain: str = "sql") -> SamplingParams:
        tokens = self.max_new_tokens or DEFAULT_MAX_NEW_TOKENS[domain]
        return SamplingParams(self.temperature, self.top_p, tokens, stop=("```",))

    def relevant(self) -> dict:
        """The configuration without the other mode's options: what cards and build_config.yaml show."""
        other = _MODE_ONLY["trajectories" if self.mode == "pairs" else "pairs"]
        return {k: v for k, v in dataclasses.asdict(self).items() if k not in other}

    def determining(self) -> dict:
        return {k: v for k, v in self.relevant().items() if k not in _NOT_DETERMINING}


def default_name(cfg: BuildConfig) -> str:
    source = Path(cfg.tasks).stem if cfg.tasks.endswith(".jsonl") else Path(cfg.tasks).name or cfg.tasks
    model = Path(cfg.model).name or cfg.model
    suffix = "-trajectories" if cfg.mode == "trajectories" else ""
    return re.sub(r"[^A-Za-z0-9._-]+", "-", f"{source}-{model}{suffix}").strip("-")


def _versions(folder: Path) -> list[tuple[int, int, int]]:
    if not folder.is_dir():
        return []
    return sorted(tuple(int(x) for x in p.name.split(".")) for p in folder.iterdir() if _SEMVER.match(p.name))


def local_versions(cfg: BuildConfig, name: str) -> list[tuple[int, int, int]]:
    """Versions of this name already taken here, by a release or by a run."""
    return sorted(set(_versions(Path(cfg.releases_dir) / name)) | set(_versions(Path(cfg.runs_dir) / name)))


def choose_version(cfg: BuildConfig, name: str) -> str:
    """The given version; else, with --resume, the newest unfinished run; else the next free patch version."""
    if cfg.version:
        return cfg.version
    runs = Path(cfg.runs_dir) / name
    if cfg.resume:
        for v in reversed(_versions(runs)):
            version = ".".join(map(str, v))
            if not (Path(cfg.releases_dir) / name / version).exists():
                return version
        raise UserError(f"nothing to resume: no unfinished run of {name!r} under {runs}")
    taken = local_versions(cfg, name)
    if not taken:
        return "0.1.0"
    major, minor, patch = max(taken)
    return f"{major}.{minor}.{patch + 1}"


def cpu_name() -> str:
    """CPU model and core count: timeouts depend on the machine, so cards record it."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return f"{line.split(':', 1)[1].strip()} ({os.cpu_count()} cores)"
    except OSError:
        pass
    return f"{platform.processor() or platform.machine()} ({os.cpu_count()} cores)"


@dataclass
class BuildResult:
    release_dir: Path
    stats: dict


def _chunks(tasks: list[Task], size: int) -> list[list[Task]]:
    return [tasks[i:i + size] for i in range(0, len(tasks), size)]


@dataclass
class _Prepared:
    """What both modes start from: checked tasks, their time limits, the open sandboxes and the run store."""

    name: str
    version: str
    release_dir: Path
    tasks: list[Task]
    domain: str
    ref: object
    executor: object  # LocalExecutor or RayExecutor
    timeouts: dict[str, float]
    store: RunStore
    build_id: str
    ref_rate: float
    failed_ids: set[str]
    timing: dict[str, float]


def _prepare(cfg: BuildConfig, on_start=None) -> _Prepared:
    """Validate, load tasks, refuse a bad resume, check every reference, open the run store."""
    cfg.validate()
    name = cfg.name or default_name(cfg)
    version = choose_version(cfg, name)
    release_dir = Path(cfg.releases_dir) / name / version
    if release_dir.exists():
        raise UserError(f"release {release_dir} already exists and is never overwritten: choose another --version")
    tasks = load_tasks(cfg.tasks, cfg.split, cfg.limit or None)
    domains = sorted({t.domain for t in tasks})
    if len(domains) != 1:
        raise UserError(f"a build takes tasks of one domain; {cfg.tasks!r} mixes {', '.join(domains)}")
    ref = LazyBackend(cfg.backend, cfg.model, server=cfg.server()).ref
    if cfg.reviser:
        LazyBackend(cfg.backend, cfg.reviser, server=cfg.server())  # an unknown reviser fails now, before any work
    run_dir = Path(cfg.runs_dir) / name / version
    state_file = run_dir / "state.json"
    if state_file.exists():
        state = RunStore(run_dir).read_state()
        if not cfg.resume:
            raise UserError(f"an unfinished build exists at {run_dir}: rerun with --resume to continue it "
                            f"(or delete that folder to start over)")
        if state.get("config") != cfg.determining():
            old, new = state.get("config", {}), cfg.determining()
            diff = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
            raise UserError(f"--resume with a different configuration than the run at {run_dir} "
                            f"(differs in: {', '.join(diff)})")
    executor = make_executor(ExecOptions(cpu_time_s=cfg.cpu_time_s, wall_time_s=cfg.wall_time_s, workers=cfg.workers,
                                         isolation=cfg.isolation, memory_mb=cfg.memory_mb, max_rows=cfg.max_rows,
                                         compare_mode=cfg.compare_mode), cfg.cluster())
    try:
        t0 = time.monotonic()
        ref_execs = check_references(executor, tasks)
        ref_seconds = time.monotonic() - t0
        failed = [(t, e) for t, e in zip(tasks, ref_execs) if e.status != "passed"]
        ref_rate = 1 - len(failed) / len(tasks)
        if ref_rate < cfg.min_reference_pass_rate:
            example = f" (first: {failed[0][0].task_id}: {failed[0][1].status}: {failed[0][1].feedback[:120]})"
            raise UserError(f"reference solutions pass on only {ref_rate:.1%} of {len(tasks)} tasks{example}; "
                            f"run `codelutra-data doctor --tasks {cfg.tasks}` for the list, or lower "
                            f"--min-reference-pass-rate")
    except BaseException:
        executor.close()
        raise
    timeouts = reference_timeouts(tasks, ref_execs, cfg.cpu_time_s)
    failed_ids = {t.task_id for t, _ in failed}
    tasks = [t for t in tasks if t.task_id not in failed_ids]
    if on_start:
        on_start(len(tasks))
    store = RunStore(run_dir)
    build_id = content_hash(name, version, cfg.determining())
    store.write_state({"config": cfg.determining(), "name": name, "version": version, "build_id": build_id,
                       "finished": False})
    timing = {"generation_s": 0.0, "execution_s": 0.0, "model_load_s": 0.0, "reference_check_s": ref_seconds}
    return _Prepared(name, version, release_dir, tasks, domains[0], ref, executor, timeouts, store, build_id,
                     ref_rate, failed_ids, timing)


def _common_stats(p: _Prepared, rows: list[dict], sandbox_name: str, resumed: int, t_start: float,
                  threads: int | None, backends: list) -> dict:
    statuses = Counter(r["status"] for r in rows)
    timing = p.timing
    timing["total_s"] = time.monotonic() - t_start
    timing["bookkeeping_s"] = timing["total_s"] - sum(v for k, v in timing.items() if k != "total_s")
    return {
        "tasks": len(p.tasks), "samples": len(rows),
        "pass_rate": statuses.get("passed", 0) / len(rows) if rows else 0.0,
        "status_histogram": dict(sorted(statuses.items())),
        "resumed_samples": resumed,
        "reference_pass_rate": round(p.ref_rate, 4),
        "tasks_dropped_failing_reference": sorted(p.failed_ids),
        "sandbox": sandbox_name,
        "timing": {k: round(v, 2) for k, v in timing.items()},
        "cpu": cpu_name(), "threads": threads or default_threads(), "executor": p.executor.describe(),
        "generation": generation_stats(backends, rows, timing["generation_s"]),
    }


def run_build(cfg: BuildConfig, progress=None, on_start=None) -> BuildResult:
    """Run (or resume) a build and write its release. `progress` is an optional callback (see commands):
    called with (tasks, samples, statuses) per chunk in pairs mode, with a RoundProgress in trajectories mode."""
    t_start = time.monotonic()
    cfg = dataclasses.replace(cfg, backend=resolve_backend(cfg.backend))
    p = _prepare(cfg, on_start)
    try:
        if cfg.mode == "trajectories":
            result = _build_trajectories(cfg, p, progress, t_start)
        else:
            result = _build_pairs(cfg, p, progress, t_start)
    finally:
        p.executor.close()
    p.store.write_state({**p.store.read_state(), "finished": True, "release": str(result.release_dir)})
    return result


def _build_pairs(cfg: BuildConfig, p: _Prepared, progress, t_start: float) -> BuildResult:
    tasks, store, timing = p.tasks, p.store, p.timing
    sampling = cfg.sampling(p.domain)
    per_chunk = max(1, cfg.batch_size // cfg.samples)
    keys = {t.task_id: [sample_key(t, cfg.backend, p.ref.model_id, p.ref.revision, sampling, cfg.seed, i, 0)
                        for i in range(cfg.samples)] for t in tasks}
    backend = LazyBackend(cfg.backend, cfg.model, batch_size=cfg.batch_size, timing=timing,
                          server=cfg.server(), threads=cfg.threads,
                          tensor_parallel_size=cfg.tensor_parallel_size)
    resumed_samples = sum(k in store.samples for ks in keys.values() for k in ks)
    by_id = {t.task_id: t for t in tasks}
    chunks = _chunks(tasks, per_chunk)
    missing = [c for c in chunks if any(k not in store.samples for t in c for k in keys[t.task_id])]

    def finish(chunk: list[Task], new_samples: int) -> None:
        chunk_samples = [Sample.from_dict(store.samples.get(k)) for t in chunk for k in keys[t.task_id]]
        pending = [s for s in chunk_samples if s.sample_id not in store.executions]
        if pending:
            t0 = time.monotonic()
            executions = p.executor.run([(by_id[s.task_id], s.sample_id, s.code) for s in pending], p.timeouts)
            timing["execution_s"] += time.monotonic() - t0
            store.executions.append(e.to_dict() for e in executions)
        if progress:
            statuses = [store.executions.get(s.sample_id)["status"] for s in chunk_samples]
            progress(len(chunk), new_samples, len(pending), statuses)

    for chunk in chunks:  # chunks whose samples are all stored first (a resumed run), then as replicas finish
        if not any(chunk is c for c in missing):
            finish(chunk, 0)
    works = [generation_work(c, cfg.samples, sampling, cfg.seed) for c in missing]
    for i, outputs in timed_generation(p.executor, backend, works, timing):
        fresh = samples_from(backend, missing[i], outputs, sampling, cfg.seed)
        store.samples.append(s.to_dict() for s in fresh)
        finish(missing[i], len(fresh))
    sandbox_name, limits = p.executor.sandbox_info(p.domain)

    pairs, reasons, rows = [], Counter(), []
    opts = PairOptions(cfg.pairs_per_task, cfg.seed, cfg.reference_fallback, cfg.include_timeouts)
    for task in tasks:
        results = []
        for k in keys[task.task_id]:
            s, e = Sample.from_dict(store.samples.get(k)), Execution.from_dict(store.executions.get(k))
            results.append((s, e))
            rows.append(release_mod.sample_row(task, s, e))
        task_pairs, reason = make_pairs(task, results, opts, p.build_id, p.ref.model_id)
        pairs.extend(task_pairs)
        if reason:
            reasons[reason] += 1
    stats = _common_stats(p, rows, sandbox_name, resumed_samples, t_start, cfg.threads, [backend])
    stats.update({
        "pairs": len(pairs),
        "tasks_without_pairs": {r: reasons.get(r, 0) for r in REASONS},
        "chosen_origin": dict(Counter(x.chosen_origin for x in pairs)),
        "splits": dict(Counter(x.split for x in pairs)),
    })
    tables = {"pairs": [x.to_dict() for x in pairs], "samples": rows}
    release_mod.write_release(p.release_dir, name=p.name, version=p.version, build_id=p.build_id, config=cfg,
                              model=p.ref, tables=tables, stats=stats, limits=limits)
    return BuildResult(p.release_dir, stats)


def _token_counter(spec: str):
    """Token counts in the model's own tokenizer, for the focal pairs' length filter."""
    from transformers import AutoTokenizer

    try:
        ref = resolve(spec)
    except UserError:
        raise UserError(f"cannot measure focal pairs in {spec!r}'s tokenizer: pass --tokenizer with a local or "
                        f"Hub model that shares it (a served model name is not a tokenizer)") from None
    try:
        tokenizer = AutoTokenizer.from_pretrained(ref.path)
    except OSError as exc:
        raise UserError(f"cannot load the tokenizer of {spec!r}: {str(exc).splitlines()[0]}") from None
    return lambda text: len(tokenizer(text, add_special_tokens=False)["input_ids"])


def _build_trajectories(cfg: BuildConfig, p: _Prepared, progress, t_start: float) -> BuildResult:
    from codelutra_data.builders.focal_pairs import FocalOptions, focal_pairs
    from codelutra_data.builders.trajectories import (TrajectoryOptions, run_trajectories, sft_messages,
                                                      trajectory_stats)

    store, timing = p.store, p.timing
    sampling = cfg.sampling(p.domain)
    backend = LazyBackend(cfg.backend, cfg.model, batch_size=cfg.batch_size, timing=timing,
                          server=cfg.server(), threads=cfg.threads,
                          tensor_parallel_size=cfg.tensor_parallel_size)
    reviser = None
    if cfg.reviser and cfg.reviser != cfg.model:
        reviser = LazyBackend(cfg.backend, cfg.reviser, batch_size=cfg.batch_size, timing=timing,
                              server=cfg.server(), threads=cfg.threads,
                          tensor_parallel_size=cfg.tensor_parallel_size)
    options = TrajectoryOptions(trajectories_per_task=cfg.trajectories_per_task, max_rounds=cfg.max_rounds,
                                seed=cfg.seed, batch_size=cfg.batch_size, max_repeats=cfg.max_repeats)
    t0 = time.monotonic()
    count_tokens = _token_counter(cfg.tokenizer or cfg.model)  # loaded first: a model without a tokenizer fails before any work
    timing["tokenizer_load_s"] = time.monotonic() - t0
    resumed_samples = len(store.samples)
    trajectories = run_trajectories(p.tasks, backend, p.executor, sampling, options, reviser=reviser, store=store,
                                    timeouts=p.timeouts, build_id=p.build_id, progress=progress, timing=timing)
    sandbox_name, limits = p.executor.sandbox_info(p.domain)

    by_id = {t.task_id: t for t in p.tasks}
    focal_options = FocalOptions(rejected=cfg.rejected, seed=cfg.seed, max_error_lines=cfg.max_error_lines,
                                 max_tokens=cfg.max_pair_tokens, include_timeouts=cfg.include_timeouts)
    pairs, reasons = focal_pairs(by_id, trajectories, focal_options, p.build_id, p.ref.model_id, count_tokens)
    rows = []
    for trajectory in trajectories:
        task = by_id[trajectory.task_id]
        for r in trajectory.rounds:
            s = Sample.from_dict(store.samples.get(r["sample_id"]))
            e = Execution.from_dict(store.executions.get(r["sample_id"]))
            rows.append(release_mod.sample_row(task, s, e))
    sft = [{"messages": sft_messages(by_id[t.task_id], t), "task_id": t.task_id, "trajectory_id": t.trajectory_id,
            "source": t.source, "domain": t.domain, "split": t.split, "solved_round": t.solved_round,
            "model": t.model, "reviser": t.reviser, "build_id": t.build_id}
           for t in trajectories if t.solved]
    stats = _common_stats(p, rows, sandbox_name, resumed_samples, t_start, cfg.threads,
                          [backend] + ([reviser] if reviser else []))
    stats.update(trajectory_stats(trajectories, cfg.max_rounds))
    filters = {k: reasons[k] for k in ("no_error_lines", "comments_or_blank_only", "too_many_error_lines",
                                       "too_long", "same_structure", "cosmetic_only")}
    stats.update({
        "focal_pairs": len(pairs),
        "pairs": len(pairs),
        "pairs_per_task": round(len(pairs) / (len(p.tasks) or 1), 4),
        "sft_conversations": len(sft),
        "filters": filters,
        "trajectories_without_pairs": {k: v for k, v in reasons.items() if k not in filters},
        "samples_per_task": round(len(rows) / (len(p.tasks) or 1), 3),
        "splits": dict(Counter(x.split for x in pairs)),
        "reviser": (reviser or backend).ref.model_id,
    })
    tables = {"focal_pairs": [x.to_dict() for x in pairs], "trajectories": [t.to_dict() for t in trajectories],
              "sft": sft, "samples": rows}
    release_mod.write_release(p.release_dir, name=p.name, version=p.version, build_id=p.build_id, config=cfg,
                              model=p.ref, tables=tables, stats=stats, limits=limits)
    return BuildResult(p.release_dir, stats)
