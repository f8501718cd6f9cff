"""The program's process: started by the zygote for one job, it holds the program and nothing of its tests (no
test, expected value or verdict ever reaches it), and answers the judge's calls until the judge is done.

It is given the program, the task's setup, the suite's harness name and only the harness arguments the program's
side needs; its output goes to the job's output pipe (counted against the output limit) unless the suite swallows
it; the suite's guard is applied just before the program is loaded."""

from __future__ import annotations

import importlib
import os
import signal

import guards
import limits as process_limits
from peer import Peer


def harness(name: str):
    return importlib.import_module("harnesses." + (name or "module"))


def main(half: dict, channel: int, output: int, workdir: str) -> None:
    """In the forked child of the zygote; never returns."""
    try:
        process_limits.enter_job(output, workdir, keep=(channel,))
        process_limits.apply(half["limits"])
        chosen = harness(half.get("harness"))
        guards.apply_io(half.get("io") or "keep")
    except BaseException:  # noqa: BLE001 - a broken start is no verdict: the judge sees the channel close
        os._exit(70)
    exports: dict = {}

    def load():
        guards.apply_guard(half.get("guard") or "")
        exports.update(chosen.load(half["code"], half.get("setup") or "", half.get("args") or {}))
        return {name: ("callable" if callable(value) else "value") for name, value in exports.items()
                if type(name) is str}

    def get(name):
        if name not in exports:
            raise NameError("name %r is not defined by the program" % name)
        return exports[name]

    signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    try:
        offset = getattr(chosen, "line_offset", lambda args: 0)(half.get("args") or {})
        Peer(channel, {"load": load, "get": get}, offset).serve_forever()
    except BaseException:  # noqa: BLE001
        pass
    os._exit(0)
