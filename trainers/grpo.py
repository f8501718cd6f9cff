"""GRPO: online RL on a task source's train split with TRL's GRPOTrainer, rewarded by running each completion in our
sandboxes (`trainers/rewards.py`). The prompts are the build's own: the task's chat messages with the assistant turn
opened on a code fence (the prefill every build uses), rendered by the tokenizer's chat template as text, so the
model continues inside the fence and the reward extracts the program as builds do."""

from __future__ import annotations

from codelutra_data.trainers.config import TrainConfig
from codelutra_data.trainers.data import Selection
from codelutra_data.trainers.preference import training_arguments

NEEDS = ()
LOGGED = ("reward", "reward_std", "kl", "completions/mean_length", "frac_reward_zero_std", "entropy", "loss",
          "pass_rate", "sandbox_failures")


def describe(cfg: TrainConfig) -> str:
    reward = ("1 when every test passes, else 0" if cfg.reward == "pass" else "the share of tests passed")
    fmt = f"; an answer with no code earns -{cfg.format_weight:g}" if cfg.format_weight else ""
    return (f"GRPO ({cfg.loss_type} loss aggregation, KL coefficient {cfg.kl_coef:g}) over groups of "
            f"{cfg.num_generations} completions per prompt at temperature {cfg.temperature:g}; reward: {reward}, "
            f"from running the program in the sandbox{fmt}; a sandbox failure gives no reward (None)")


def prompt_rows(tasks, tokenizer) -> list[dict]:
    """One row per task: the build's prompt rendered as text, opened on the code fence, and the task's id."""
    from codelutra_data.builders.sampling import prompt_for

    return [{"prompt": tokenizer.apply_chat_template(prompt_for(t), tokenize=False, continue_final_message=True),
             "task_id": t.task_id} for t in tasks]


def select(rows: list[dict], tokenizer, cfg: TrainConfig) -> Selection:
    return Selection(rows, len(rows))  # --limit was applied to the tasks, before their references were checked


def trainer(cfg: TrainConfig, model, tokenizer, rows: list[dict], output_dir: str, reward, peft_config=None):
    import datasets
    from trl import GRPOConfig, GRPOTrainer

    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    arguments = training_arguments(cfg, output_dir)
    arguments.pop("max_length", None)  # GRPO bounds completions (max_completion_length), not pairs
    # --batch-size counts prompts; each brings its group of completions
    arguments["per_device_train_batch_size"] = cfg.batch_size * cfg.num_generations
    args = GRPOConfig(**arguments, num_generations=cfg.num_generations, max_completion_length=cfg.max_completion_length,
                      temperature=cfg.temperature, beta=cfg.kl_coef, loss_type=cfg.loss_type, use_vllm=cfg.use_vllm,
                      vllm_mode="colocate", log_completions=False)
    return GRPOTrainer(model=model, reward_funcs=[reward], args=args, train_dataset=datasets.Dataset.from_list(rows),
                       processing_class=tokenizer, peft_config=peft_config)


def step_log(log_history: list[dict]) -> list[dict]:
    """Per-step numbers for the report and card: mean reward, its spread within groups, pass rate, KL, length."""
    out = []
    for entry in log_history:
        if "reward" not in entry:
            continue
        out.append({"step": int(entry.get("step", 0)),
                    **{k: round(float(entry[k]), 6) for k in LOGGED if k in entry and entry[k] is not None}})
    return out
