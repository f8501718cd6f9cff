"""The multi-turn rollout of `train --method grpo --turns N` (RLEF-style): answer, run, read the feedback, revise.

Every prompt TRL hands over (already repeated once per member of its group) becomes one conversation: the model
answers, the answer runs in the sandbox, and while it fails and turns remain, the `feedback-v1` revision turn that
trajectories use is appended as the next user turn and the model revises. The completion TRL trains on is every
token after the prompt; `env_mask` is 1 on the model's own tokens and 0 on the feedback turns, so only the model's
tokens carry loss. The reward is the final attempt's verdict, handed to the reward function (`final_execution`) so
no program runs twice.

TRL interfaces relied on (experimental in TRL 1.16): `GRPOTrainer(rollout_func=...)`, called with the batch's
prompts and the trainer and returning `prompt_ids`, `completion_ids`, `logprobs` and extra per-sample fields
(`env_mask` is read as the model-token mask, the others are forwarded to reward functions); and the trainer's
private `_generate_single_turn(prompt_ids, None, {}, 1)`, which samples one continuation per prompt with the current
weights on whichever backend the trainer uses (transformers, or colocated vLLM with its weights synced)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Callable, Sequence

from codelutra_data.builders.extract import EXTRACTORS
from codelutra_data.builders.feedback import conversation, feedback_message
from codelutra_data.builders.sampling import PREFILLS
from codelutra_data.errors import UserError
from codelutra_data.records import Execution

Generate = Callable[[list[list[int]]], tuple[list[list[int]], list[list[float]] | None]]


@dataclass
class Conversation:
    """One rollout in progress: the prompt's tokens, everything after them, and what was tried."""

    task_id: str
    prompt_ids: list[int]
    completion_ids: list[int] = field(default_factory=list)
    env_mask: list[int] = field(default_factory=list)
    logprobs: list[float | None] = field(default_factory=list)
    attempts: list[tuple[str, str]] = field(default_factory=list)  # (raw answer, feedback), as trajectories hold them
    executions: list[Execution] = field(default_factory=list)


@dataclass
class RolloutStats:
    """How the conversations went (in train_report.json and the model card)."""

    rollouts: int = 0
    turns: Counter = field(default_factory=Counter)  # turns used -> conversations
    first_passed: int = 0
    passed: int = 0

    def to_dict(self) -> dict:
        return {"rollouts": self.rollouts, "turns": {str(k): v for k, v in sorted(self.turns.items())},
                "first_turn_passed": self.first_passed, "passed": self.passed,
                "fixed_by_revision": self.passed - self.first_passed}


def program_of(task, raw: str) -> str:
    return EXTRACTORS[task.domain][1](raw) or ""


def render_next_turn(tokenizer, task, attempts: list[tuple[str, str]]) -> str:
    """The conversation after these attempts, rendered as text, the new assistant turn opened on the code fence."""
    messages = conversation(task, attempts) + [{"role": "assistant", "content": PREFILLS[task.domain]}]
    return tokenizer.apply_chat_template(messages, tokenize=False, continue_final_message=True)


def environment_ids(tokenizer, task, attempts: list[tuple[str, str]], generated: list[int],
                    eos_ids: Sequence[int]) -> list[int]:
    """The tokens between the model's last answer and its next one: the end of its turn (when it did not end it
    itself), the feedback turn and the reopened code fence, tokenized apart from the answer so the model's own
    tokens stay exactly as sampled."""
    text = render_next_turn(tokenizer, task, attempts)
    prefill, raw = PREFILLS[task.domain], attempts[-1][0]
    head = text[:-len(prefill)] if text.endswith(prefill) else text  # the new turn's fence is not the old answer
    at, size = head.rfind(raw), len(raw)
    if at < 0:  # a template that trims answers
        at, size = head.rfind(raw.rstrip()), len(raw.rstrip())
    if at < 0:
        raise UserError("the model's chat template rewrites assistant answers, so a revision turn cannot follow the "
                        "tokens it sampled; --turns needs a template that keeps answers verbatim")
    ids = tokenizer(text[at + size:], add_special_tokens=False)["input_ids"]
    if generated and generated[-1] in eos_ids and ids and ids[0] == generated[-1]:
        ids = ids[1:]  # the model closed its turn itself; that token is already its own
    return ids


class DebugRollout:
    """A `rollout_func` for TRL's GRPOTrainer: up to `turns` attempts per prompt, feedback between them."""

    def __init__(self, reward, tokenizer, turns: int, prompts: dict[str, str]):
        if turns < 2:
            raise UserError("a debugging rollout needs at least 2 turns")
        self.reward = reward  # trainers.rewards.ExecutionReward: its tasks, executor and limits
        self.tokenizer = tokenizer
        self.turns = turns
        self.prompts = prompts  # rendered prompt text -> task id
        self.stats = RolloutStats()
        eos = tokenizer.eos_token_id
        self.eos_ids = list(eos) if isinstance(eos, (list, tuple)) else [eos]

    def __call__(self, prompts: list[str], trainer) -> dict:
        def generate(batch: list[list[int]]):
            return trainer._generate_single_turn(batch, None, {}, 1)
        return self.rollout(prompts, generate)

    def rollout(self, prompts: Sequence[str], generate: Generate) -> dict:
        """Run every prompt's conversation to its first pass or its last turn, batching each turn's generation and
        each turn's execution across the prompts still going."""
        going = []
        for text in prompts:
            if text not in self.prompts:
                raise UserError("the rollout was handed a prompt that is not among the task source's prompts")
            ids = self.tokenizer(text=text)["input_ids"]
            going.append(Conversation(self.prompts[text], list(ids)))
        everyone = list(going)
        sampled_logprobs = True
        for turn in range(self.turns):
            new, logprobs = generate([c.prompt_ids + c.completion_ids for c in going])
            sampled_logprobs = sampled_logprobs and logprobs is not None
            texts = [self.tokenizer.decode(ids, skip_special_tokens=True) for ids in new]
            executions = self.reward.executions([c.task_id for c in going], texts)
            still = []
            for i, (c, ids, text, execution) in enumerate(zip(going, new, texts, executions)):
                ids = list(ids)
                c.completion_ids += ids
                c.env_mask += [1] * len(ids)
                c.logprobs += list(logprobs[i]) if logprobs is not None else [None] * len(ids)
                c.executions.append(execution)
                if execution.status in ("passed", "sandbox_error") or turn == self.turns - 1:
                    continue  # a sandbox failure cannot be explained to the model: the conversation ends unrewarded
                task = self.reward.tasks[c.task_id]
                raw = PREFILLS[task.domain] + text
                c.attempts.append((raw, feedback_message(task, program_of(task, raw), execution)))
                env = environment_ids(self.tokenizer, task, c.attempts, ids, self.eos_ids)
                c.completion_ids += env
                c.env_mask += [0] * len(env)
                c.logprobs += [None] * len(env)
                still.append(c)
            going = still
            if not going:
                break
        for c in everyone:
            self.stats.rollouts += 1
            self.stats.turns[len(c.executions)] += 1
            self.stats.first_passed += c.executions[0].status == "passed"
            self.stats.passed += c.executions[-1].status == "passed"
        return {"prompt_ids": [c.prompt_ids for c in everyone],
                "completion_ids": [c.completion_ids for c in everyone],
                "logprobs": [c.logprobs for c in everyone] if sampled_logprobs else None,
                "env_mask": [c.env_mask for c in everyone],
                "final_execution": [c.executions[-1] for c in everyone],
                "turns_used": [len(c.executions) for c in everyone],
                "first_status": [c.executions[0].status for c in everyone]}
