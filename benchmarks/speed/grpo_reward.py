"""How much of a GRPO step the execution reward takes, measured in one run beside the rest of the step.

    python -m codelutra_data.benchmarks.speed.grpo_reward                       # Spider and MBPP, single turn
    python -m codelutra_data.benchmarks.speed.grpo_reward --turns 3 --steps 3   # the multi-turn rollout
    python -m codelutra_data.benchmarks.speed.grpo_reward --tasks spider-dev --generations 8 --batch-size 4

Each source trains the bundled model with `train --method grpo` (the real trainer, generation, reward and sandbox)
for a few steps; the reward times its own batches (every program of a step runs as one batch through the
executor's pool). Printed per source: seconds per step, the reward's seconds per step and its share of the step,
programs run per second inside the reward, and completions per second through the whole step. The share is the
claim: the reward must stay a small part of a step (generation and the policy update are the rest).
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from codelutra_data.trainers.config import TrainConfig
from codelutra_data.trainers.train import run_train


def measure(source: str, args: argparse.Namespace, tmp: Path) -> dict:
    cfg = TrainConfig(method="grpo", tasks=source, limit=args.limit, max_steps=args.steps,
                      num_generations=args.generations, batch_size=args.batch_size,
                      max_completion_length=args.max_completion_length, turns=args.turns, seed=0,
                      out=str(tmp / source))
    report = run_train(cfg, log=lambda message: None).report
    rewards = report["reward_stats"]
    steps = report["metrics"]["steps"]
    train_s = report["train_seconds"]
    return {"source": source, "steps": steps, "step_s": train_s / steps, "reward_s": rewards["seconds"] / steps,
            "share": rewards["seconds"] / train_s, "programs": rewards["programs_run"],
            "programs_per_s": rewards["programs_run"] / max(rewards["seconds"], 1e-9),
            "completions_per_s": rewards["completions"] / train_s}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", default="spider-dev,mbpp", help="task sources, comma-separated [spider-dev,mbpp]")
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--limit", type=int, default=8, help="train tasks [8]")
    parser.add_argument("--generations", type=int, default=4)
    parser.add_argument("--batch-size", type=int, default=2, help="prompts per step [2]")
    parser.add_argument("--max-completion-length", type=int, default=64)
    parser.add_argument("--turns", type=int, default=1)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        for source in [s.strip() for s in args.tasks.split(",") if s.strip()]:
            r = measure(source, args, Path(folder))
            print(f"{r['source']}: {r['steps']} steps of {args.batch_size} prompts x {args.generations} completions "
                  f"(<= {args.max_completion_length} tokens, {args.turns} turn(s)): {r['step_s']:.1f} s/step, of "
                  f"which the reward {r['reward_s']:.2f} s ({r['programs']} programs, {r['programs_per_s']:.0f}/s); "
                  f"reward share of the step {r['share']:.2%}; {r['completions_per_s']:.2f} completions/s "
                  f"end to end", flush=True)


if __name__ == "__main__":
    main()
