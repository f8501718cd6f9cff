"""The CodeLutra loop. Each iteration the current model samples the train split, its own successes and failures
become a release, it trains on them, and the new model is evaluated on validation and test. With `--method grpo`
there is no build: each iteration trains the current model with GRPO on the train split (its samples are run and
rewarded as it trains) for a fixed budget of steps.

The model kept is the best on validation (test is reported, never used to choose), and the loop stops when
validation has not improved for `patience` iterations. Every stage runs in a process of its own and is recorded in
`<out>/refine.json` when it ends, so `kill -9` at any point and `--resume` redo at most the stage that was
running: a build resumes its run store, a training restarts from scratch (models appear by an atomic rename,
never half-written), an evaluation runs again.
"""

from __future__ import annotations

import dataclasses

import json
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from codelutra_data.builders.release import release_stats, task_outcomes
from codelutra_data.errors import UserError
from codelutra_data.trainers.refine.config import RefineConfig
from codelutra_data.trainers.refine.report import write_report
from codelutra_data.trainers.refine.stages import run_stage
from codelutra_data.trainers.refine.state import State


def decide(scores: list[float], patience: int) -> tuple[int, bool]:
    """Given validation scores for iterations 0 (the base) .. t: the best iteration so far (the earliest of
    equals: a tie is no improvement) and whether to stop (no improvement for `patience` iterations)."""
    best = 0
    for t, score in enumerate(scores):
        if score > scores[best]:
            best = t
    return best, len(scores) - 1 - best >= patience


@dataclass
class RefineResult:
    out: Path
    state: dict


def run_refine(cfg: RefineConfig, log: Callable[[str], None] = print) -> RefineResult:
    """The loop (see the module docstring). Library first: the `refine` command is a thin shell over this."""
    from filelock import FileLock, Timeout

    cfg.validate()
    _check_splits(cfg)
    from codelutra_data.builders.tasks import pinned_spec

    cfg = dataclasses.replace(cfg, tasks=pinned_spec(cfg.tasks, cfg.task_format))  # every iteration: one commit
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
        state = State(out, cfg)
        _loop(cfg, out, state, log)
        write_report(out, state.data)
        return RefineResult(out, state.data)
    finally:
        lock.release()


def _check_splits(cfg: RefineConfig) -> None:
    from codelutra_data.builders.tasks import load_tasks

    tasks = load_tasks(cfg.tasks, "all", None, cfg.task_format, unique=False)
    splits = {t.split for t in tasks}
    missing = [s for s in ("train", "validation", "test") if s not in splits]
    if missing:
        raise UserError(f"refine needs train, validation and test splits; {cfg.tasks!r} has no "
                        f"{' or '.join(missing)} split (it has: {', '.join(sorted(splits))})")


def _loop(cfg: RefineConfig, out: Path, state: State, log: Callable[[str], None]) -> None:
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
        if cfg.method != "grpo":  # GRPO samples and is rewarded while it trains: no build stage
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


def _build(cfg: RefineConfig, out: Path, state: State, t: int, model: str, log) -> Path:
    it = state.iteration(t)
    name, version = cfg.release_name, cfg.version(t)
    release = out / "releases" / name / version
    if "release" in it and release.exists():
        return release
    log(f"iteration {t}: building {name} {version} from {model}")
    started = time.monotonic()
    if release.exists():  # finished, but the state was not saved before a kill
        stats = release_stats(release)
    else:
        resume = (out / "runs" / name / version / "state.json").exists()
        stats = run_stage("build", cfg.build_config(t, model, out, resume=resume))
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


def _push(cfg: RefineConfig, state: State, t: int, release: Path, log) -> None:
    from codelutra_data.builders import publish

    it = state.iteration(t)
    if it.get("pushed"):
        return
    result = publish.push(release, cfg.push_to_hub, private=cfg.private, resume=True, log=log)
    it["pushed"] = {"repo": result.repo_id, "tag": result.tag, "commit": result.commit}
    state.save()


def _train_data(cfg: RefineConfig, out: Path, state: State, t: int) -> str:
    """This iteration's release; with --train-from base, every release so far in one parquet file."""
    if cfg.train_from == "current" or t == 1:
        return state.iteration(t)["release"]
    import io

    import pyarrow as pa
    import pyarrow.parquet as pq

    from codelutra_data.files import atomic_write
    from codelutra_data.trainers.data import load_pairs

    rows = []
    for i in range(1, t + 1):
        rows += load_pairs(state.iteration(i)["release"], "train", None, cfg.train.get("data_config"))[0]
    buffer = io.BytesIO()
    pq.write_table(pa.Table.from_pylist(rows), buffer)
    return str(atomic_write(out / "data" / f"pairs-up-to-{t}.parquet", buffer.getvalue()))


def _train(cfg: RefineConfig, out: Path, state: State, t: int, current: str, log) -> str:
    it = state.iteration(t)
    target = out / "models" / f"{cfg.release_name}-it{t}"
    if "train" in it and target.is_dir():
        return str(target)
    for stale in target.parent.glob(f".{target.name}.partial-*"):  # a training killed mid-way
        shutil.rmtree(stale, ignore_errors=True)
    started = time.monotonic()
    start_model = current if cfg.train_from == "current" else cfg.model
    if target.is_dir() and (target / "train_report.json").is_file():  # trained, but the state was not saved
        report = json.loads((target / "train_report.json").read_text(encoding="utf-8"))["report"]
    else:
        if target.exists():
            shutil.rmtree(target)
        log(f"iteration {t}: training {cfg.method} from {start_model}")
        data = "" if cfg.method == "grpo" else _train_data(cfg, out, state, t)
        report = run_stage("train", cfg.train_config(t, start_model, data, target))
    metrics = report.get("metrics", {})
    it.update(model=str(target), train={"pairs_used": report.get("pairs_used"), "steps": metrics.get("steps"),
                                        "loss": metrics.get("loss", metrics.get("train_loss")),
                                        "train_loss": metrics.get("train_loss"),
                                        "reward_margin": metrics.get("rewards/margins"),
                                        "seconds": report.get("train_seconds")})
    if cfg.method == "grpo":  # what the model's own samples scored while it trained, as a build's pass rate
        rewards = report.get("reward_stats") or {}
        graded = rewards.get("completions") or 0
        it.update(sampling_pass_rate=(rewards.get("statuses", {}).get("passed", 0) / graded) if graded else None,
                  tasks=report.get("pairs_used"), model_sampled=start_model)
        it["train"].update(completions=graded, mean_reward=report.get("mean_reward"))
    it["stages_s"]["train"] = round(time.monotonic() - started, 1)
    state.save()
    return str(target)


def _evaluate(cfg: RefineConfig, out: Path, state: State, t: int, log) -> None:
    it = state.iteration(t)
    if "eval" in it:
        return
    started = time.monotonic()
    scores = {}
    for split in ("validation", "test"):
        log(f"iteration {t}: evaluating {it['model']} on {split}")
        results = run_stage("eval", cfg.eval_config(split, it["model"], out / "evals" / f"it{t}-{split}"))
        headline = results["metrics"][results["headline"]]
        scores[split] = {"metric": results["headline"], "value": headline["value"], "ci95": headline["ci95"],
                         "tasks": results["suite"]["tasks"], "config_hash": results["config_hash"]}
    it["eval"] = scores
    it["stages_s"]["eval"] = round(time.monotonic() - started, 1)
    state.save()
    log(f"iteration {t}: validation {scores['validation']['value']:.1%}, test {scores['test']['value']:.1%}")
