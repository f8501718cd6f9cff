"""CLI command of the trainers: `train`. Loaded lazily by the core's command group."""

from __future__ import annotations

import json

import click

from codelutra_data.config import load_yaml, merge


@click.command()
@click.option("--config", "config_file", type=click.Path(dir_okay=False), help="YAML file of training options; flags override it.")
@click.option("--method", help="codelutra (DPO + SFT term), focal (IterPref Target-DPO on error lines), dpo, or sft. [codelutra]")
@click.option("--data", help="A release directory (releases/NAME/VERSION), a pairs .parquet/.jsonl file, or a Hub dataset id.")
@click.option("--data-revision", help="Hub datasets only: the revision (tag) to load.")
@click.option("--data-config", help="The release's config of pairs to read: pairs or focal_pairs. [pairs if present, else focal_pairs]")
@click.option("--split", help="Split of the pairs to train on. [train]")
@click.option("--limit", type=int, help="Use the first N pairs.")
@click.option("--model", help="Bundled name (smollm2-135m), a local directory, or a Hub id. [smollm2-135m]")
@click.option("--out", help="Directory to write the trained model to (must not exist).")
@click.option("--beta", type=float, help="DPO β. [0.1]")
@click.option("--sft-weight", type=float, help="codelutra: λ, weight of NLL(chosen). [1.0]")
@click.option("--focal-alpha", type=float, help="focal: α, weight of NLL(chosen); 0 = Target-DPO. [1.0]")
@click.option("--learning-rate", type=float, help="[1e-5 full fine-tuning, 1e-4 LoRA]")
@click.option("--epochs", type=float, help="[3]")
@click.option("--max-steps", type=int, help="Stop after N optimizer steps (overrides --epochs).")
@click.option("--batch-size", type=int, help="Pairs per device step. [4]")
@click.option("--gradient-accumulation-steps", type=int, help="[1]")
@click.option("--max-length", type=int, help="Tokens per prompt+completion; longer pairs are truncated, pairs whose prompt fills it are dropped and counted. [2048]")
@click.option("--warmup-ratio", type=float, help="[0.03]")
@click.option("--lr-scheduler", help="[cosine]")
@click.option("--gradient-checkpointing/--no-gradient-checkpointing", default=None, help="Less memory, about a third slower.")
@click.option("--precompute-ref/--no-precompute-ref", default=None, help="Compute reference log-probs once before training.")
@click.option("--seed", type=int, help="[0]")
@click.option("--lora/--no-lora", default=None, help="Train a LoRA adapter (peft) instead of all weights.")
@click.option("--lora-r", type=int, help="[16]")
@click.option("--lora-alpha", type=int, help="[32]")
@click.option("--lora-dropout", type=float, help="[0.05]")
@click.option("--lora-target", help="Modules LoRA adapts. [all-linear]")
@click.option("--merge/--no-merge", default=None, help="With --lora: write the merged full model instead of the adapter.")
@click.option("--json", "as_json", is_flag=True, help="Print the training report as JSON.")
def train(config_file, as_json, **options) -> None:
    """Train a model on a release with TRL: codelutra, focal, dpo or sft; writes the model and its card."""
    from codelutra_data.trainers.config import TrainConfig
    from codelutra_data.trainers.train import run_train

    cfg = merge(TrainConfig, load_yaml(config_file) if config_file else {}, options)
    result = run_train(cfg, log=lambda msg: click.echo(msg, err=True))
    report = result.report
    if as_json:
        click.echo(json.dumps({"model": str(result.out_dir), **report}, indent=1))
        return
    m = report["metrics"]
    click.echo(f"model written: {result.out_dir} ({report['output']})")
    click.echo(f"{report['pairs_used']} of {report['pairs_loaded']} used; {m.get('steps', 0)} steps in "
               f"{report['train_seconds']:.1f} s; final loss {m.get('loss', m.get('train_loss', float('nan'))):.4f}"
               + (f", reward margin {m['rewards/margins']:.4f}" if "rewards/margins" in m else ""))


