"""`refine`: the CodeLutra loop. Each iteration the current model samples the train split, its own successes
and failures become a release, it trains on them, and the new model is evaluated on validation and test.

The model kept is the best on validation (test is reported, never used to choose), and the loop stops when
validation has not improved for `patience` iterations. Every stage runs in a process of its own and is recorded in
`<out>/refine.json` when it ends, so `kill -9` at any point and `--resume` redo at most the stage that was
running: a build resumes its run store, a training restarts from scratch (models appear by an atomic rename,
never half-written), an evaluation runs again.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from codelutra_data.errors import UserError

MODES = ("pairs", "trajectories")
TRAIN_FROM = ("current", "base")
STATE = "refine.json"
# Build options the loop decides itself: sampling always reads train, from the current model, into this run's folders.
_BUILD_FIXED = {"tasks", "mode", "split", "model", "name", "version", "runs_dir", "releases_dir", "resume", "seed"}
_TRAIN_FIXED = {"method", "data", "data_revision", "data_config", "split", "model", "out", "seed"}
_EVAL_FIXED = {"suite", "split", "model", "samples", "predictions", "store", "out", "write_predictions", "seed"}
# Options that do not change results, so a resumed loop may differ in them.
_NOT_DETERMINING = {"resume", "push_to_hub", "private", "store"}
# Where build and eval run (never what they produce), as for `build` and `eval` themselves.
_WHERE = {"executor", "ray_address", "replicas", "sandbox_workers"}
# The build's engine settings, which the evaluations use too unless the eval: section says otherwise.
_SHARED_WITH_EVAL = ("backend", "threads", "cpu_time_s", "workers", *sorted(_WHERE))


@dataclass
class RefineConfig:
    tasks: str = "spider-dev"
    mode: str = "pairs"  # pairs: CodeLutra; trajectories: IterPref debug trajectories (train with focal)
    method: str = "codelutra"
    iterations: int = 3
    patience: int = 1  # stop after this many iterations without a better validation score
    train_from: str = "current"  # current: iteration t trains the model of t-1 on its data; base: the base on all so far
    model: str = "smollm2-135m"
    out: str = ""
    name: str | None = None  # release name; default: refine-<tasks>
    seed: int = 0
    eval_limit: int = 0  # grade only the first N tasks of validation and of test (0 = all)
    store: str | None = None  # results store; default: the usual results/results.duckdb
    push_to_hub: str | None = None
    private: bool = False
    resume: bool = False
    build: dict = field(default_factory=dict)  # any `build` option (samples, limit, backend, ...)
    train: dict = field(default_factory=dict)  # any `train` option (lora, max_steps, epochs, ...)
    eval: dict = field(default_factory=dict)  # any `eval` option (backend, cpu_time_s, ...)

    def validate(self) -> None:
        from codelutra_data.builders.build import BuildConfig
        from codelutra_data.benchmarks.runner import EvalConfig
        from codelutra_data.trainers.config import METHODS, TrainConfig

        if not self.out:
            raise UserError("--out is required: the folder the loop writes its releases, models and report to")
        if self.mode not in MODES:
            raise UserError(f"unknown mode {self.mode!r}: choose pairs or trajectories")
        if self.method not in METHODS:
            raise UserError(f"unknown method {self.method!r}: choose one of {', '.join(METHODS)}")
        if self.method == "focal" and self.mode != "trajectories":
            raise UserError("--method focal trains on debug trajectories' focal pairs: add --mode trajectories")
        if self.train_from not in TRAIN_FROM:
            raise UserError("--train-from must be current or base")
        if self.iterations < 1 or self.patience < 1:
            raise UserError("--iterations and --patience must be at least 1")
        if self.eval_limit < 0:
            raise UserError("--eval-limit must be 0 (all tasks) or more")
        for section, cls, fixed in (("build", BuildConfig, _BUILD_FIXED), ("train", TrainConfig, _TRAIN_FIXED),
                                    ("eval", EvalConfig, _EVAL_FIXED)):
            names = {f.name for f in dataclasses.fields(cls)}
            options = getattr(self, section)
            unknown = sorted(set(options) - names)
            if unknown:
                raise UserError(f"unknown {section} option(s): {', '.join(unknown)}")
            taken = sorted(set(options) & fixed)
            if taken:
                raise UserError(f"{section} option(s) {', '.join(taken)} are set by refine itself")

    @property
    def release_name(self) -> str:
        import re

        return self.name or re.sub(r"[^A-Za-z0-9._-]+", "-", f"refine-{Path(self.tasks).name}").strip("-")

    def determining(self) -> dict:
        values = {k: v for k, v in dataclasses.asdict(self).items() if k not in _NOT_DETERMINING}
        for section in ("build", "eval"):
            values[section] = {k: v for k, v in values[section].items() if k not in _WHERE}
        return values


def decide(scores: list[float], patience: int) -> tuple[int, bool]:
    """Given validation scores for iterations 0 (the base) .. t: the best iteration so far (the earliest of
    equals: a tie is no improvement) and whether to stop (no improvement for `patience` iterations)."""
    best = 0
    for t, score in enumerate(scores):
        if score > scores[best]:
            best = t
    return best, len(scores) - 1 - best >= patience


def _die_with_parent() -> None:
    """In a stage's process: die when the loop's process dies (kill -9 included), never run on orphaned."""
    try:
        import ctypes
        import signal

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def _stage_log(message: str) -> None:
    import sys

    print(message, file=sys.stderr, flush=True)


def _build_stage(options: dict) -> dict:
    from codelutra_data.builders.build import BuildConfig, run_build

    return run_build(BuildConfig(**options)).stats


def _train_stage(options: dict) -> dict:
    from codelutra_data.trainers.config import TrainConfig
    from codelutra_data.trainers.train import run_train

    return run_train(TrainConfig(**options), log=_stage_log).report


def _eval_stage(options: dict) -> dict:
    from codelutra_data.benchmarks.runner import EvalConfig, run_eval

    results = run_eval(EvalConfig(**options)).results
    return {k: results[k] for k in ("metrics", "headline", "suite", "config_hash")}


def in_own_process(stage: str, fn, options: dict):
    """Run one stage in a fresh process. Each stage loads its own model (vLLM keeps most of a GPU's memory
    for its whole process; a training holds two models): separate processes hand all of it back between
    stages, so the loop's memory does not grow with its iterations."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor
    from concurrent.futures.process import BrokenProcessPool

    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=1, mp_context=context, initializer=_die_with_parent) as pool:
        try:
            return pool.submit(fn, options).result()
        except BrokenProcessPool:
            raise UserError(f"the {stage} stage's process died (killed, or out of memory?): rerun with "
                            "--resume to redo that stage") from None


