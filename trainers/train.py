"""`codelutra-data train`: data in, TRL trains, a model directory with its card out (whole or not at all)."""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import importlib
import json
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from codelutra_data import __version__
from codelutra_data.cards import card, render
from codelutra_data.errors import UserError
from codelutra_data.files import atomic_directory
from codelutra_data.machine import cpu_name
from codelutra_data.trainers.config import TrainConfig
_KEPT_METRICS = ("loss", "rewards/margins", "rewards/accuracies", "rewards/chosen", "rewards/rejected",
                 "logps/chosen", "logps/rejected", "mean_token_accuracy", "entropy", "learning_rate", "grad_norm")


@dataclass
class TrainResult:
    out_dir: Path
    report: dict


def method_module(name: str):
    return importlib.import_module(f"codelutra_data.trainers.{name}")


def load_model(path: str):
    """Model and tokenizer in fp32 (a local directory, the prepared bundled model, or a Hub id)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(path)
        model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32)
    except (OSError, ValueError) as exc:
        raise UserError(f"cannot load model {path!r}: {str(exc).splitlines()[0]}") from None
    if not getattr(tokenizer, "chat_template", None):
        raise UserError(f"the tokenizer of {path!r} has no chat template; releases hold chat messages")
    return model, tokenizer


LORA_SHARE = 0.02  # of the parameters a LoRA adapter trains, at most, for the memory estimate


def lora_config(cfg: TrainConfig):
    from peft import LoraConfig

    return LoraConfig(r=cfg.lora_r, lora_alpha=cfg.lora_alpha, lora_dropout=cfg.lora_dropout,
                      target_modules=cfg.lora_target, task_type="CAUSAL_LM")


def final_metrics(log_history: list[dict]) -> dict:
    """The last logged step's metrics plus the run summary (runtime, mean train loss)."""
    steps = [h for h in log_history if "loss" in h and "train_runtime" not in h]
    summary = next((h for h in reversed(log_history) if "train_runtime" in h), {})
    last = steps[-1] if steps else {}
    out = {k: round(float(last[k]), 6) for k in _KEPT_METRICS if k in last}
    for k in ("train_loss", "train_runtime", "train_steps_per_second"):
        if k in summary:
            out[k] = round(float(summary[k]), 6)
    out["steps"] = int(summary.get("step", last.get("step", 0)) or 0)
    out["epoch"] = round(float(summary.get("epoch", last.get("epoch", 0)) or 0), 4)
    return out


def render_model_card(context: dict) -> str:
    meta = {
        "base_model": context["base_model"]["model_id"],
        "library_name": "peft" if context["output_kind"] == "lora-adapter" else "transformers",
        "pipeline_tag": "text-generation",
        "tags": ["codelutra-data", "trl", context["method"], "code"] + (["lora"] if context["config"]["lora"] else []),
        "datasets": [context["data"]["name"]],
    }
    return card(meta, render("model_card.md.j2", **context))


