"""Declared dependency ranges are true: what is installed satisfies them, and the lowest version allowed of the
libraries whose APIs we lean on hardest is one that a CI environment installs and tests (constraints.txt for
the main suite, constraints-vllm.txt for `make test-vllm`, which pins the older transformers vLLM needs)."""

from __future__ import annotations

import re
import tomllib
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from packaging.requirements import Requirement
from packaging.version import Version

ROOT = Path(__file__).resolve().parent.parent
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
TESTED_AT_THE_BOTTOM = ("transformers", "trl", "datasets", "huggingface-hub", "torch")


def _pins(name: str) -> set[Version]:
    pins = set()
    for file in ("constraints.txt", "constraints-vllm.txt"):
        for line in (ROOT / file).read_text().splitlines():
            m = re.match(r"^([A-Za-z0-9_.-]+)==([^\s;#]+)", line)
            if m and m.group(1).lower().replace("_", "-") == name:
                pins.add(Version(m.group(2).split("+")[0]))
    return pins


def _requirements() -> list[Requirement]:
    deps = list(PYPROJECT["project"]["dependencies"])
    deps += PYPROJECT["project"]["optional-dependencies"]["train"]
    return [Requirement(d) for d in deps]


def test_installed_versions_satisfy_the_declared_ranges():
    for req in _requirements():
        try:
            installed = Version(version(req.name).split("+")[0])
        except PackageNotFoundError:
            continue
        assert req.specifier.contains(installed, prereleases=True), f"{req.name} {installed} not in {req.specifier}"


def test_lowest_allowed_versions_are_tested_in_ci():
    for req in _requirements():
        name = req.name.lower().replace("_", "-")
        if name not in TESTED_AT_THE_BOTTOM:
            continue
        lows = [Version(s.version) for s in req.specifier if s.operator in (">=", "==", "~=")]
        assert lows, f"{name} has no lower bound"
        low = max(lows)
        tested = _pins(name)
        assert tested, f"{name} is pinned in no CI environment"
        assert min(tested) == low or (min(tested).release[:2] == low.release[:2] and min(tested) >= low), \
            f"{name}>={low} is declared, but the lowest version CI tests is {min(tested)}"
