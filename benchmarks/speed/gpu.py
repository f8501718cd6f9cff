"""What a GPU does with our builds: vllm against transformers on the build's prompts at several batch sizes, then
one refine iteration's wall time by stage, in one run.

    python -m codelutra_data.benchmarks.speed.gpu --out gpu-speed
    python -m codelutra_data.benchmarks.speed.gpu --out gpu-speed --batch-sizes 256,1024,4096 --rounds 3
    python -m codelutra_data.benchmarks.speed.gpu --out gpu-speed --skip-refine          # tokens/s only
    python -m codelutra_data.benchmarks.speed.gpu --out gpu-speed --limit 100 --eval-limit 100

1. Tokens/s: Spider chat prompts (the train split, as `build` renders them), `--samples` per prompt, 128 new
   tokens at most, T=0.8, top_p 0.95: the build's shape. Each batch size is the sequences of one call (what
   `--batch-size` sets; the prompts per call are that over `--samples`). vllm (bfloat16, half the GPU's memory
   so transformers fits beside it) and transformers (bfloat16 on the GPU) take turns in every round, each
   (round, size) on prompts of its own, so vllm's prefix cache never serves one call from another. Printed:
   tokens/s and the ratio to transformers at the same size. Output tokens are counted with the model's tokenizer.
2. One refine iteration (`refine --iterations 1` on Spider dev with the bundled defaults: `--batch-size auto`,
   `--overlap auto`, the training settings picked for the device): the base model's evaluation, then iteration
   1's build (generation, execution, and the time they overlapped), training and evaluation, each timed.
   `--limit` train tasks (0: all 524) and `--eval-limit` validation and test tasks (0: all).

Everything printed is also written to `<out>/gpu.json`; rerunning with the same `--out` resumes the refine part.
Without a CUDA GPU it stops at once, in one line: the numbers it prints mean nothing on a CPU
(`benchmarks/speed/generation.py` measures the CPU engines).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
import time
from pathlib import Path

from codelutra_data.benchmarks.speed.generation import measure, report
from codelutra_data.errors import UserError
from codelutra_data.files import atomic_write, writable_folder

SIZES = "64,256,1024,4096"


def parse_sizes(text: str) -> list[int]:
    try:
        sizes = [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        sizes = []
    if not sizes or min(sizes) < 1 or max(sizes) > 65536:
        raise ValueError(f"--batch-sizes takes whole numbers from 1 to 65536, comma-separated (got {text!r})")
    return sizes


def gpu_or_reason() -> str | None:
    """None where a CUDA GPU is usable, otherwise why not, in words."""
    import torch

    if not torch.cuda.is_available():
        return ("gpu.py measures a CUDA GPU and torch sees none here (torch.cuda.is_available() is False); "
                "benchmarks/speed/generation.py measures the CPU engines")
    return None


def tokens_per_second(model: str, sizes: list[int], samples: int, rounds: int, max_new_tokens: int) -> dict:
    from transformers import AutoTokenizer

    from codelutra_data.builders.sampling import prompt_for
    from codelutra_data.builders.tasks import load_tasks
    from codelutra_data.models.base import SamplingParams
    from codelutra_data.models.engine import load_backend
    from codelutra_data.models.spec import resolve

    tasks = load_tasks("spider-dev", "train")
    sampling = SamplingParams(0.8, 0.95, max_new_tokens, stop=("```",))
    tokenizer = AutoTokenizer.from_pretrained(resolve(model).path)
    count = lambda text: len(tokenizer(text, add_special_tokens=False)["input_ids"])  # noqa: E731
    backends = {}
    try:
        if importlib.util.find_spec("vllm") is not None:
            from codelutra_data.models.vllm_backend import VLLMBackend

            backends["vllm"] = VLLMBackend(resolve(model), gpu_memory_utilization=0.5)
        else:
            print("  vllm: not installed here (pip install 'codelutra-data[vllm]'): transformers only", flush=True)
        backends["transformers"] = load_backend("transformers", model, batch_size=max(sizes))
        for backend in backends.values():
            backend.generate([prompt_for(tasks[0])], 1, SamplingParams(0.0, 1.0, 4), 0)  # warm up, not timed
        totals = measure(backends, tasks, sizes, samples, sampling, rounds, count)
        print(f"Spider chat prompts x {samples} samples, {max_new_tokens} new tokens max, T=0.8, {rounds} rounds "
              f"taking turns")
        report(backends, totals, sizes, samples, "transformers")
        return {"versions": {name: b.version for name, b in backends.items()},
                "runs": [{"backend": name, "sequences_per_call": size, "seconds": round(seconds, 3), "tokens": tokens,
                          "tokens_per_s": round(tokens / seconds, 1)}
                         for (name, size), (seconds, tokens) in totals.items()]}
    finally:
        for backend in backends.values():
            getattr(backend, "close", lambda: None)()
        backends.clear()
        import gc

        import torch

        gc.collect()
        torch.cuda.empty_cache()


def stage_rows(state: dict) -> list[dict]:
    """Each iteration's stages with their seconds, and within a build, generation, execution and their overlap."""
    rows = []
    for it in state["iterations"]:
        label = "base model" if it["iteration"] == 0 else f"iteration {it['iteration']}"
        for stage, seconds in it.get("stages_s", {}).items():
            rows.append({"iteration": label, "stage": stage, "seconds": seconds})
            timing = (it.get("build_stats_timing") or {}) if stage == "build" else {}
            for part in ("generation_s", "execution_s", "overlapped_s", "bookkeeping_s"):
                if timing.get(part) is not None:
                    rows.append({"iteration": label, "stage": f"  {part[:-2]}", "seconds": round(timing[part], 1)})
    return rows


