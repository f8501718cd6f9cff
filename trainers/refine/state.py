"""`<out>/refine.json`: the loop's configuration and every finished stage, replaced atomically after each stage,
so a killed loop resumes at the stage it was in."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

from codelutra_data.errors import UserError
from codelutra_data.files import atomic_write
from codelutra_data.trainers.refine.config import RefineConfig

STATE = "refine.json"


class State:
    def __init__(self, out: Path, cfg: RefineConfig):
        self.path = out / STATE
        if self.path.exists():
            if not cfg.resume:
                raise UserError(f"{out} already holds a refine run: add --resume to continue it, or choose another --out")
            self.data = json.loads(self.path.read_text(encoding="utf-8"))
            now = json.loads(json.dumps(cfg.determining()))
            if self.data["config"] != now:
                before = self.data["config"]
                diff = sorted(k for k in set(before) | set(now) if before.get(k) != now.get(k))
                raise UserError(f"--resume with a different configuration ({', '.join(diff)} changed): "
                                f"use the options of the run in {out}, or another --out")
        elif cfg.resume:
            raise UserError(f"nothing to resume in {out}: no {STATE}")
        else:
            out.mkdir(parents=True, exist_ok=True)
            self.data = {"config": cfg.determining(), "iterations": [], "best": None, "stopped": None,
                         "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")}
            self.save()

    def iteration(self, t: int) -> dict:
        while len(self.data["iterations"]) <= t:
            self.data["iterations"].append({"iteration": len(self.data["iterations"]), "stages_s": {}})
        return self.data["iterations"][t]

    def save(self) -> None:
        atomic_write(self.path, json.dumps(self.data, indent=1, default=str))