class _State:
    """`<out>/refine.json`: the config and every finished stage, replaced atomically after each stage."""

    def __init__(self, out: Path, cfg: RefineConfig):
        self.path = out / STATE
        if self.path.exists():
            if not cfg.resume:
                raise UserError(f"{out} already holds a refine run: add --resume to continue it, or choose another --out")
            self.data = json.loads(self.path.read_text(encoding="utf-8"))
            if self.data["config"] != json.loads(json.dumps(cfg.determining())):
                before, now = self.data["config"], cfg.determining()
                diff = sorted(k for k in set(before) | set(now) if before.get(k) != now.get(k))
                raise UserError(f"--resume with a different configuration ({', '.join(diff)} changed): "
                                f"use the options of the run in {out}, or another --out")
        elif cfg.resume:
            raise UserError(f"nothing to resume in {out}: no {STATE}")
        else:
            out.mkdir(parents=True, exist_ok=True)
            self.data = {"config": cfg.determining(), "iterations": [], "best": None, "stopped": None,
                         "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")}
            self.save()

    def iteration(self, t: int) -> dict:
        while len(self.data["iterations"]) <= t:
            self.data["iterations"].append({"iteration": len(self.data["iterations"]), "stages_s": {}})
        return self.data["iterations"][t]

    def save(self) -> None:
        tmp = self.path.with_name(f".{self.path.name}.partial-{os.getpid()}")
        tmp.write_text(json.dumps(self.data, indent=1, default=str), encoding="utf-8")
        os.replace(tmp, self.path)


@dataclass
class RefineResult:
    out: Path
    state: dict