def refine_iteration(model: str, out: Path, limit: int, samples: int, eval_limit: int) -> dict:
    from codelutra_data.trainers.refine import RefineConfig, run_refine

    backend = "vllm" if importlib.util.find_spec("vllm") is not None else "transformers"
    cfg = RefineConfig(tasks="spider-dev", model=model, iterations=1, patience=1, out=str(out / "refine"),
                       name="gpu-speed", eval_limit=eval_limit, store=str(out / "results.duckdb"),
                       resume=(out / "refine" / "refine.json").exists(), backend=backend,
                       build={"limit": limit, "samples": samples})
    started = time.monotonic()
    state = run_refine(cfg, log=lambda m: print(m, flush=True)).state
    rows = stage_rows(state)
    print(f"one refine iteration with {backend} ({limit or 'all'} train tasks x {samples} samples, eval on "
          f"{eval_limit or 'all'} tasks of validation and test): {time.monotonic() - started:.0f} s in this run")
    for row in rows:
        print(f"  {row['iteration']:<12} {row['stage']:<16} {row['seconds']:>8.1f} s")
    it = state["iterations"][-1]
    return {"backend": backend, "limit": limit, "samples": samples, "eval_limit": eval_limit, "stages": rows,
            "pairs": it.get("pairs"), "sampling_pass_rate": it.get("sampling_pass_rate"),
            "eval": {split: it.get("eval", {}).get(split, {}).get("value") for split in ("validation", "test")}}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, help="folder for gpu.json and the refine run")
    parser.add_argument("--model", default="smollm2-135m", help="model spec [smollm2-135m, bundled]")
    parser.add_argument("--batch-sizes", default=SIZES, help=f"sequences per call, comma-separated [{SIZES}]")
    parser.add_argument("--samples", type=int, default=8, help="samples per prompt [8, as build]")
    parser.add_argument("--rounds", type=int, default=2, help="measurements per backend and size [2]")
    parser.add_argument("--max-new-tokens", type=int, default=128)
    parser.add_argument("--limit", type=int, default=0, help="refine: first N train tasks [0: all 524]")
    parser.add_argument("--eval-limit", type=int, default=0, help="refine: first N validation and test tasks [0: all]")
    parser.add_argument("--skip-refine", action="store_true", help="tokens/s only")
    args = parser.parse_args(argv)
    try:
        sizes = parse_sizes(args.batch_sizes)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for name in ("samples", "rounds", "max_new_tokens"):
        if getattr(args, name) < 1:
            print(f"error: --{name.replace('_', '-')} must be at least 1", file=sys.stderr)
            return 2
    if args.limit < 0 or args.eval_limit < 0:
        print("error: --limit and --eval-limit must be 0 (all) or more", file=sys.stderr)
        return 2
    reason = gpu_or_reason()
    if reason:
        print(f"error: {reason}", file=sys.stderr)
        return 2
    try:
        out = writable_folder(args.out, "--out")
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    import torch

    result = {"gpu": torch.cuda.get_device_name(0), "model": args.model}
    print(f"{result['gpu']}, model {args.model}", flush=True)
    result["tokens_per_s"] = tokens_per_second(args.model, sizes, args.samples, args.rounds, args.max_new_tokens)
    atomic_write(out / "gpu.json", json.dumps(result, indent=2) + "\n")
    if not args.skip_refine:
        result["refine_iteration"] = refine_iteration(args.model, out, args.limit, args.samples, args.eval_limit)
        atomic_write(out / "gpu.json", json.dumps(result, indent=2) + "\n")
    print(f"written: {out / 'gpu.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
