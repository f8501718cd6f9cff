"""The floors of the house (ARCHITECTURE.md), read from every file: imports inside functions count, the
package-dir mapping of pyproject is applied. No cycle between files; between areas, arrows only go down;
nothing in the library imports the speed and experiment scripts; no module over 400 lines but the one that must
stay a single file inside the sandbox."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = {"codelutra_data": ("codelutra_data",), "builders": ("codelutra_data", "builders"),
            "sandboxes": ("codelutra_data", "sandboxes"), "benchmarks": ("codelutra_data", "benchmarks"),
            "trainers": ("codelutra_data", "trainers"), "cards": ("codelutra_data", "cards")}
# An area may import the areas on lower floors and its own; scripts sit on top of everything.
FLOORS = {"core": 1, "cards": 1, "sandboxes": 2, "builders": 3, "benchmarks": 4, "trainers": 5, "scripts": 6}
SCRIPTS = ("codelutra_data.benchmarks.speed", "codelutra_data.benchmarks.experiments")
MAX_LINES = 400
ONE_FILE: set[str] = set()  # every module, the sandbox's own included, stays under the limit


def modules() -> dict[str, Path]:
    found = {}
    for folder, prefix in PACKAGES.items():
        for path in (ROOT / folder).rglob("*.py"):
            parts = [*prefix, *path.relative_to(ROOT / folder).with_suffix("").parts]
            if parts[-1] == "__init__":
                parts = parts[:-1]
            found[".".join(parts)] = path
    return found


MODULES = modules()


def _known(name: str) -> str | None:
    """The module a dotted name refers to (`a.b.c` may be `a.b`'s attribute c)."""
    parts = name.split(".")
    while parts:
        if ".".join(parts) in MODULES:
            return ".".join(parts)
        parts.pop()
    return None


def imports(module: str) -> set[str]:
    path = MODULES[module]
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    out = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            out.update(filter(None, (_known(a.name) for a in node.names)))
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[:len(package.split(".")) - (node.level - 1)]
                base = ".".join(anchor + ([base] if base else []))
            for alias in node.names:
                target = _known(f"{base}.{alias.name}") or _known(base)
                if target:
                    out.add(target)
    out.discard(module)
    out.discard("codelutra_data")  # the top package's __init__ holds only the version
    return out


GRAPH = {m: imports(m) for m in MODULES}


def area(module: str) -> str:
    if module.startswith(SCRIPTS):
        return "scripts"
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[1] in FLOORS else "core"


def test_no_import_cycle_between_files():
    index, low, stack, on_stack, cycles = {}, {}, [], set(), []

    def visit(v: str) -> None:  # Tarjan's strongly connected components
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in GRAPH[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for module in GRAPH:
        if module not in index:
            visit(module)
    assert not cycles, cycles


def test_areas_import_only_downwards():
    upward = sorted(f"{m} -> {t}" for m, targets in GRAPH.items() for t in targets
                    if area(t) != area(m) and FLOORS[area(t)] >= FLOORS[area(m)])
    assert not upward, upward


def test_nothing_in_the_library_imports_the_scripts():
    users = sorted(f"{m} -> {t}" for m, targets in GRAPH.items() for t in targets
                   if area(t) == "scripts" and area(m) != "scripts")
    assert not users, users


@pytest.mark.parametrize("module", sorted(MODULES))
def test_modules_stay_small(module):
    path = MODULES[module]
    if str(path.relative_to(ROOT)) in ONE_FILE:
        return
    lines = len(path.read_text(encoding="utf-8").splitlines())
    assert lines <= MAX_LINES, f"{path.relative_to(ROOT)} has {lines} lines: split it by idea (ARCHITECTURE.md)"


def test_the_graph_sees_what_it_checks():
    """A parser that finds nothing passes every floor: the graph must hold the arrows we know exist."""
    assert "codelutra_data.builders.executors.local" in GRAPH["codelutra_data.builders.executors.ray"]
    assert "codelutra_data.models.registry" in GRAPH["codelutra_data.models.engine"]
    assert any(area(t) == "builders" for t in GRAPH["codelutra_data.benchmarks.runner"])
    assert area("codelutra_data.benchmarks.speed.generation") == "scripts"


def test_every_package_is_installed():
    """pyproject lists the packages by name: a new subpackage missing there works in the editable install the
    tests use and is absent from a wheel."""
    import tomllib

    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    packages = {m for m, path in MODULES.items() if path.name == "__init__.py"}
    assert packages <= listed, sorted(packages - listed)