def run_refine(cfg: RefineConfig, log: Callable[[str], None] = print) -> RefineResult:
    """The loop (see the module docstring). Library first: the `refine` command is a thin shell over this."""
    from filelock import FileLock, Timeout

    cfg.validate()
    _check_splits(cfg)
    if cfg.push_to_hub:
        from codelutra_data.builders import publish

        publish.check_can_push()  # a bad token fails now, not after the first build
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(out / ".refine.lock"))
    try:
        lock.acquire(timeout=0)
    except Timeout:
        raise UserError(f"another refine is running in {out}") from None
    try:
        state = _State(out, cfg)
        _loop(cfg, out, state, log)
        write_report(out, state.data)
        return RefineResult(out, state.data)
    finally:
        lock.release()


def _check_splits(cfg: RefineConfig) -> None:
    from codelutra_data.builders.tasks import load_tasks

    tasks = load_tasks(cfg.tasks, "all")
    splits = {t.split for t in tasks}
    missing = [s for s in ("train", "validation", "test") if s not in splits]
    if missing:
        raise UserError(f"refine needs train, validation and test splits; {cfg.tasks!r} has no "
                        f"{' or '.join(missing)} split (it has: {', '.join(sorted(splits))})")


def _loop(cfg: RefineConfig, out: Path, state: _State, log: Callable[[str], None]) -> None:
    base = state.iteration(0)
    base.setdefault("model", cfg.model)
    _evaluate(cfg, out, state, 0, log)
    current = cfg.model
    for t in range(1, cfg.iterations + 1):
        scores = [it["eval"]["validation"]["value"] for it in state.data["iterations"][:t]]
        best, stop = decide(scores, cfg.patience)
        state.data["best"] = best
        if stop:
            state.data["stopped"] = f"validation did not improve for {cfg.patience} iteration(s)"
            state.save()
            break
        it = state.iteration(t)
        release = _build(cfg, out, state, t, current, log)
        if not it.get("pairs"):
            state.data["stopped"] = f"iteration {t} built no pairs: nothing to train on"
            state.save()
            log(state.data["stopped"])
            break
        if cfg.push_to_hub:
            _push(cfg, state, t, release, log)
        current = _train(cfg, out, state, t, current, log)
        _evaluate(cfg, out, state, t, log)
    else:
        state.data["stopped"] = f"ran all {cfg.iterations} iterations"
    scores = [it["eval"]["validation"]["value"] for it in state.data["iterations"] if "eval" in it]
    state.data["best"] = decide(scores, cfg.patience)[0]
    best = state.data["iterations"][state.data["best"]]
    state.data["best_model"] = best["model"]
    state.save()
    log(f"best on validation: iteration {state.data['best']} ({best['model']}): "
        f"{best['eval']['validation']['value']:.1%}; test {best['eval']['test']['value']:.1%}")


def _build(cfg: RefineConfig, out: Path, state: _State, t: int, model: str, log) -> Path:
    from codelutra_data.builders.build import BuildConfig

    it = state.iteration(t)
    version = f"0.{t}.0"
    release = out / "releases" / cfg.release_name / version
    if "release" in it and release.exists():
        return release
    log(f"iteration {t}: building {cfg.release_name} {version} from {model}")
    started = time.monotonic()
    run_dir = out / "runs" / cfg.release_name / version
    if release.exists():  # finished, but the state was not saved before a kill
        stats = _release_stats(release)
    else:
        options = {**cfg.build, "tasks": cfg.tasks, "mode": cfg.mode, "split": "train", "model": model,
                   "name": cfg.release_name, "version": version, "runs_dir": str(out / "runs"),
                   "releases_dir": str(out / "releases"), "seed": cfg.seed + t - 1,
                   "resume": (run_dir / "state.json").exists()}
        BuildConfig(**options).validate()  # a bad option is one line here, before a process starts
        stats = in_own_process("build", _build_stage, options)
    pairs = stats.get("pairs", stats.get("focal_pairs", 0))
    all_correct, no_correct = task_outcomes(release)
    it.update(release=str(release), version=version, model_sampled=model, pairs=pairs,
              sampling_pass_rate=stats.get("pass_rate", stats.get("first_try_pass_rate")),
              tasks=stats.get("tasks"), tasks_all_correct=all_correct, tasks_no_correct=no_correct,
              build_stats_timing=stats.get("timing"))
    it["stages_s"]["build"] = round(time.monotonic() - started, 1)
    state.save()
    log(f"iteration {t}: {pairs} pairs (sampling pass rate {(it['sampling_pass_rate'] or 0):.1%})")
    return release