_BUILD_FLAGS = {"limit": "limit", "samples": "samples", "pairs_per_task": "pairs_per_task",
                "reference_fallback": "reference_fallback", "max_new_tokens": "max_new_tokens",
                "temperature": "temperature", "top_p": "top_p", "backend": "backend", "threads": "threads",
                "gen_batch_size": "batch_size", "workers": "workers", "cpu_time_s": "cpu_time_s",
                "max_rounds": "max_rounds", "trajectories_per_task": "trajectories_per_task", "reviser": "reviser",
                "executor": "executor", "ray_address": "ray_address", "replicas": "replicas",
                "sandbox_workers": "sandbox_workers"}
_TRAIN_FLAGS = {"lora": "lora", "max_steps": "max_steps", "epochs": "epochs", "learning_rate": "learning_rate",
                "train_batch_size": "batch_size", "max_length": "max_length", "beta": "beta",
                "sft_weight": "sft_weight", "focal_alpha": "focal_alpha",
                "gradient_accumulation_steps": "gradient_accumulation_steps"}


@click.command()
@click.option("--config", "config_file", type=click.Path(dir_okay=False),
              help="YAML of refine options, with sections build:, train:, eval: for any option of those commands; flags override it.")
@click.option("--tasks", help="Task source with train, validation and test splits (spider-dev, mbpp, a Spider/BIRD folder). [spider-dev]")
@click.option("--mode", type=click.Choice(["pairs", "trajectories"]), help="pairs: CodeLutra; trajectories: IterPref debug trajectories. [pairs]")
@click.option("--method", help="codelutra, dpo, sft, or focal (with --mode trajectories). [codelutra]")
@click.option("--iterations", type=int, help="Iterations at most. [3]")
@click.option("--patience", type=int, help="Stop after this many iterations without a better validation score. [1]")
@click.option("--train-from", type=click.Choice(["current", "base"]), help="current: train the previous iteration's model on its own pairs; base: the base model on all pairs so far. [current]")
@click.option("--model", help="The base model. [smollm2-135m]")
@click.option("--out", help="Folder for the loop's releases, models, evals and report (required).")
@click.option("--name", help="Release name; iteration t is version 0.t.0. [refine-<tasks>]")
@click.option("--seed", type=int, help="[0]")
@click.option("--eval-limit", type=int, help="Grade only the first N tasks of validation and test. [0 = all]")
@click.option("--store", help="Results store the evaluations are recorded in. [results/results.duckdb]")
@click.option("--push-to-hub", metavar="NAMESPACE/NAME", help="Push each iteration's release to this Hub dataset repo.")
@click.option("--private", is_flag=True, default=None, help="With --push-to-hub: create the repo private.")
@click.option("--resume", is_flag=True, default=None, help="Continue a killed run in --out, at the stage it was in.")
@click.option("--limit", type=int, help="build: train tasks sampled per iteration. [30]")
@click.option("--samples", type=int, help="build: samples per task. [8]")
@click.option("--pairs-per-task", type=int, help="build: pairs per task. [2]")
@click.option("--reference-fallback/--no-reference-fallback", default=None, help="build: gold answer as chosen when no sample is correct.")
@click.option("--max-new-tokens", type=int, help="build: [128 for SQL, 384 for Python]")
@click.option("--temperature", type=float, help="build: [0.8]")
@click.option("--top-p", type=float, help="build: [0.95]")
@click.option("--backend", help="build and eval: model backend. [auto]")
@click.option("--threads", type=int, help="build: CPU generation threads.")
@click.option("--gen-batch-size", type=int, help="build: sequences per generation batch. [32]")
@click.option("--workers", type=int, help="build: sandbox workers. [2]")
@click.option("--cpu-time", "cpu_time_s", type=float, help="build: CPU seconds per program. [5]")
@click.option("--max-rounds", type=int, help="build, trajectories: revisions after the first attempt. [5]")
@click.option("--trajectories-per-task", type=int, help="build, trajectories: [1]")
@click.option("--reviser", help="build, trajectories: model spec that writes the fixes. [the current model]")
@click.option("--executor", type=click.Choice(["local", "ray"]), help="build and eval: where the work runs (see `build --help`); never changes results, so --resume may switch it. [local]")
@click.option("--ray-address", help="build and eval, ray: auto (the running cluster) or HOST:PORT. [a Ray instance per stage]")
@click.option("--replicas", type=int, help="build and eval, ray: model replicas. [1]")
@click.option("--sandbox-workers", type=int, help="build and eval, ray: sandbox processes across the cluster. [each node's CPUs]")
@click.option("--lora/--no-lora", default=None, help="train: LoRA (merged after each iteration, so the next one samples a full model).")
@click.option("--max-steps", type=int, help="train: optimizer steps per iteration (overrides --epochs).")
@click.option("--epochs", type=float, help="train: [3]")
@click.option("--learning-rate", type=float, help="train: [1e-5 full, 1e-4 LoRA]")
@click.option("--train-batch-size", type=int, help="train: pairs per step. [4]")
@click.option("--max-length", type=int, help="train: tokens per prompt+completion. [2048]")
@click.option("--beta", type=float, help="train: DPO β. [0.1]")
@click.option("--sft-weight", type=float, help="train, codelutra: λ. [1.0]")
@click.option("--focal-alpha", type=float, help="train, focal: α. [1.0]")
@click.option("--gradient-accumulation-steps", type=int, help="train: [1]")
@click.option("--json", "as_json", is_flag=True, help="Print the whole run (config, every iteration) as JSON.")
def refine(config_file, as_json, **options) -> None:
    """The CodeLutra loop: build -> train -> eval, repeated; keeps the best model on validation."""
    from rich.console import Console

    from codelutra_data.trainers.refine import RefineConfig, run_refine

    file_values = load_yaml(config_file) if config_file else {}
    sections = {key: dict(file_values.pop(key, None) or {}) for key in ("build", "train", "eval")}
    for flags, section in ((_BUILD_FLAGS, "build"), (_TRAIN_FLAGS, "train")):
        for flag, option in flags.items():
            value = options.pop(flag)
            if value is not None:
                sections[section][option] = value
    cfg = merge(RefineConfig, {**file_values, **sections}, options)
    console = Console(stderr=True)
    result = run_refine(cfg, log=lambda message: console.print(message, markup=False))
    if as_json:
        click.echo(json.dumps(result.state, indent=1, default=str))
        return
    print_report(Console() if Console().is_terminal else Console(width=150), result)


