"""What a build holds in memory at two sizes, with generation made free: is it flat in the number of samples?

    python -m codelutra_data.benchmarks.speed.build_memory                      # 32 and 128 samples per task
    python -m codelutra_data.benchmarks.speed.build_memory --samples 16,64 --limit 200
    python -m codelutra_data.benchmarks.speed.build_memory --mode trajectories --samples 4,16   # trajectories per task

Each size is a whole pairs build (every Spider train task, `--samples` answers each) in a fresh process, sampled
from a loopback OpenAI-compatible server that answers at once (`loopback_server.py`: the reference for half the
answers, so there are pairs), executed in the real SQLite sandbox, and written as a release. Printed per size:
samples, seconds, samples/s and the process's peak resident memory; then the memory each extra sample cost
between the two sizes, which is what a million-sample build would add. `--mode trajectories` builds debug
trajectories instead (`--samples` trajectories per task, at most 5 revisions): the server answers the reference
for even-numbered completions and a syntax error for the others, so trajectories take one or more rounds.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def one_build(limit: int, samples: int, folder: str, mode: str = "pairs") -> dict:
    """Run here (in the child): one build, then this process's peak memory."""
    from codelutra_data.benchmarks.speed.loopback_server import loopback_server
    from codelutra_data.builders.build import run_build
    from codelutra_data.builders.build_config import BuildConfig
    from codelutra_data.builders.tasks import load_tasks

    tasks = load_tasks("spider-dev", "train", limit or None)
    with loopback_server({t.prompt[-1]["content"]: t.reference for t in tasks}) as url:
        t0 = time.monotonic()
        per_task = {"samples": samples} if mode == "pairs" else {
            "mode": mode, "trajectories_per_task": samples, "tokenizer": "smollm2-135m"}
        result = run_build(BuildConfig(tasks="spider-dev", split="train", limit=limit, **per_task, backend="openai",
                                       base_url=url, model="served-model", name="memory", version="0.1.0",
                                       runs_dir=f"{folder}/runs", releases_dir=f"{folder}/releases"))
        seconds = time.monotonic() - t0
    return {"samples": result.stats["samples"], "trajectories": result.stats.get("trajectories"), "seconds": seconds,
            "peak_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", default="32,128", help="two (or more) samples-per-task sizes")
    parser.add_argument("--limit", type=int, default=0, help="Spider train tasks (0 = all)")
    parser.add_argument("--mode", choices=("pairs", "trajectories"), default="pairs")
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(one_build(args.limit, int(args.child[0]), args.child[1], args.mode)))
        return
    runs = []
    for samples in (int(x) for x in args.samples.split(",")):
        with tempfile.TemporaryDirectory() as tmp:
            out = subprocess.run([sys.executable, "-m", "codelutra_data.benchmarks.speed.build_memory", "--limit",
                                  str(args.limit), "--mode", args.mode, "--child", str(samples), tmp], capture_output=True, text=True,
                                 check=True, cwd=Path(tmp))
        run = json.loads(out.stdout.strip().splitlines()[-1])
        runs.append(run)
        made = f", {run['trajectories']} trajectories" if run["trajectories"] is not None else ""
        print(f"  {samples} {'samples' if args.mode == 'pairs' else 'trajectories'} per task: {run['samples']} samples"
              f"{made} in {run['seconds']:.0f} s "
              f"({run['samples'] / run['seconds']:.0f}/s), peak {run['peak_bytes'] / 2**30:.2f} GiB", flush=True)
    (small, large) = runs[0], runs[-1]
    per_sample = (large["peak_bytes"] - small["peak_bytes"]) / max(1, large["samples"] - small["samples"])
    print(f"each extra sample: {per_sample:.0f} bytes of peak memory; a million samples would add "
          f"{per_sample * 1e6 / 2**30:.2f} GiB")


if __name__ == "__main__":
    main()
