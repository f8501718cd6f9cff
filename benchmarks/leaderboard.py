"""The leaderboard: results-store rows grouped into comparable tables (same suite, split, suite hash and
metric), each model beside the base model it was trained from. Rendered for the terminal (rich), as
markdown, and as one self-contained HTML page (no network needed to view it)."""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path

from codelutra_data.cards import render
from codelutra_data.cards.charts import leaderboard_bars
from codelutra_data.errors import UserError
from codelutra_data.files import atomic_write


@dataclass
class Board:
    suite: str
    split: str
    metric: str
    suite_hash: str
    tasks: int
    rows: list[dict] = field(default_factory=list)

    @property
    def title(self) -> str:
        return f"{self.suite} ({self.split}, {self.tasks} tasks) · {self.metric}"


def boards(rows: list[dict]) -> list[Board]:
    """Group comparable rows, best first; add `delta` against the base model's row where it was evaluated."""
    groups: dict[tuple, Board] = {}
    for row in rows:
        key = (row["suite"], row["split"], row["suite_hash"], row["metric"])
        if key not in groups:
            groups[key] = Board(row["suite"], row["split"], row["metric"], row["suite_hash"], row["tasks"])
        groups[key].rows.append(dict(row))
    for board in groups.values():
        board.rows.sort(key=lambda r: (-r["value"], r["model"]))
        by_model = {r["model"]: r["value"] for r in board.rows}
        for r in board.rows:
            base = r.get("base_model") or ""
            r["delta"] = r["value"] - by_model[base] if base and base in by_model and base != r["model"] else None
    return sorted(groups.values(), key=lambda b: (b.suite, b.split, b.metric, b.suite_hash))


def _pct(x: float | None) -> str:
    return "" if x is None else f"{100 * x:.1f}"


def _trained(r: dict) -> str:
    if not r.get("dataset"):
        return ""
    return f"{r['method'] or '?'} on {r['dataset']}" + (f" {r['dataset_version']}" if r.get("dataset_version") else "")


def _temperature(r: dict) -> str:
    return "" if r.get("temperature") is None else f"T={r['temperature']:g}"


def render_terminal(rows: list[dict]) -> None:
    from rich.console import Console
    from rich.markup import escape  # names from the data as written: `[/x]` in a model's name is not markup
    from rich.table import Table

    console = Console() if sys.stdout.isatty() else Console(width=160)  # piped: do not cut names at 80 columns
    for board in boards(rows):
        table = Table(title=escape(board.title), title_justify="left")
        for name, justify in (("#", "right"), ("model", "left"), ("score %", "right"), ("95% CI", "right"),
                              ("vs base", "right"), ("trained", "left"), ("n", "right"), ("sampling", "left"),
                              ("date", "left")):
            table.add_column(name, justify=justify)
        for i, r in enumerate(board.rows, 1):
            delta = "" if r["delta"] is None else f"{100 * r['delta']:+.1f}"
            table.add_row(str(i), escape(r["model"]), _pct(r["value"]), f"{_pct(r['ci_low'])}–{_pct(r['ci_high'])}",
                          delta, escape(_trained(r)), str(r["n"]), _temperature(r), str(r["date"])[:10])
        console.print(table)
        console.print(f"suite hash {escape(board.suite_hash)}\n", style="dim")


def render_markdown(rows: list[dict]) -> str:
    out = []
    for board in boards(rows):
        out += [f"### {board.title}", "", "| # | model | score % | 95% CI | vs base | trained | n | sampling | date |",
                "|---:|---|---:|---:|---:|---|---:|---|---|"]
        for i, r in enumerate(board.rows, 1):
            delta = "" if r["delta"] is None else f"{100 * r['delta']:+.1f}"
            out.append(f"| {i} | {r['model']} | {_pct(r['value'])} | {_pct(r['ci_low'])}–{_pct(r['ci_high'])} | "
                       f"{delta} | {_trained(r)} | {r['n']} | {_temperature(r)} | {str(r['date'])[:10]} |")
        out += ["", f"suite hash `{board.suite_hash}`", ""]
    return "\n".join(out)


def render_html(rows: list[dict], out_dir: str | Path, title: str = "codelutra-data leaderboard") -> Path:
    from codelutra_data import __version__

    if not rows:
        raise UserError("the results store has no rows to show")
    page = render("leaderboard.html.j2",
        title=title, tool_version=__version__,
        boards=[{"id": f"board-{i}", "board": b, "chart": leaderboard_bars(b.rows, f"{b.title} bar chart"),
                 "rows": [{**r, "trained": _trained(r), "sampling": _temperature(r), "date": str(r["date"])[:10]}
                          for r in b.rows]} for i, b in enumerate(boards(rows))])
    return atomic_write(Path(out_dir) / "index.html", page)