def _versions() -> dict:
    from importlib.metadata import PackageNotFoundError, version

    out = {"codelutra-data": __version__}
    for pkg in ("trl", "transformers", "torch", "peft", "datasets"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            pass
    return out


def _grpo_tasks(cfg: TrainConfig):
    """The train split of the task source (validation and test never reach the trainer), pinned as builds pin it."""
    from codelutra_data.builders.tasks import load_tasks, pinned_spec, source_name
    from codelutra_data.trainers.data import DataInfo

    spec = pinned_spec(cfg.tasks)
    tasks = load_tasks(spec, "train", cfg.limit)
    if any(t.split != "train" for t in tasks):
        raise UserError("internal: a task outside the train split reached GRPO")
    return tasks, DataInfo(name=source_name(cfg.tasks), version="", location=spec, split="train")


def _grpo_reward(cfg: TrainConfig, tasks: list, stack: contextlib.ExitStack, log: Callable[[str], None]):
    """The execution reward over `tasks`, its sandboxes open for the whole run: references checked first (a task
    whose reference fails cannot be rewarded honestly and is dropped), limits scaled to them as in builds."""
    from codelutra_data.builders.executors import make_executor
    from codelutra_data.builders.pipeline import References
    from codelutra_data.trainers.rewards import ExecutionReward

    executor = stack.enter_context(make_executor(cfg.sandbox, cfg.where))
    refs = References.check(executor, tasks)
    refs.require(0.95, "reference solutions", f"run `codelutra-data doctor --tasks {cfg.tasks}` for the list")
    failing = {t.task_id for t, _ in refs.failures}
    if failing:
        log(f"{len(failing)} tasks dropped: their reference solutions fail")
    kept = [t for t in tasks if t.task_id not in failing]
    reward = ExecutionReward(kept, executor, refs.timeouts(cfg.sandbox.cpu_time_s), cfg.reward, cfg.format_weight)
    sandbox, limits = executor.sandbox_info(tasks[0].domain)
    info = {"reward": cfg.reward, "format_weight": cfg.format_weight, "turns": cfg.turns, "sandbox": sandbox,
            "limits": limits,
            "tasks": len(kept), "dropped_failing_reference": sorted(failing)}
    return reward, info


def run_train(cfg: TrainConfig, log: Callable[[str], None] = print) -> TrainResult:
    """Train `cfg.model` on `cfg.data` with `cfg.method`; write the model, its card and a report to `cfg.out`."""
    cfg.validate()  # before importing TRL: a bad value is one line at once
    try:
        import peft  # noqa: F401
        import trl  # noqa: F401
    except ImportError:
        raise UserError("training needs TRL and peft: pip install 'codelutra-data[train]'") from None
    from codelutra_data.models.spec import resolve
    from codelutra_data.trainers.data import check_columns, load_pairs
    from codelutra_data.trainers.device import Device, ModelSize, plan as device_plan

    out = Path(cfg.out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise UserError(f"output {out} already exists; models are never overwritten (choose another --out)")
    method = method_module(cfg.method)
    if cfg.method == "grpo":
        tasks, data_info = _grpo_tasks(cfg)
    else:
        rows, data_info = load_pairs(cfg.data, cfg.split, cfg.data_revision, cfg.data_config)
        check_columns(rows, method.NEEDS, cfg.method, cfg.data)
    ref = resolve(cfg.model)
    log(f"loading {ref.model_id} from {ref.path}")
    model, tokenizer = load_model(ref.path)
    if cfg.method == "grpo":
        rows = method.prompt_rows(tasks, tokenizer)
    selection = method.select(rows, tokenizer, cfg)
    cfg, device_choices = device_plan(cfg, Device.here(), ModelSize.of(model, LORA_SHARE if cfg.lora else None),
                                      longest=selection.longest or None)
    report = selection.report()
    report["device_choices"] = device_choices
    dropped = ", ".join(f"{k} {v}" for k, v in report["dropped"].items()) or "none"
    log(f"{report['pairs_used']} of {report['pairs_loaded']} {'examples' if cfg.method == 'sft' else 'pairs'} "
        f"used (dropped: {dropped})")
    if not selection.rows:
        raise UserError(f"nothing to train on: every pair was dropped ({dropped}); raise --max-length")

    with atomic_directory(out) as tmp, contextlib.ExitStack() as stack:
        grpo = None
        peft_config = lora_config(cfg) if cfg.lora else None
        if cfg.method == "grpo":
            reward, grpo = _grpo_reward(cfg, tasks, stack, log)
            rewarded = [r for r in selection.rows if r["task_id"] in reward.tasks]
            if cfg.batch_size > len(rewarded):  # a step needs that many prompts: with fewer it would never run
                log(f"--batch-size {cfg.batch_size} lowered to {len(rewarded)}: the prompts there are")
                report["batch_size_lowered_to"] = len(rewarded)
                cfg = dataclasses.replace(cfg, batch_size=len(rewarded))
            trainer = method.trainer(cfg, model, tokenizer, rewarded, str(tmp / "trainer"), reward,
                                     peft_config=peft_config)
        else:
            ref_model = None
            if cfg.method != "sft" and not cfg.lora and not cfg.precompute_ref:
                ref_model = load_model(ref.path)[0]  # the same weights and revision as the policy
            trainer = method.trainer(cfg, model, tokenizer, selection.rows, str(tmp / "trainer"), ref_model=ref_model,
                                     peft_config=peft_config)
        started = time.monotonic()
        with contextlib.redirect_stdout(sys.stderr):  # TRL's per-step log lines; stdout carries only the result
            trainer.train()
        train_seconds = time.monotonic() - started
        if grpo is not None:
            grpo.update(steps=method.step_log(trainer.state.log_history), reward_stats=reward.stats.to_dict())
            if trainer.rollout_func is not None:
                grpo["rollout"] = trainer.rollout_func.stats.to_dict()
        metrics = final_metrics(trainer.state.log_history)
        trained = trainer.model
        if cfg.lora and cfg.merge:
            trained = trained.merge_and_unload()
        trained.config.use_cache = True  # training turned the KV cache off; generation wants it back
        output_kind = "lora-adapter" if cfg.lora and not cfg.merge else ("merged-lora" if cfg.lora else "full")
        shutil.rmtree(tmp / "trainer", ignore_errors=True)
        trained.save_pretrained(str(tmp), safe_serialization=True)
        tokenizer.save_pretrained(str(tmp))
        report.update(method=cfg.method, loss=method.describe(cfg), output=output_kind, metrics=metrics,
                      train_seconds=round(train_seconds, 2))
        if grpo is not None:
            rewards = [s["reward"] for s in grpo["steps"] if "reward" in s]
            report.update(reward_stats=grpo["reward_stats"],
                          mean_reward=round(sum(rewards) / len(rewards), 6) if rewards else None)
        context = {
            "method": cfg.method, "loss": method.describe(cfg), "config": dataclasses.asdict(cfg),
            "base_model": dataclasses.asdict(ref), "data": dataclasses.asdict(data_info), "report": report,
            "metrics": metrics, "train_seconds": train_seconds, "output_kind": output_kind, "cpu": cpu_name(),
            "versions": _versions(), "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
            "grpo": grpo,
        }
        (tmp / "README.md").write_text(render_model_card(context), encoding="utf-8")
        (tmp / "train_report.json").write_text(json.dumps(context, indent=1, default=str), encoding="utf-8")
    return TrainResult(out, report)
