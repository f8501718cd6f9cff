"""Whether a model trained here saw the suite it is graded on: its training release's tasks (as the release's
build configuration names them) against the suite's, by the 13-gram rule of `builders.decontaminate`."""

from __future__ import annotations

import json
from pathlib import Path

from codelutra_data.errors import UserError
from codelutra_data.records import Task


def training_overlap(model_path: str, suite_name: str, tasks: list[Task]) -> dict | None:
    """None for a model not trained here (or whose release is not on this machine); else what overlaps."""
    from codelutra_data.builders.decontaminate import overlap
    from codelutra_data.builders.release.read import build_info
    from codelutra_data.builders.tasks import load_tasks
    from codelutra_data.builders.tasks.adapters import TaskFormatSettings

    report = Path(model_path) / "train_report.json"
    if not report.is_file():
        return None
    try:
        location = Path(json.loads(report.read_text(encoding="utf-8"))["data"]["location"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if not (location / "build_config.yaml").is_file():
        return {"release": str(location), "checked": False,
                "note": "the training release is not on this machine: overlap not checked"}
    try:
        info = build_info(location)
        config, stats = info["config"], info.get("stats") or {}
        fmt = TaskFormatSettings(format=config.get("format", "auto"), columns=config.get("columns", ""))
        trained = load_tasks(config["tasks"], config.get("split", "all"), config.get("limit") or None, fmt)
        left_out = set(stats.get("tasks_dropped_failing_reference") or [])
        for report in stats.get("contamination") or []:
            if report.get("dropped"):
                left_out |= set(report.get("tasks") or [])
        trained = [t for t in trained if t.task_id not in left_out]
    except (UserError, KeyError, TypeError, AttributeError) as exc:
        return {"release": str(location), "checked": False, "note": f"the training tasks cannot be read: {exc}"}
    found = overlap(tasks, suite_name, trained)
    return {"release": str(location), "checked": True, "training_tasks": len(trained),
            "suite_tasks_overlapping": len(found.overlapping), "tasks": sorted(found.overlapping)[:50]}
