"""The loop's report: one row per iteration, as `report.json` and a self-contained page with the validation and
test scores plotted (with their 95% intervals)."""

from __future__ import annotations

import json
from pathlib import Path

from codelutra_data.cards import render
from codelutra_data.files import atomic_write


def report_rows(state: dict) -> list[dict]:
    """One row per iteration, the numbers the report shows."""
    rows = []
    for it in state["iterations"]:
        ev, tr = it.get("eval") or {}, it.get("train") or {}
        rows.append({"iteration": it["iteration"], "model": it.get("model"), "release": it.get("release"),
                     "sampling_pass_rate": it.get("sampling_pass_rate"), "pairs": it.get("pairs"),
                     "tasks_all_correct": it.get("tasks_all_correct"), "tasks_no_correct": it.get("tasks_no_correct"),
                     "train_loss": tr.get("loss"), "reward_margin": tr.get("reward_margin"),
                     "validation": (ev.get("validation") or {}).get("value"),
                     "validation_ci95": (ev.get("validation") or {}).get("ci95"),
                     "test": (ev.get("test") or {}).get("value"), "test_ci95": (ev.get("test") or {}).get("ci95"),
                     "metric": (ev.get("test") or {}).get("metric"),
                     "build_s": it["stages_s"].get("build"), "train_s": it["stages_s"].get("train"),
                     "eval_s": it["stages_s"].get("eval"), "best": state.get("best") == it["iteration"]})
    return rows


def write_report(out: Path, state: dict) -> Path:
    """`<out>/report.json` and a self-contained page `<out>/report.html` with the scores per iteration."""
    rows = report_rows(state)
    atomic_write(out / "report.json", json.dumps({**state, "rows": rows}, indent=1, default=str))
    return atomic_write(out / "report.html", render("refine_report.html.j2", state=state, rows=rows, plot=_plot(rows)))


def _plot(rows: list[dict]) -> dict:
    """Points of the validation and test lines with their 95% intervals, in SVG coordinates."""
    width, height, pad = 560, 260, 40
    scored = [r for r in rows if r["validation"] is not None]
    top = max([max((r["validation_ci95"] or [0, 0])[1], (r["test_ci95"] or [0, 0])[1]) for r in scored] + [0.05])
    top = min(1.0, top * 1.15)
    span = max(1, len(rows) - 1)

    def x(i: int) -> float:
        return round(pad + (width - 2 * pad) * i / span, 1)

    def y(v: float) -> float:
        return round(height - pad - (height - 2 * pad) * v / top, 1)

    series = {}
    for key in ("validation", "test"):
        series[key] = [{"x": x(r["iteration"]), "y": y(r[key]), "lo": y(r[f"{key}_ci95"][0]),
                        "hi": y(r[f"{key}_ci95"][1]), "value": r[key], "iteration": r["iteration"]}
                       for r in scored]
    ticks = [{"y": y(top * i / 4), "label": f"{100 * top * i / 4:.{1 if top < 0.1 else 0}f}%"} for i in range(5)]
    return {"width": width, "height": height, "pad": pad, "series": series, "ticks": ticks,
            "xs": [{"x": x(r["iteration"]), "label": r["iteration"]} for r in rows]}
