"""An eval's outputs (results.json, per_task.jsonl, the predictions file asked for) and its store row, committed
so that a kill at any instant leaves the old run or the new one, never a mix.

Everything is checked before grading starts (`check_outputs`). After grading, every file is written under a
partial name beside its destination, then the store row is written (one transaction: the commit point), then
the files are renamed into place. A kill before the commit leaves partial files of a dead process, which the
next eval in that folder deletes; a kill after it leaves them too, but the store holds their run, so the next
eval finishes the renames (`settle`)."""

from __future__ import annotations

import datetime as dt
import json
import os
from pathlib import Path

from codelutra_data.benchmarks import interop, store
from codelutra_data.errors import UserError
from codelutra_data.files import partial_name, partial_of, remove, stale_partials, writable_folder
from codelutra_data.records import Task

RESULTS, PER_TASK = "results.json", "per_task.jsonl"


def check_outputs(store_path: str, out: str | None, predictions: str | None, tasks: list[Task]) -> None:
    """Refuse, before any work, outputs that could not be written after it."""
    store.check_store(store_path)
    if out and Path(out).is_file():
        raise UserError(f"--out {out} is a file; name a folder for results.json and per_task.jsonl")
    writable_folder(out or Path(store_path).parent / "runs", "--out" if out else "the results folder")
    if predictions:
        interop.check_predictions_path(predictions, tasks)


def _when(results: dict) -> dt.datetime:
    return dt.datetime.fromisoformat(results["date"]).replace(tzinfo=None)


def settle(folder: Path, store_path: str, only: str | None = None) -> None:
    """Finish or undo the commit of a killed eval in `folder`: roll forward when the store holds its run.
    `only`: touch only the partials of this file name (a predictions file in a folder of the user's)."""
    for path in stale_partials(folder):
        name, pid = partial_of(path)
        if only is not None:
            if name == only:
                remove(path)
            continue
        if name != RESULTS:
            if name == PER_TASK and (folder / f".{RESULTS}.partial-{pid}").exists():
                continue  # settled with its results.json below
            remove(path)
            continue
        mate = folder / f".{PER_TASK}.partial-{pid}"
        try:
            results = json.loads(path.read_text(encoding="utf-8"))
            done = store.recorded(store_path, results["config_hash"], _when(results))
            predictions = results["config"].get("write_predictions")
        except (OSError, ValueError, KeyError, TypeError, UserError):
            done, predictions = False, None
        exported = Path(predictions).with_name(f".{Path(predictions).name}.partial-{pid}") if predictions else None
        if done:
            for partial, final in ((mate, folder / PER_TASK), (exported, Path(predictions or ".")),
                                   (path, folder / RESULTS)):
                if partial is not None and partial.exists():
                    os.replace(partial, final)
        else:
            for partial in (mate, exported, path):
                if partial is not None:
                    remove(partial)


def commit(store_path: str, out_dir: Path, results: dict, per_task: list[dict], rows: list[dict],
           predictions: tuple[str, str] | None = None, wait_s: float = store.LOCK_WAIT_S) -> None:
    """Write the run: partial files, the store row, then the files into place. `predictions` is (path, text)."""
    created = not out_dir.exists()
    out_dir.mkdir(parents=True, exist_ok=True)
    settle(out_dir, store_path)
    staged: list[tuple[Path, Path]] = []
    try:
        for final, text in ((out_dir / PER_TASK, "".join(json.dumps(r) + "\n" for r in per_task)),
                            *(((Path(predictions[0]), predictions[1]),) if predictions else ()),
                            (out_dir / RESULTS, json.dumps(results, indent=1, default=str))):
            final.parent.mkdir(parents=True, exist_ok=True)
            if final.parent.resolve() != out_dir.resolve():
                settle(final.parent, store_path, only=final.name)
            tmp = partial_name(final)
            with open(tmp, "w", encoding="utf-8") as fh:
                fh.write(text)
                fh.flush()
                os.fsync(fh.fileno())
            staged.append((tmp, final))
        store.write_rows(store_path, rows, wait_s=wait_s)
    except BaseException:
        for tmp, _ in staged:
            tmp.unlink(missing_ok=True)
        if created and not any(out_dir.iterdir()):
            out_dir.rmdir()
        raise
    for tmp, final in staged:  # results.json last: it names the run the folder holds
        os.replace(tmp, final)
