"""Seconds per optimizer step: focal (span-masked rejected side) vs TRL's plain sigmoid DPO, side by side.

    python -m codelutra_data.benchmarks.speed.trainer_step [--model smollm2-135m] [--steps 5] [--rounds 2]
        [--batch-size 2] [--max-length 384] [--data releases/NAME/VERSION]

Both runs see the same pairs in the same order (same seed), start from the same weights, use the same
TRL trainer, loss and optimizer; the only difference is our collator, which turns error spans into a
token mask per batch. Runs alternate (plain, focal, plain, focal, ...) so that drift of the machine hits both.
The first step of each run is left out (allocation warm-up). Without --data, pairs are made from the bundled
MBPP reference solutions and a single-operator mutation of each, with LCS error spans.
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import sys
import tempfile
import time

from codelutra_data.benchmarks.speed.python_sandbox import mutations
from codelutra_data.builders.spans import error_spans
from codelutra_data.builders.tasks import load_tasks


def bundled_pairs(n: int) -> list[dict]:
    rows = []
    for task in load_tasks("mbpp", "train"):
        fixed = task.reference.strip()
        for bad in mutations(fixed, limit=1):
            chosen, rejected = f"```python\n{fixed}\n```", f"```python\n{bad}\n```"
            rows.append({"pair_id": task.task_id, "prompt": task.prompt,
                         "chosen": [{"role": "assistant", "content": chosen}],
                         "rejected": [{"role": "assistant", "content": rejected}],
                         "rejected_error_spans": error_spans(rejected, chosen)})
        if len(rows) >= n:
            break
    return rows


def seconds_per_step(method: str, rows: list[dict], args) -> list[float]:
    from transformers import TrainerCallback

    from codelutra_data.models.spec import resolve
    from codelutra_data.trainers.config import TrainConfig
    from codelutra_data.trainers.train import load_model, method_module

    class Clock(TrainerCallback):
        def __init__(self):
            self.times, self.t0 = [], 0.0

        def on_step_begin(self, *a, **k):
            self.t0 = time.perf_counter()

        def on_step_end(self, *a, **k):
            self.times.append(time.perf_counter() - self.t0)

    ref = resolve(args.model)
    model, tokenizer = load_model(ref.path)
    ref_model = load_model(ref.path)[0]
    with tempfile.TemporaryDirectory() as tmp:
        cfg = TrainConfig(method=method, data="-", out=tmp, max_steps=args.steps, batch_size=args.batch_size,
                          max_length=args.max_length, focal_alpha=0.0, logging_steps=10**6, warmup_ratio=0.0)
        rows = method_module("focal").select(rows, tokenizer, cfg).rows  # the same pairs for both methods
        trainer = method_module(method).trainer(cfg, model, tokenizer, rows, tmp, ref_model=ref_model)
        clock = Clock()
        trainer.add_callback(clock)
        with contextlib.redirect_stdout(sys.stderr):
            trainer.train()
    return clock.times[1:]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=2, help="alternating (plain, focal) rounds")
    parser.add_argument("--batch-size", type=int, default=2)
    parser.add_argument("--max-length", type=int, default=384)
    parser.add_argument("--data", help="a release with rejected_error_spans (default: MBPP mutations)")
    args = parser.parse_args()

    import os

    os.environ.setdefault("TQDM_DISABLE", "1")
    if args.data:
        from codelutra_data.trainers.data import load_pairs

        rows = [r for r in load_pairs(args.data)[0] if r.get("rejected_error_spans")]
    else:
        rows = bundled_pairs(args.steps * args.batch_size)
    times: dict[str, list[float]] = {"dpo": [], "focal": []}
    for _ in range(args.rounds):
        for method in ("dpo", "focal"):
            times[method] += seconds_per_step(method, rows, args)
    plain, focal = statistics.median(times["dpo"]), statistics.median(times["focal"])
    print(f"pairs: {len(rows)}, batch {args.batch_size}, max length {args.max_length}, model {args.model}, "
          f"{len(times['dpo'])} timed steps each (first step of every run left out)")
    print(f"TRL sigmoid DPO:            {plain:.3f} s/step (median)")
    print(f"focal (span-masked DPO):    {focal:.3f} s/step (median)")
    print(f"ratio focal / plain: {focal / plain:.3f} (target <= 1.1)")


if __name__ == "__main__":
    main()