def print_report(console, result) -> None:
    from rich.table import Table

    from codelutra_data.trainers.refine import report_rows

    def pct(v):
        return "" if v is None else f"{100 * v:.1f}%"

    def ci(v, interval):
        return "" if v is None else f"{100 * v:.1f}% [{100 * interval[0]:.1f}, {100 * interval[1]:.1f}]"

    table = Table(title=f"refine: {result.state['config']['tasks']} ({result.state['config']['method']})")
    for column in ("it", "sampling pass", "pairs", "all/none correct", "train loss", "margin", "validation", "test",
                   "build/train/eval s"):
        table.add_column(column, justify="left" if column == "it" else "right")
    for r in report_rows(result.state):
        table.add_row(f"{r['iteration']}{' *' if r['best'] else ''}", pct(r["sampling_pass_rate"]),
                      "" if r["pairs"] is None else str(r["pairs"]),
                      "" if r["tasks_all_correct"] is None else f"{r['tasks_all_correct']}/{r['tasks_no_correct']}",
                      "" if r["train_loss"] is None else f"{r['train_loss']:.4f}",
                      "" if r["reward_margin"] is None else f"{r['reward_margin']:.4f}",
                      ci(r["validation"], r["validation_ci95"]), ci(r["test"], r["test_ci95"]),
                      f"{r['build_s'] or '-'}/{r['train_s'] or '-'}/{r['eval_s'] or '-'}")
    console.print(table)
    console.print(f"stopped: {result.state['stopped']}; best (*): {result.state['best_model']}", markup=False)
    console.print(f"report: {result.out / 'report.html'} and {result.out / 'report.json'}", markup=False)
