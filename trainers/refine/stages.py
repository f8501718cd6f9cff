"""Running one stage of the loop (a build, a training, an evaluation) in a process of its own: the public runner
the loop and the experiment scripts share.

Each stage loads its own model (vLLM keeps most of a GPU's memory for its whole process; a training holds two
models): separate processes hand all of it back between stages, so the loop's memory does not grow with its
iterations. The child dies with its parent (kill -9 included), so nothing runs on orphaned."""

from __future__ import annotations

import sys

from codelutra_data.benchmarks.runner import EvalConfig
from codelutra_data.builders.build_config import BuildConfig
from codelutra_data.errors import UserError
from codelutra_data.trainers.config import TrainConfig


def build_stage(cfg: BuildConfig) -> dict:
    """The build's statistics."""
    from codelutra_data.builders.build import run_build

    return run_build(cfg).stats


def train_stage(cfg: TrainConfig) -> dict:
    """The training report."""
    from codelutra_data.trainers.train import run_train

    return run_train(cfg, log=lambda message: print(message, file=sys.stderr, flush=True)).report


def eval_stage(cfg: EvalConfig) -> dict:
    """The result's metrics, headline metric, suite and config hash."""
    from codelutra_data.benchmarks.runner import run_eval

    results = run_eval(cfg).results
    return {k: results[k] for k in ("metrics", "headline", "suite", "config_hash")}


STAGES = {"build": build_stage, "train": train_stage, "eval": eval_stage}


def _die_with_parent() -> None:
    try:
        import ctypes
        import signal

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def run_stage(stage: str, cfg: BuildConfig | TrainConfig | EvalConfig) -> dict:
    """Validate `cfg` here (a bad option is one line before a process starts), then run the stage in a fresh
    process and return what it reports."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor
    from concurrent.futures.process import BrokenProcessPool

    cfg.validate()
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=1, mp_context=context, initializer=_die_with_parent) as pool:
        try:
            return pool.submit(STAGES[stage], cfg).result()
        except BrokenProcessPool:
            raise UserError(f"the {stage} stage's process died (killed, or out of memory?): rerun with "
                            "--resume to redo that stage") from None
