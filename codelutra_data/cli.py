"""The `codelutra-data` command: a lazy click group.

Each area (builders, benchmarks, trainers) owns a small `commands.py`; the group imports it only when
one of its commands runs, so `--help` and `tasks list` start fast and never import torch.
"""

from __future__ import annotations

import importlib
import sys

import click

from codelutra_data import __version__
from codelutra_data.errors import UserError

# command name -> "module:attribute"
LAZY_COMMANDS = {
    "build": ("codelutra_data.builders.commands:build", "Sample, execute and pair: build a versioned dataset."),
    "push": ("codelutra_data.builders.commands:push", "Publish a release on the Hugging Face Hub: one commit, one tag."),
    "tasks": ("codelutra_data.builders.commands:tasks", "List and inspect task sources (counts, splits, licences)."),
    "refine": ("codelutra_data.trainers.commands:refine", "The CodeLutra loop: build, train, eval, repeated; keeps the best on validation."),
    "train": ("codelutra_data.trainers.commands:train", "Train on a release with TRL: codelutra, focal (IterPref), dpo, sft."),
    "doctor": ("codelutra_data.builders.doctor:doctor", "Check sandbox isolation and limits; run a source's references."),
    "eval": ("codelutra_data.benchmarks.commands:eval_command", "Grade a model, samples or predictions on a suite; record the result."),
    "leaderboard": ("codelutra_data.benchmarks.commands:leaderboard", "Results as leaderboard tables: terminal, markdown, or a static HTML page."),
}


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(super().list_commands(ctx)) | set(LAZY_COMMANDS))

    def get_command(self, ctx: click.Context, name: str):
        if name in LAZY_COMMANDS:
            module, _, attr = LAZY_COMMANDS[name][0].partition(":")
            return getattr(importlib.import_module(module), attr)
        return super().get_command(ctx, name)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, LAZY_COMMANDS[name][1]) for name in sorted(LAZY_COMMANDS)]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


@click.group(cls=LazyGroup)
@click.version_option(__version__, prog_name="codelutra-data")
def cli() -> None:
    """Turn a code model's own successes and failures into execution-verified training data."""


def main(argv: list[str] | None = None) -> int:
    try:
        cli.main(args=argv, prog_name="codelutra-data", standalone_mode=False)
    except UserError as exc:
        click.echo(f"error: {exc}", err=True)
        return 2
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        return 130
    except click.UsageError as exc:  # one line, like every other bad input
        where = f" (see `{exc.ctx.command_path} --help`)" if exc.ctx is not None else ""
        click.echo(f"error: {exc.format_message()}{where}", err=True)
        return exc.exit_code
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    except KeyboardInterrupt:
        args = sys.argv[1:] if argv is None else argv
        hint = ": rerun the same command with --resume to continue" if "build" in args[:1] else " (nothing written)"
        click.echo(f"interrupted{hint}", err=True)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
