"""The loop's report: one row per iteration, as `report.json` and a self-contained page with the validation and
test scores plotted (with their 95% intervals)."""

from __future__ import annotations

import json
from pathlib import Path

from codelutra_data.cards import render
from codelutra_data.cards.charts import refine_scores
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
    metric = next((r["metric"] for r in rows if r.get("metric")), "")
    return atomic_write(out / "report.html", render("refine_report.html.j2", state=state, rows=rows,
                                                    plot=refine_scores(rows, metric)))
