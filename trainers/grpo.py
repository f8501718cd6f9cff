"""GRPO: online RL on a task source's train split with TRL's GRPOTrainer, rewarded by running each completion in our
sandboxes (`trainers/rewards.py`). The prompts are the build's own: the task's chat messages with the assistant turn
opened on a code fence (the prefill every build uses), rendered by the tokenizer's chat template as text, so the
model continues inside the fence and the reward extracts the program as builds do."""

from __future__ import annotations

import os

from codelutra_data.errors import UserError
from codelutra_data.trainers.config import TrainConfig
from codelutra_data.trainers.data import Selection
from codelutra_data.trainers.preference import training_arguments

NEEDS = ()
LOGGED = ("reward", "reward_std", "kl", "completions/mean_length", "frac_reward_zero_std", "entropy", "loss",
          "pass_rate", "sandbox_failures", "turns", "first_pass_rate")


def describe(cfg: TrainConfig) -> str:
    reward = ("1 when every test passes, else 0" if cfg.reward == "pass" else "the share of tests passed")
    fmt = f"; an answer with no code earns -{cfg.format_weight:g}" if cfg.format_weight else ""
    turns = (f"; up to {cfg.turns} attempts per completion: after a failed one the sandbox's feedback comes back as "
             f"the next user turn and the model revises, the final attempt is rewarded and only the model's own tokens "
             f"are trained on" if cfg.turns > 1 else "")
    passes, micro = passes_per_step(cfg)
    return (f"GRPO ({cfg.loss_type} loss aggregation, KL coefficient {cfg.kl_coef:g}) over groups of "
            f"{cfg.num_generations} completions per prompt at temperature {cfg.temperature:g}, {cfg.batch_size} "
            f"prompt(s) per step trained on in {passes} pass(es) of {micro} completions; reward: {reward}, "
            f"from running the program in the sandbox{fmt}; a sandbox failure gives no reward (None){turns}")


def prompt_rows(tasks, tokenizer) -> list[dict]:
    """One row per task: the build's prompt rendered as text, opened on the code fence, and the task's id."""
    from codelutra_data.builders.sampling import prompt_for

    return [{"prompt": tokenizer.apply_chat_template(prompt_for(t), tokenize=False, continue_final_message=True),
             "task_id": t.task_id} for t in tasks]


def select(rows: list[dict], tokenizer, cfg: TrainConfig) -> Selection:
    """Every task's prompt (--limit was applied to the tasks, before their references were checked); with --turns,
    a rollout knows its task by the prompt alone, so a second task with the same prompt is dropped and counted."""
    if cfg.turns == 1:
        return Selection(rows, len(rows))
    kept, seen = [], set()
    for row in rows:
        if row["prompt"] not in seen:
            seen.add(row["prompt"])
            kept.append(row)
    selection = Selection(kept, len(rows))
    if len(rows) > len(kept):
        selection.dropped["duplicate_prompt"] = len(rows) - len(kept)
    return selection


def passes_per_step(cfg: TrainConfig) -> tuple[int, int]:
    """(passes, completions per pass): a step's batch_size x num_generations completions split into equal passes of
    at most micro_batch_size (the largest divisor that fits)."""
    total = cfg.batch_size * cfg.num_generations
    micro = max(d for d in range(1, min(total, cfg.micro_batch_size) + 1) if total % d == 0)
    return total // micro, micro


FEEDBACK_TOKENS = 600  # a feedback turn's tokens at most (its text is bounded: builders/feedback.py MESSAGE_LIMIT)
# Bytes per token and layer per unit of hidden size that a training pass keeps for the backward pass (the bundled
# model measured about 1.5 GB per completion of 1.2k tokens on a CPU); the completion's logits come on top.
ACTIVATION_BYTES = 64


