"""The documents say what is there: the README's Python imports import, and every file or folder ARCHITECTURE.md
names exists (a module moved without its map updated fails here)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
IMPORT = re.compile(r"^(from codelutra_data[\w.]* import [\w, ]+|import codelutra_data[\w.]*)$", re.M)
PATH = re.compile(r"`((?:codelutra_data|builders|sandboxes|benchmarks|trainers|cards|tests)/[\w./-]*)`")


@pytest.mark.parametrize("line", sorted(set(IMPORT.findall((ROOT / "README.md").read_text(encoding="utf-8")))))
def test_readme_imports_import(line):
    exec(line, {})


def test_architecture_names_only_paths_that_exist():
    text = (ROOT / "ARCHITECTURE.md").read_text(encoding="utf-8")
    named = sorted(set(PATH.findall(text)))
    assert len(named) > 20, "the map names the modules it describes"
    missing = [p for p in named if not (ROOT / p).exists()]
    assert not missing, missing


def _readme_commands() -> list[str]:
    """Every `codelutra-data ...` line of the README's bash blocks, continuation lines joined, comments cut."""
    commands, block, pending = [], False, ""
    for line in (ROOT / "README.md").read_text(encoding="utf-8").splitlines():
        if line.startswith("```"):
            block = line.strip() == "```bash" if not block else False
            continue
        if not block:
            continue
        line = pending + line.split("  #")[0].strip()
        pending = line[:-1] + " " if line.endswith("\\") else ""
        if not pending and line.startswith("codelutra-data "):
            commands.append(line)
    return commands


def _concrete(command: str) -> bool:
    """A line a user can paste as it is (not `build ... --resume` or `--rejected random|first|last`)."""
    return not any(mark in command for mark in ("...", "|", "<", "$", "["))


@pytest.mark.parametrize("command", [c for c in _readme_commands() if _concrete(c)])
def test_readme_commands_parse(command):
    """Each example's options exist and their values convert: click parses the line as the command would."""
    import shlex

    import click

    from codelutra_data.cli import cli

    name, command_, tokens = "codelutra-data", cli, shlex.split(command)[1:]
    ctx = click.Context(cli, info_name=name)
    while isinstance(command_, click.Group):
        name, command_, tokens = command_.resolve_command(ctx, tokens)
        ctx = click.Context(command_, info_name=name, parent=ctx)
    parsed = command_.make_context(name, list(tokens), parent=ctx.parent)
    assert not parsed.args, f"unparsed {parsed.args} in: {command}"


def test_the_readme_shows_its_examples():
    assert len([c for c in _readme_commands() if _concrete(c)]) > 25
