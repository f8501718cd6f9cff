"""Execution rewards for online RL (GRPO): each completion's program is taken out of the answer exactly as builds
take it (the domain's extractor), the whole batch runs through the executor (local sandbox pools or Ray) under the
same limits as `build` and `eval` (the sandbox settings, and per-task CPU limits scaled to each task's checked
reference), and the verdict becomes the reward. A sandbox failure is not the program's fault: that completion gets
None ("no reward", which TRL leaves out of the group's statistics) and is counted, never a silent 0."""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Sequence

from codelutra_data.builders.extract import EXTRACTORS
from codelutra_data.builders.sampling import PREFILLS
from codelutra_data.errors import UserError
from codelutra_data.records import Execution, Task, content_hash

REWARDS = ("pass", "tests-fraction")


@dataclass
class RewardStats:
    """What the rewards of a run were made of (in train_report.json and the model card)."""

    completions: int = 0
    statuses: Counter = field(default_factory=Counter)
    sandbox_failures: int = 0
    no_code: int = 0
    programs_run: int = 0  # with --turns, every attempt's, not only the final ones
    seconds: float = 0.0  # wall time spent running programs (the reward's share of training time)

    def to_dict(self) -> dict:
        return {"completions": self.completions, "statuses": dict(sorted(self.statuses.items())),
                "sandbox_failures": self.sandbox_failures, "no_code": self.no_code,
                "programs_run": self.programs_run, "seconds": round(self.seconds, 3)}


def completion_text(completion, domain: str) -> str:
    """The answer as builds see it: a text completion continues the prompt's opened code fence (the build's
    prefill), so the fence comes first; a conversational one is the assistant messages' text."""
    if isinstance(completion, str):
        return PREFILLS[domain] + completion
    if isinstance(completion, list):
        return "".join(m.get("content") or "" for m in completion if isinstance(m, dict))
    raise UserError(f"a completion of unexpected type {type(completion).__name__}")


def reward_of(execution: Execution, kind: str, format_weight: float = 0.0) -> float | None:
    """The reward a verdict earns: `pass` 1/0; `tests-fraction` the share of tests passed (a program that does not
    run earns 0); minus `format_weight` for an answer with no code; None for a sandbox failure."""
    if execution.status == "sandbox_error":
        return None
    if execution.status == "no_code":
        return -format_weight
    if kind == "pass" or execution.tests_total <= 0:
        return 1.0 if execution.status == "passed" else 0.0
    return execution.tests_passed / execution.tests_total


class ExecutionReward:
    """A TRL reward function over tasks: `reward(prompts, completions, task_id=[...])` runs every completion's
    program against its task and returns one reward per completion (None for a sandbox failure)."""

    def __init__(self, tasks: Sequence[Task], executor, timeouts: dict[str, float], kind: str = "pass",
                 format_weight: float = 0.0):
        if kind not in REWARDS:
            raise UserError(f"unknown reward {kind!r}: use one of {', '.join(REWARDS)}")
        self.tasks = {t.task_id: t for t in tasks}
        self.executor = executor
        self.timeouts = timeouts
        self.kind = kind
        self.format_weight = format_weight
        self.stats = RewardStats()
        self.__name__ = f"execution_{kind.replace('-', '_')}"  # TRL logs each reward function by its name

    def executions(self, task_ids: Sequence[str], completions: Sequence) -> list[Execution]:
        """The verdicts of a batch of completions, in order, run as one batch."""
        items = []
        for i, (task_id, completion) in enumerate(zip(task_ids, completions)):
            task = self.tasks.get(task_id)
            if task is None:
                raise UserError(f"the reward was asked about task {task_id!r}, which is not among its tasks")
            text = completion_text(completion, task.domain)
            code = EXTRACTORS[task.domain][1](text) or ""
            items.append((task, f"rl:{content_hash(task_id, text, i)}", code))
        out: list = [None] * len(items)
        started = time.perf_counter()
        for domain in sorted({task.domain for task, _, _ in items}):  # one sandbox per domain, each batch whole
            chosen = [i for i, (task, _, _) in enumerate(items) if task.domain == domain]
            for i, execution in zip(chosen, self.executor.run([items[i] for i in chosen], self.timeouts)):
                out[i] = execution
        self.stats.seconds += time.perf_counter() - started
        self.stats.programs_run += len(items)
        return out

    def __call__(self, prompts=None, completions=None, task_id=None, log_metric=None, final_execution=None,
                 turns_used=None, first_status=None, **_kwargs) -> list[float | None]:
        if final_execution is not None:  # a multi-turn rollout ran the final attempts already (trainers/rollout.py)
            executions = list(final_execution)
        elif completions is None or task_id is None:
            raise UserError("the execution reward needs the completions and the dataset's task_id column")
        else:
            executions = self.executions(task_id, completions)
        rewards = [reward_of(e, self.kind, self.format_weight) for e in executions]
        failures = sum(r is None for r in rewards)
        self.stats.completions += len(executions)
        self.stats.statuses.update(e.status for e in executions)
        self.stats.sandbox_failures += failures
        self.stats.no_code += sum(e.status == "no_code" for e in executions)
        if log_metric is not None and executions:  # TRL averages these per logging step, beside reward and kl
            log_metric("pass_rate", sum(e.status == "passed" for e in executions) / len(executions))
            log_metric("sandbox_failures", float(failures))
            if turns_used:
                log_metric("turns", sum(turns_used) / len(turns_used))
                log_metric("first_pass_rate", sum(s == "passed" for s in first_status) / len(first_status))
        return rewards
