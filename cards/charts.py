"""The pages' charts, drawn by matplotlib as SVG and inlined (no network, no script): the leaderboard's bars with
their 95% intervals, and the refine loop's validation and test scores per iteration. A plotting library picks the
axis ticks (round percentages) and draws intervals as error bars, which hand-made SVG got wrong."""

from __future__ import annotations

import io
import re

VALIDATION, TEST, BAR, BASE = "#3b6fd8", "#d8743b", "#3b6fd8", "#9aa4ae"


def _figure(width_in: float, height_in: float):
    import matplotlib

    matplotlib.use("Agg", force=True)
    from matplotlib.figure import Figure

    matplotlib.rcParams["svg.hashsalt"] = "codelutra-data"  # the same page for the same numbers
    matplotlib.rcParams["svg.fonttype"] = "none"  # text stays text: selectable, and sized by the page's font
    matplotlib.rcParams["text.usetex"] = False  # a matplotlibrc's LaTeX would parse names (and need a TeX install)
    figure = Figure(figsize=(width_in, height_in), layout="constrained")
    return figure, figure.add_subplot()


def _svg(figure, label: str) -> str:
    buffer = io.StringIO()
    figure.savefig(buffer, format="svg", metadata={"Date": None, "Creator": None})
    text = buffer.getvalue()
    text = text[text.index("<svg"):]
    # inline in HTML: no namespace declarations or RDF metadata (their URIs are names, but a page that must not
    # reach the network is easier to check with none)
    text = re.sub(r"<metadata>.*?</metadata>\s*", "", text, flags=re.S)
    text = re.sub(r'\s+xmlns(:\w+)?="[^"]*"', "", text)
    # scale with the page: drop the fixed size, keep the viewBox; name the chart for screen readers
    text = re.sub(r'<svg([^>]*?) width="[^"]*" height="[^"]*"', r'<svg\1', text, count=1)
    return text.replace("<svg", f'<svg role="img" aria-label="{_escape(label)}"', 1)


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace('"', "&quot;").replace("<", "&lt;")


def _literal(text: str) -> str:
    """A text from the data (a model's or a metric's name) as matplotlib draws it literally: a pair of `$` starts
    math text, which draws `a$x^2$b` as a formula and fails on `$\\foo$` (so the whole page did); `\\$` is a plain
    dollar sign."""
    return str(text).replace("$", r"\$")


def _percent_axis(axis, top: float) -> None:
    from matplotlib.ticker import MaxNLocator, PercentFormatter

    axis.set_major_locator(MaxNLocator(nbins=5, steps=[1, 2, 2.5, 5, 10]))
    axis.set_major_formatter(PercentFormatter(xmax=1.0, decimals=0 if top >= 0.05 else 1))


def leaderboard_bars(rows: list[dict], label: str) -> str:
    """One horizontal bar per row (best first, top down) with its 95% interval; grey for models not trained here."""
    names = [r["model"].rstrip("/").rsplit("/", 1)[-1] for r in rows]
    names = [n if len(n) <= 28 else n[:27] + "…" for n in names]
    figure, ax = _figure(7.2, 0.9 + 0.38 * len(rows))
    values = [r["value"] for r in rows]
    low = [max(0.0, r["value"] - r["ci_low"]) for r in rows]
    high = [max(0.0, r["ci_high"] - r["value"]) for r in rows]
    positions = list(range(len(rows)))[::-1]
    colors = [BASE if not r.get("dataset") else BAR for r in rows]
    bars = ax.barh(positions, values, color=colors, height=0.7, xerr=[low, high],
                   error_kw={"ecolor": "#1b1f24", "capsize": 3, "elinewidth": 1.2})
    for i, (patch, r) in enumerate(zip(bars.patches, rows)):
        patch.set_gid(f"bar-{i}-{'trained' if r.get('dataset') else 'base'}")
    ax.set_yticks(positions, [_literal(n) for n in names])
    top = max([0.01] + [r["ci_high"] for r in rows])
    ax.set_xlim(0, min(1.0, top * 1.18) if top < 0.85 else 1.0)
    _percent_axis(ax.xaxis, top)
    for y, r in zip(positions, rows):
        ax.text(r["ci_high"] + top * 0.015, y, f"{100 * r['value']:.1f}%", va="center", fontsize=9)
    ax.spines[["top", "right"]].set_visible(False)
    ax.grid(axis="x", color="#d8dee4", linewidth=0.8)
    ax.set_axisbelow(True)
    return _svg(figure, label)


def refine_scores(rows: list[dict], metric: str) -> str:
    """Validation and test score per iteration, each point with its 95% interval as an error bar."""
    figure, ax = _figure(7.2, 3.4)
    scored = [r for r in rows if r.get("validation") is not None]
    top = 0.05
    for key, color, offset in (("validation", VALIDATION, -0.04), ("test", TEST, 0.04)):
        points = [r for r in scored if r.get(key) is not None]
        if not points:
            continue
        xs = [r["iteration"] + offset for r in points]
        ys = [r[key] for r in points]
        lo = [max(0.0, r[key] - (r.get(f"{key}_ci95") or [r[key], r[key]])[0]) for r in points]
        hi = [max(0.0, (r.get(f"{key}_ci95") or [r[key], r[key]])[1] - r[key]) for r in points]
        line = ax.errorbar(xs, ys, yerr=[lo, hi], color=color, marker="o", markersize=5, linewidth=2, capsize=4,
                           label=key)
        line.lines[0].set_gid(f"series-{key}")
        top = max([top] + [y + h for y, h in zip(ys, hi)])
    ax.set_xticks([r["iteration"] for r in rows])
    ax.set_xlabel("iteration")
    ax.set_ylabel(_literal(metric or "score"))
    ax.set_ylim(0, min(1.0, top * 1.15))
    _percent_axis(ax.yaxis, top)
    ax.grid(axis="y", color="#d8dee4", linewidth=0.8)
    ax.spines[["top", "right"]].set_visible(False)
    if scored:
        ax.legend(loc="upper left", frameon=False, ncols=2)
    return _svg(figure, "validation and test score per iteration")
