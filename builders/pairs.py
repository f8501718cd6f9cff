"""CodeLutra pairs: per task, up to K (random correct, random incorrect) samples, deduplicated by code."""

from __future__ import annotations

import random
import re
from dataclasses import dataclass

from codelutra_data.records import Execution, Pair, Sample, Task, content_hash

REASONS = ("all_correct", "no_correct", "no_usable_rejected", "no_samples")
# Failures that say more about the machine than the program are not used as rejected samples by default.
_UNRELIABLE = {"timeout", "sandbox_error", "oom"}


@dataclass(frozen=True)
class PairOptions:
    pairs_per_task: int = 2
    seed: int = 0
    reference_fallback: bool = False
    include_timeouts: bool = False


def normalize_code(code: str) -> str:
    """Code compared for deduplication: case, whitespace and a trailing semicolon ignored."""
    return re.sub(r"\s+", " ", code).strip().rstrip(";").strip().lower()


def _dedupe(items: list[tuple[Sample, Execution]]) -> list[tuple[Sample, Execution]]:
    seen, out = set(), []
    for sample, execution in sorted(items, key=lambda it: it[0].sample_index):
        key = normalize_code(sample.code or sample.raw_output)
        if key and key not in seen:
            seen.add(key)
            out.append((sample, execution))
    return out


def reference_answer(task: Task) -> str:
    lang = "sql" if task.domain == "sql" else "python"
    return f"```{lang}\n{task.reference.strip()}\n```"


def make_pairs(task: Task, results: list[tuple[Sample, Execution]], options: PairOptions,
               build_id: str, model: str) -> tuple[list[Pair], str | None]:
    """Pairs for one task, and the reason when there are none (one of REASONS)."""
    if not results:
        return [], "no_samples"
    correct = _dedupe([r for r in results if r[1].status == "passed"])
    bad_statuses = lambda e: e.status != "passed" and (options.include_timeouts or e.status not in _UNRELIABLE)  # noqa: E731
    incorrect = _dedupe([r for r in results if bad_statuses(r[1]) and r[0].raw_output.strip()])
    rng = random.Random(content_hash(options.seed, task.task_id))
    chosen_pool: list[tuple[Sample | None, Execution | None]] = list(correct)
    origin = "sample"
    if not chosen_pool:
        if not options.reference_fallback or not task.reference:  # a task set may ship no reference
            return [], "no_correct"
        chosen_pool, origin = [(None, None)], "reference"
    if not incorrect:
        any_failed = any(r[1].status != "passed" for r in results)
        return [], ("no_usable_rejected" if any_failed else "all_correct")
    combos = [(c, r) for c in chosen_pool for r in incorrect]
    rng.shuffle(combos)
    pairs = []
    for (c_sample, c_exec), (r_sample, r_exec) in combos[: options.pairs_per_task]:
        chosen_text = c_sample.raw_output if c_sample else reference_answer(task)
        pairs.append(Pair(
            pair_id=content_hash(build_id, task.task_id, c_sample.sample_id if c_sample else "reference",
                                 r_sample.sample_id),
            prompt=task.prompt,
            chosen=[{"role": "assistant", "content": chosen_text}],
            rejected=[{"role": "assistant", "content": r_sample.raw_output}],
            task_id=task.task_id, source=task.source, domain=task.domain, split=task.split, model=model,
            iteration=r_sample.iteration,
            chosen_status=c_exec.status if c_exec else "reference",
            rejected_status=r_exec.status,
            chosen_pass_rate=c_exec.pass_rate if c_exec else 1.0,
            rejected_pass_rate=r_exec.pass_rate,
            chosen_origin=origin,
            chosen_sample_id=c_sample.sample_id if c_sample else "",
            rejected_sample_id=r_sample.sample_id,
            rejected_error_spans=[],
            build_id=build_id,
        ))
    return pairs, None