def task_outcomes(release: Path) -> tuple[int, int]:
    """Tasks whose samples all passed, and tasks where none did (first attempts only, for trajectories)."""
    import pyarrow.parquet as pq

    by_task: dict[str, list[bool]] = {}
    for path in sorted((release / "samples").glob("*.parquet")):
        table = pq.read_table(path)
        rounds = table.column("round").to_pylist() if "round" in table.column_names else [0] * table.num_rows
        for task, status, r in zip(table.column("task_id").to_pylist(), table.column("status").to_pylist(), rounds):
            if not r:
                by_task.setdefault(task, []).append(status == "passed")
    return sum(all(v) for v in by_task.values()), sum(not any(v) for v in by_task.values())


def _release_stats(release: Path) -> dict:
    import yaml

    return (yaml.safe_load((release / "build_config.yaml").read_text(encoding="utf-8")) or {}).get("stats", {})


def _push(cfg: RefineConfig, state: _State, t: int, release: Path, log) -> None:
    from codelutra_data.builders import publish

    it = state.iteration(t)
    if it.get("pushed"):
        return
    result = publish.push(release, cfg.push_to_hub, private=cfg.private, resume=True, log=log)
    it["pushed"] = {"repo": result.repo_id, "tag": result.tag, "commit": result.commit}
    state.save()


def _train_data(cfg: RefineConfig, out: Path, state: _State, t: int) -> str:
    """This iteration's release; with --train-from base, every release so far in one parquet file."""
    if cfg.train_from == "current" or t == 1:
        return state.iteration(t)["release"]
    import pyarrow as pa
    import pyarrow.parquet as pq

    from codelutra_data.trainers.data import load_pairs

    rows = []
    for i in range(1, t + 1):
        rows += load_pairs(state.iteration(i)["release"], "train", None, cfg.train.get("data_config"))[0]
    target = out / "data" / f"pairs-up-to-{t}.parquet"
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.partial-{os.getpid()}")
    pq.write_table(pa.Table.from_pylist(rows), tmp)
    os.replace(tmp, target)
    return str(target)


def _train(cfg: RefineConfig, out: Path, state: _State, t: int, current: str, log) -> str:
    from codelutra_data.trainers.config import TrainConfig

    it = state.iteration(t)
    target = out / "models" / f"{cfg.release_name}-it{t}"
    if "train" in it and target.is_dir():
        return str(target)
    for stale in target.parent.glob(f".{target.name}.partial-*"):  # a training killed mid-way
        shutil.rmtree(stale, ignore_errors=True)
    started = time.monotonic()
    if target.is_dir() and (target / "train_report.json").is_file():  # trained, but the state was not saved
        report = json.loads((target / "train_report.json").read_text(encoding="utf-8"))["report"]
    else:
        if target.exists():
            shutil.rmtree(target)
        options = dict(cfg.train)
        if options.get("lora"):
            options["merge"] = True  # the next iteration samples from it: a full model every backend loads
        start_model = current if cfg.train_from == "current" else cfg.model
        log(f"iteration {t}: training {cfg.method} from {start_model}")
        options = {**options, "method": cfg.method, "data": _train_data(cfg, out, state, t), "model": start_model,
                   "out": str(target), "seed": cfg.seed + t - 1}
        TrainConfig(**options)
        report = in_own_process("train", _train_stage, options)
    metrics = report.get("metrics", {})
    it.update(model=str(target), train={"pairs_used": report.get("pairs_used"), "steps": metrics.get("steps"),
                                        "loss": metrics.get("loss", metrics.get("train_loss")),
                                        "train_loss": metrics.get("train_loss"),
                                        "reward_margin": metrics.get("rewards/margins"),
                                        "seconds": report.get("train_seconds")})
    it["stages_s"]["train"] = round(time.monotonic() - started, 1)
    state.save()
    return str(target)


