"""Whole builds with execution overlapped with generation and taking turns, side by side in one run.

    python -m codelutra_data.benchmarks.speed.overlap --setting server   # generation elsewhere (a GPU server)
    python -m codelutra_data.benchmarks.speed.overlap --setting cpu      # generation on this machine's cores

`server`: MBPP tasks answered by a loopback OpenAI-compatible server after --delay seconds a request (what a
remote GPU costs), so generation does not use this machine's cores and overlap should win. `cpu`: the bundled
model on ctranslate2 here, generating on the same cores the sandboxes execute on, where `--overlap auto` keeps
them taking turns. Each round builds once with `--overlap on` and once with `--overlap off`, alternating; printed:
seconds per build (reference check and model load excluded), the generation time overlapped, and the ratio.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from codelutra_data.benchmarks.speed.loopback_server import loopback_server
from codelutra_data.builders.build import run_build
from codelutra_data.builders.build_config import BuildConfig
from codelutra_data.builders.tasks import load_tasks

SETTINGS = {
    "server": {"limit": 32, "samples": 8, "batch_size": 32, "max_new_tokens": 128},
    "cpu": {"limit": 8, "samples": 4, "batch_size": 16, "max_new_tokens": 64},
}


def build_seconds(cfg: BuildConfig) -> tuple[float, float]:
    """(seconds of sampling and execution, seconds of generation overlapped) of one build."""
    timing = run_build(cfg).stats["timing"]
    return (timing["total_s"] - timing.get("reference_check_s", 0.0) - timing.get("model_load_s", 0.0),
            timing.get("overlapped_s", 0.0))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--setting", choices=sorted(SETTINGS), default="server")
    parser.add_argument("--delay", type=float, default=1.0, help="server: seconds before each answer")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--workers", type=int, default=2, help="sandbox workers")
    args = parser.parse_args()
    shape = SETTINGS[args.setting]
    tasks = load_tasks("mbpp", "train", shape["limit"])
    answers = {t.prompt[-1]["content"]: t.reference for t in tasks}
    with tempfile.TemporaryDirectory() as tmp, loopback_server(answers, args.delay) as url:
        engine = ({"backend": "openai", "base_url": url, "model": "served-model"} if args.setting == "server"
                  else {"backend": "ctranslate2"})
        totals = {"on": [0.0, 0.0], "off": [0.0, 0.0]}
        for r in range(args.rounds):
            for mode in ("off", "on") if r % 2 == 0 else ("on", "off"):
                cfg = BuildConfig(tasks="mbpp", split="train", seed=r, overlap=mode, workers=args.workers,
                                  name=f"overlap-{mode}-{r}", version="0.1.0", runs_dir=str(Path(tmp) / "runs"),
                                  releases_dir=str(Path(tmp) / "releases"), **shape, **engine)
                seconds, overlapped = build_seconds(cfg)
                totals[mode][0] += seconds
                totals[mode][1] += overlapped
                print(f"  round {r + 1}, overlap {mode}: {seconds:.1f} s ({overlapped:.1f} s overlapped)", flush=True)
        what = (f"server answering after {args.delay:g} s" if args.setting == "server"
                else "ctranslate2 on this machine's cores")
        print(f"{shape['limit']} MBPP tasks x {shape['samples']} samples, chunks of {shape['batch_size']}, {what}, "
              f"{args.workers} sandbox workers, {args.rounds} rounds alternating (started {time.strftime('%H:%M')})")
        off, on = totals["off"][0] / args.rounds, totals["on"][0] / args.rounds
        print(f"  overlap off: {off:.1f} s per build")
        print(f"  overlap on:  {on:.1f} s per build ({totals['on'][1] / args.rounds:.1f} s overlapped): "
              f"x{off / on:.2f} with overlap")


if __name__ == "__main__":
    main()
