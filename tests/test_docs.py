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
