"""The CodeLutra loop on Spider, with the paper's ablations, reproducible by one command.

    python -m codelutra_data.benchmarks.experiments.refine_spider --scale gpu --out experiments/refine-gpu
    python -m codelutra_data.benchmarks.experiments.refine_spider --scale cpu --out experiments/refine-cpu
    python -m codelutra_data.benchmarks.experiments.refine_spider ... --limit 60 --iterations 2   # any scale

1. `refine` on the bundled Spider dev set: the base model, then iterations of build (train split, the current
   model) -> train (codelutra) -> greedy eval on validation and test, best kept by validation.
2. Ablations at iteration 1, trained from the base model on the SAME samples (iteration 1's release): `dpo`
   only, `sft` only, and an SFT-on-gold control (the gold query of every task of that release as the only
   answer), each graded like the loop's models.
3. The GRPO arm: `refine --method grpo` at the same scale (the same train tasks, a group of as many completions
   per task as the builds sample, the builds' answer length, the same iterations and evaluations), each iteration
   one pass over those tasks unless `--grpo-steps` fixes a smaller budget.
A table of validation and test execution accuracy with 95% intervals, and where the time went, is printed and
written to `<out>/experiment.json` and `<out>/experiment.md`. Rerunning resumes (the loop with `--resume`,
finished models and evaluations are reused).

Scales: `gpu` is the hand run's (all train tasks, 8 samples, 3 iterations, full fine-tuning, full
validation and test); `cpu` is stated and reduced so it finishes in under two hours on 2 cores (the first
80 train tasks, 8 samples, 2 iterations, the first 100 tasks of validation and of test: greedy SQL on this
CPU costs about 2 s a task, so each model's evaluation is about 7 minutes).
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

SCALES = {
    "gpu": {"limit": 0, "samples": 8, "iterations": 3, "eval_limit": 0},
    "cpu": {"limit": 80, "samples": 8, "iterations": 2, "eval_limit": 100},
}


def _evaluate(model: str, out: Path, label: str, eval_limit: int, store: str | None, engine: dict) -> dict:
    from codelutra_data.benchmarks.runner import EvalConfig
    from codelutra_data.trainers.refine import run_stage

    scores = {}
    for split in ("validation", "test"):
        done = out / "evals" / f"{label}-{split}" / "results.json"
        if done.is_file():
            results = json.loads(done.read_text())
        else:
            options = dict(suite="spider-dev", split=split, model=model, limit=eval_limit, out=str(done.parent), **engine)
            if store:
                options["store"] = store
            results = run_stage("eval", EvalConfig(**options))
            results["timing"] = json.loads(done.read_text())["timing"]
        headline = results["metrics"][results["headline"]]
        scores[split] = {"value": headline["value"], "ci95": headline["ci95"], "tasks": results["suite"]["tasks"],
                         "seconds": results["timing"]["total_s"]}
    return scores


def _gold_pairs(release: Path, target: Path) -> Path:
    """The release's tasks with their gold query as the chosen answer (SFT reads only the chosen side)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from codelutra_data.builders.tasks import load_tasks

    if target.is_file():
        return target
    ids = {r for f in (release / "samples").glob("*.parquet")
           for r in pq.read_table(f, columns=["task_id"]).column("task_id").to_pylist()}
    rows = []
    for task in load_tasks("spider-dev", "train"):
        if task.task_id in ids:
            answer = [{"role": "assistant", "content": f"```sql\n{task.reference}\n```"}]
            rows.append({"prompt": task.prompt, "chosen": answer, "rejected": answer, "task_id": task.task_id,
                         "source": task.source, "domain": task.domain, "split": task.split, "chosen_origin": "reference"})
    target.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist(rows), target)
    return target