def memory_needed(cfg: TrainConfig, model, longest_prompt: int) -> tuple[int, int, int]:
    """(bytes to generate a step's completions at once, bytes of one training pass, tokens per completion at most):
    the KV cache and last logits of every sequence for generation; activations and completion logits for a pass."""
    from codelutra_data.models.memory import bytes_per_sequence

    c = model.config
    c = getattr(c, "text_config", None) or c
    width = next(model.parameters()).element_size()
    tokens = longest_prompt + cfg.turns * cfg.max_completion_length + (cfg.turns - 1) * FEEDBACK_TOKENS
    generation = cfg.batch_size * cfg.num_generations * bytes_per_sequence(c, tokens, width)
    completion = tokens - longest_prompt
    one_pass = passes_per_step(cfg)[1] * (tokens * c.hidden_size * c.num_hidden_layers * ACTIVATION_BYTES
                                          + 3 * completion * c.vocab_size * 4)
    return generation, one_pass, tokens


def check_memory(cfg: TrainConfig, model, tokenizer, rows: list[dict]) -> None:
    """Refuse, in one line, a step that cannot fit: a huge --batch-size x --num-generations (all generated at once)
    or --micro-batch-size (one pass) must not take the machine down."""
    import torch

    from codelutra_data.models.memory import free_memory

    longest = max(len(tokenizer(text=row["prompt"])["input_ids"]) for row in rows)
    generation, one_pass, tokens = memory_needed(cfg, model, longest)
    free, where = free_memory(torch.cuda.is_available())
    if free is None:
        return
    gib = 2 ** 30
    if not cfg.use_vllm and generation > 0.8 * free:  # vLLM bounds its own memory (gpu_memory_utilization)
        raise UserError(f"--batch-size {cfg.batch_size} x --num-generations {cfg.num_generations} completions of up to "
                        f"{tokens} tokens, generated at once, need about {generation / gib:.1f} GiB; "
                        f"{free / gib:.1f} GiB is {where}: lower them")
    if one_pass > 0.8 * free:
        raise UserError(f"a training pass of {passes_per_step(cfg)[1]} completions of up to {tokens} tokens needs about "
                        f"{one_pass / gib:.1f} GiB; {free / gib:.1f} GiB is {where}: lower --micro-batch-size")


def trainer(cfg: TrainConfig, model, tokenizer, rows: list[dict], output_dir: str, reward, peft_config=None):
    import datasets
    from trl import GRPOConfig, GRPOTrainer

    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    check_memory(cfg, model, tokenizer, rows)
    arguments = training_arguments(cfg, output_dir)
    arguments.pop("max_length", None)  # GRPO bounds completions (max_completion_length), not pairs
    # --batch-size counts prompts; each brings its group of completions, all generated at once and trained on in
    # passes of at most --micro-batch-size completions whose gradients add up to the step's one update
    passes, micro = passes_per_step(cfg)
    arguments["per_device_train_batch_size"] = micro
    arguments["gradient_accumulation_steps"] = cfg.gradient_accumulation_steps * passes
    args = GRPOConfig(**arguments, steps_per_generation=passes, num_generations=cfg.num_generations,
                      max_completion_length=cfg.max_completion_length,
                      temperature=cfg.temperature, beta=cfg.kl_coef, loss_type=cfg.loss_type, use_vllm=cfg.use_vllm,
                      vllm_mode="colocate", log_completions=False)
    rollout = None
    if cfg.turns > 1:
        from codelutra_data.trainers.rollout import DebugRollout

        os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")  # the README names the experimental interfaces used
        rollout = DebugRollout(reward, tokenizer, cfg.turns, {row["prompt"]: row["task_id"] for row in rows})
    return GRPOTrainer(model=model, reward_funcs=[reward], args=args, train_dataset=datasets.Dataset.from_list(rows),
                       processing_class=tokenizer, peft_config=peft_config, rollout_func=rollout)


def step_log(log_history: list[dict]) -> list[dict]:
    """Per-step numbers for the report and card: mean reward, its spread within groups, pass rate, KL, length."""
    out = []
    for entry in log_history:
        if "reward" not in entry:
            continue
        out.append({"step": int(entry.get("step", 0)),
                    **{k: round(float(entry[k]), 6) for k in LOGGED if k in entry and entry[k] is not None}})
    return out
