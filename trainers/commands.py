"""CLI commands of the trainers: `train` and `refine`. Loaded lazily by the core's command group."""

from __future__ import annotations

import json

import click

from codelutra_data.builders.build_config import BuildConfig
from codelutra_data.config import load
from codelutra_data.flags import config_option, json_option, options
from codelutra_data.trainers.config import TrainConfig
from codelutra_data.trainers.refine.config import BUILD_FLAGS, TRAIN_FLAGS, RefineConfig


@click.command()
@config_option("training")
@options(TrainConfig)
@json_option("the training report")
def train(config_file, as_json, **flags) -> None:
    """Train a model with TRL: on a release of pairs (codelutra, focal, dpo, sft), or online on a task source with
    execution rewards (grpo); writes the model and its card."""
    from codelutra_data.trainers.train import run_train

    cfg = load(TrainConfig, config_file, flags)
    result = run_train(cfg, log=lambda msg: click.echo(msg, err=True))
    report = result.report
    if as_json:
        click.echo(json.dumps({"model": str(result.out_dir), **report}, indent=1))
        return
    m = report["metrics"]
    click.echo(f"model written: {result.out_dir} ({report['output']})")
    unit = "prompts" if report["method"] == "grpo" else "examples" if report["method"] == "sft" else "pairs"
    click.echo(f"{report['pairs_used']} of {report['pairs_loaded']} {unit} used; {m.get('steps', 0)} steps in "
               f"{report['train_seconds']:.1f} s; final loss {m.get('loss', m.get('train_loss', float('nan'))):.4f}"
               + (f", reward margin {m['rewards/margins']:.4f}" if "rewards/margins" in m else ""))


@click.command()
@click.option("--config", "config_file", type=click.Path(dir_okay=False),
              help="YAML of refine options, with sections build:, train:, eval: for any option of those commands; "
                   "flags override it.")
@options(RefineConfig, flags={"batch_size": ("--gen-batch-size",)})
@options(BuildConfig, only=BUILD_FLAGS, section="build", label="build: ")
@options(TrainConfig, only=TRAIN_FLAGS, section="train", label="train: ", flags={"batch_size": ("--train-batch-size",)})
@json_option("the whole run (config, every iteration)")
def refine(config_file, as_json, **flags) -> None:
    """The CodeLutra loop: build -> train -> eval, repeated; keeps the best model on validation."""
    from rich.console import Console

    from codelutra_data.trainers.refine import run_refine

    cfg = load(RefineConfig, config_file, flags)
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