def _train(method: str, data: str, out_dir: Path, train_options: dict) -> dict:
    import shutil

    from codelutra_data.trainers.config import TrainConfig
    from codelutra_data.trainers.refine import run_stage

    if (out_dir / "train_report.json").is_file():
        return json.loads((out_dir / "train_report.json").read_text())["report"]
    for stale in out_dir.parent.glob(f".{out_dir.name}.partial-*"):
        shutil.rmtree(stale, ignore_errors=True)
    return run_stage("train", TrainConfig(method=method, data=data, out=str(out_dir), **train_options))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", choices=sorted(SCALES), default="cpu")
    parser.add_argument("--out", required=True)
    parser.add_argument("--limit", type=int, help="train tasks sampled per iteration (0 = all)")
    parser.add_argument("--samples", type=int)
    parser.add_argument("--iterations", type=int)
    parser.add_argument("--eval-limit", type=int, help="first N tasks of validation and of test (0 = all)")
    parser.add_argument("--backend", help="generation backend for builds and evals [auto]")
    parser.add_argument("--store", help="results store [results/results.duckdb]")
    parser.add_argument("--executor", choices=("local", "ray"), help="where builds and evals run [local]")
    parser.add_argument("--ray-address", help="with --executor ray: auto or HOST:PORT [a Ray instance per stage]")
    parser.add_argument("--replicas", type=int, help="with --executor ray: model replicas [1]")
    parser.add_argument("--lora", action="store_true")
    parser.add_argument("--arms", default="loop,ablations,grpo",
                        help="which to run, comma-separated: loop (CodeLutra), ablations (needs loop), grpo "
                             "[loop,ablations,grpo]")
    parser.add_argument("--no-ablations", action="store_true", help="the same as leaving ablations out of --arms")
    parser.add_argument("--grpo-steps", type=int, help="GRPO steps per iteration [one pass over the train tasks]")
    args = parser.parse_args()
    arms = {a.strip() for a in args.arms.split(",") if a.strip()}
    unknown = sorted(arms - {"loop", "ablations", "grpo"})
    if unknown or not arms:
        parser.error(f"--arms takes loop, ablations and grpo (got {args.arms!r})")
    if args.no_ablations:
        arms.discard("ablations")
    if "ablations" in arms and "loop" not in arms:
        parser.error("the ablations train on the loop's iteration 1 release: add loop to --arms")
    if args.grpo_steps is not None and args.grpo_steps < 1:
        parser.error("--grpo-steps must be at least 1")
    scale = dict(SCALES[args.scale])
    for key in ("limit", "samples", "iterations", "eval_limit"):
        if getattr(args, key) is not None:
            scale[key] = getattr(args, key)
    out = Path(args.out)
    from codelutra_data.trainers.refine import RefineConfig, run_refine

    engine = {k: getattr(args, k) for k in ("backend", "executor", "ray_address", "replicas") if getattr(args, k)}
    build = {"limit": scale["limit"], "samples": scale["samples"]}
    train = {"lora": True} if args.lora else {}
    started = time.monotonic()
    rows, state, grpo_state = [], None, None
    if "loop" in arms:
        cfg = RefineConfig(tasks="spider-dev", iterations=scale["iterations"], patience=scale["iterations"],
                           out=str(out / "loop"), name="spider-refine", eval_limit=scale["eval_limit"],
                           store=args.store, resume=(out / "loop" / "refine.json").exists(), build=build, train=train,
                           **engine)
        state = run_refine(cfg, log=lambda m: print(m, flush=True)).state
        for it in state["iterations"]:
            rows.append({"model": "base" if it["iteration"] == 0 else f"codelutra iteration {it['iteration']}",
                         "pairs": it.get("pairs"), "sampling_pass_rate": it.get("sampling_pass_rate"), **it["eval"],
                         "seconds": sum(it["stages_s"].values())})
    if "ablations" in arms and len(state["iterations"]) > 1:
        release = Path(state["iterations"][1]["release"])
        train_options = {**train, **({"merge": True} if args.lora else {})}
        for label, method, data in (("dpo only", "dpo", str(release)), ("sft only", "sft", str(release)),
                                    ("sft on gold", "sft", str(_gold_pairs(release, out / "data" / "gold.parquet")))):
            t0 = time.monotonic()
            model_dir = out / "models" / label.replace(" ", "-")
            report = _train(method, data, model_dir, train_options)
            scores = _evaluate(str(model_dir), out, label.replace(" ", "-"), scale["eval_limit"], args.store, engine)
            rows.append({"model": f"{label} (iteration 1's data)", "pairs": report.get("pairs_used"), **scores,
                         "seconds": round(time.monotonic() - t0, 1)})
    if "grpo" in arms:
        grpo_train = {**train, "max_completion_length": 128}  # the builds' answer length for SQL
        if args.grpo_steps:
            grpo_train["max_steps"] = args.grpo_steps
        cfg = RefineConfig(tasks="spider-dev", method="grpo", iterations=scale["iterations"],
                           patience=scale["iterations"], out=str(out / "grpo-loop"), name="spider-grpo",
                           eval_limit=scale["eval_limit"], store=args.store,
                           resume=(out / "grpo-loop" / "refine.json").exists(), build=build, train=grpo_train,
                           **engine)
        grpo_state = run_refine(cfg, log=lambda m: print(m, flush=True)).state
        for it in grpo_state["iterations"]:
            if it["iteration"] == 0 and "loop" in arms:
                continue  # the same base model, graded the same way: one row
            rows.append({"model": "base" if it["iteration"] == 0 else f"grpo iteration {it['iteration']}",
                         "pairs": None, "sampling_pass_rate": it.get("sampling_pass_rate"), **it["eval"],
                         "steps": (it.get("train") or {}).get("steps"), "seconds": sum(it["stages_s"].values())})
    summary = {"scale": {"name": args.scale, **scale, "lora": args.lora, "cpu": os.cpu_count(),
                         "grpo_steps": args.grpo_steps or "one pass"}, "arms": sorted(arms), "rows": rows,
               "best": state and state["best"], "stopped": state and state["stopped"],
               "grpo_best": grpo_state and grpo_state["best"], "grpo_stopped": grpo_state and grpo_state["stopped"],
               "total_s": round(time.monotonic() - started, 1)}
    (out / "experiment.json").write_text(json.dumps(summary, indent=1))
    lines = [f"Scale: {args.scale} ({scale}), LoRA {args.lora}.", "",
             "| model | pairs | sampling pass | validation EX | test EX | seconds |", "|---|---|---|---|---|---|"]
    for r in rows:
        cell = {s: f"{100 * r[s]['value']:.1f}% [{100 * r[s]['ci95'][0]:.1f}, {100 * r[s]['ci95'][1]:.1f}]"
                for s in ("validation", "test")}
        passed = r.get("sampling_pass_rate")
        lines.append(f"| {r['model']} | {r['pairs'] if r['pairs'] is not None else ''} | "
                     f"{'' if passed is None else f'{100 * passed:.1f}%'} | {cell['validation']} | "
                     f"{cell['test']} | {r['seconds']:.0f} |")
    (out / "experiment.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