def _evaluate(cfg: RefineConfig, out: Path, state: _State, t: int, log) -> None:
    from codelutra_data.benchmarks.runner import EvalConfig

    it = state.iteration(t)
    if "eval" in it:
        return
    started = time.monotonic()
    scores = {}
    for split in ("validation", "test"):
        log(f"iteration {t}: evaluating {it['model']} on {split}")
        options = {**cfg.eval, "suite": cfg.tasks, "split": split, "model": it["model"], "limit": cfg.eval_limit,
                   "seed": cfg.seed, "out": str(out / "evals" / f"it{t}-{split}")}
        if cfg.store:
            options["store"] = cfg.store
        for shared in _SHARED_WITH_EVAL:
            if shared not in options and shared in cfg.build:
                options[shared] = cfg.build[shared]
        EvalConfig(**options).validate()
        results = in_own_process("eval", _eval_stage, options)
        headline = results["metrics"][results["headline"]]
        scores[split] = {"metric": results["headline"], "value": headline["value"], "ci95": headline["ci95"],
                         "tasks": results["suite"]["tasks"], "config_hash": results["config_hash"]}
    it["eval"] = scores
    it["stages_s"]["eval"] = round(time.monotonic() - started, 1)
    state.save()
    log(f"iteration {t}: validation {scores['validation']['value']:.1%}, test {scores['test']['value']:.1%}")


def report_rows(state: dict) -> list[dict]:
    """One row per iteration, the numbers the report shows."""
    rows = []
    for it in state["iterations"]:
        ev, tr = it.get("eval") or {}, it.get("train") or {}
        rows.append({"iteration": it["iteration"], "model": it.get("model"), "release": it.get("release"),
                     "sampling_pass_rate": it.get("sampling_pass_rate"), "pairs": it.get("pairs"),
                     "tasks_all_correct": it.get("tasks_all_correct"), "tasks_no_correct": it.get("tasks_no_correct"),
                     "train_loss": tr.get("loss"), "reward_margin": tr.get("reward_margin"),
                     "validation": (ev.get("validation") or {}).get("value"),
                     "validation_ci95": (ev.get("validation") or {}).get("ci95"),
                     "test": (ev.get("test") or {}).get("value"), "test_ci95": (ev.get("test") or {}).get("ci95"),
                     "metric": (ev.get("test") or {}).get("metric"),
                     "build_s": it["stages_s"].get("build"), "train_s": it["stages_s"].get("train"),
                     "eval_s": it["stages_s"].get("eval"), "best": state.get("best") == it["iteration"]})
    return rows


def write_report(out: Path, state: dict) -> Path:
    """`<out>/report.json` and a self-contained page `<out>/report.html` with the scores per iteration."""
    import jinja2

    from codelutra_data.builders.release import CARDS

    rows = report_rows(state)
    (out / "report.json").write_text(json.dumps({**state, "rows": rows}, indent=1, default=str), encoding="utf-8")
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(CARDS)), autoescape=True,
                             undefined=jinja2.StrictUndefined)
    page = env.get_template("refine_report.html.j2").render(state=state, rows=rows, plot=_plot(rows))
    tmp = out / f".report.html.partial-{os.getpid()}"
    tmp.write_text(page, encoding="utf-8")
    os.replace(tmp, out / "report.html")
    return out / "report.html"


def _plot(rows: list[dict]) -> dict:
    """Points of the validation and test lines with their 95% intervals, in SVG coordinates."""
    width, height, pad = 560, 260, 40
    scored = [r for r in rows if r["validation"] is not None]
    top = max([max((r["validation_ci95"] or [0, 0])[1], (r["test_ci95"] or [0, 0])[1]) for r in scored] + [0.05])
    top = min(1.0, top * 1.15)
    span = max(1, len(rows) - 1)

    def x(i: int) -> float:
        return round(pad + (width - 2 * pad) * i / span, 1)

    def y(v: float) -> float:
        return round(height - pad - (height - 2 * pad) * v / top, 1)

    series = {}
    for key in ("validation", "test"):
        series[key] = [{"x": x(r["iteration"]), "y": y(r[key]), "lo": y(r[f"{key}_ci95"][0]),
                        "hi": y(r[f"{key}_ci95"][1]), "value": r[key], "iteration": r["iteration"]}
                       for r in scored]
    ticks = [{"y": y(top * i / 4), "label": f"{100 * top * i / 4:.{1 if top < 0.1 else 0}f}%"} for i in range(5)]
    return {"width": width, "height": height, "pad": pad, "series": series, "ticks": ticks,
            "xs": [{"x": x(r["iteration"]), "label": r["iteration"]} for r in rows]}
