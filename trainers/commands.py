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
