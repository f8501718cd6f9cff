"""IterPref focal pairs from solved debug trajectories, with the paper's filters, each counted.

chosen = the final passing attempt; rejected = an earlier failing attempt (`random`, seeded, which the paper
found best; or `first` / `last`). The prompt is the task's original prompt: the feedback was the means to
get the fix, not part of the pair. `rejected_error_spans` are the rejected program's lines outside the
longest common subsequence of lines with the chosen program, as character spans over the rejected answer
exactly as stored (fence and any text around the code included in the text, never in the spans).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Callable, Iterable, Iterator

from codelutra_data.builders.code_equivalence import canonical, cosmetic_equal, same_structure
from codelutra_data.builders.extract import LOCATORS
from codelutra_data.builders.spans import error_lines, line_spans
from codelutra_data.errors import UserError
from codelutra_data.models.spec import resolve
from codelutra_data.records import Pair, Task, Trajectory, content_hash

REJECTED_RULES = ("random", "first", "last")
# In the order they are checked; a pair is counted under the first filter it trips.
FILTERS = ("no_error_lines", "comments_or_blank_only", "too_many_error_lines", "too_long", "same_structure",
           "cosmetic_only")
NO_PAIR = ("unsolved", "solved_first_try", "no_usable_rejected", "duplicate")
_UNRELIABLE = {"timeout", "sandbox_error", "oom"}  # say more about the machine than the program
_COMMENT = {"python": ("#",), "sql": ("--", "/*", "*/", "*")}


@dataclass(frozen=True)
class FocalOptions:
    rejected: str = "random"
    seed: int = 0
    max_error_lines: int = 20
    max_tokens: int = 2048  # per side, in the model's tokenizer
    include_timeouts: bool = False


@dataclass(frozen=True)
class ErrorRegion:
    spans: list[list[int]]  # over the rejected raw answer
    lines: list[str]  # the rejected program's error lines (D⁻)


def error_region(rejected_raw: str, chosen_raw: str, domain: str) -> ErrorRegion:
    """D⁻ computed on the two programs (LCS over lines), placed on the rejected answer as stored."""
    locate = LOCATORS[domain]
    r_span, c_span = locate(rejected_raw), locate(chosen_raw)
    if r_span is None:
        return ErrorRegion([], [])
    rejected_code = rejected_raw[r_span[0]:r_span[1]]
    chosen_code = chosen_raw[c_span[0]:c_span[1]] if c_span else ""
    numbers = error_lines(rejected_code, chosen_code)
    code_lines = rejected_code.splitlines()
    spans = [[start + r_span[0], end + r_span[0]] for start, end in line_spans(rejected_code, numbers)]
    return ErrorRegion(spans, [code_lines[n - 1] for n in numbers])


def filter_reason(chosen_raw: str, rejected_raw: str, chosen_code: str, rejected_code: str, region: ErrorRegion,
                  domain: str, options: FocalOptions, count_tokens: Callable[[str], int] | None = None,
                  engine: str = "sqlite") -> str | None:
    """The first of FILTERS this pair trips, or None when it is kept."""
    if not region.spans:
        return "no_error_lines"
    markers = _COMMENT[domain]
    if all(not line.strip() or line.strip().startswith(markers) for line in region.lines):
        return "comments_or_blank_only"
    if len(region.lines) > options.max_error_lines:
        return "too_many_error_lines"
    if count_tokens is not None and max(count_tokens(chosen_raw), count_tokens(rejected_raw)) > options.max_tokens:
        return "too_long"
    if same_structure(chosen_code, rejected_code, domain, engine):
        return "same_structure"
    if cosmetic_equal(chosen_code, rejected_code, domain, engine):
        return "cosmetic_only"
    return None


def _candidates(trajectory: Trajectory, options: FocalOptions) -> list[dict]:
    """Earlier failing attempts usable as rejected: with code, not an unreliable failure, distinct programs."""
    seen, out = set(), []
    for r in trajectory.rounds[:trajectory.solved_round]:
        if r["status"] in ("passed", "no_code") or not r["code"].strip():
            continue
        if r["status"] in _UNRELIABLE and not options.include_timeouts:
            continue
        key = canonical(r["code"], trajectory.domain)
        if key not in seen:
            seen.add(key)
            out.append(r)
    return out


def focal_pair(task: Task, trajectory: Trajectory, options: FocalOptions, build_id: str, model: str,
               count_tokens: Callable[[str], int] | None = None) -> tuple[Pair | None, str | None]:
    """The focal pair of one trajectory, or None and the reason (one of NO_PAIR or FILTERS)."""
    if not trajectory.solved:
        return None, "unsolved"
    if trajectory.solved_round == 0:
        return None, "solved_first_try"
    candidates = _candidates(trajectory, options)
    if not candidates:
        return None, "no_usable_rejected"
    if options.rejected == "first":
        rejected = candidates[0]
    elif options.rejected == "last":
        rejected = candidates[-1]
    else:
        rejected = random.Random(content_hash(options.seed, trajectory.task_id, trajectory.trajectory_index)
                                 ).choice(candidates)
    chosen = trajectory.rounds[trajectory.solved_round]
    region = error_region(rejected["raw_output"], chosen["raw_output"], task.domain)
    reason = filter_reason(chosen["raw_output"], rejected["raw_output"], chosen["code"], rejected["code"], region,
                           task.domain, options, count_tokens, task.context.get("engine", "sqlite"))
    if reason:
        return None, reason
    return Pair(
        pair_id=content_hash(build_id, task.task_id, chosen["sample_id"], rejected["sample_id"]),
        prompt=task.prompt,
        chosen=[{"role": "assistant", "content": chosen["raw_output"]}],
        rejected=[{"role": "assistant", "content": rejected["raw_output"]}],
        task_id=task.task_id, source=task.source, domain=task.domain, split=task.split, model=model,
        iteration=0, chosen_status="passed", rejected_status=rejected["status"],
        chosen_pass_rate=1.0,
        rejected_pass_rate=rejected["tests_passed"] / rejected["tests_total"] if rejected["tests_total"] else 0.0,
        chosen_origin="sample", chosen_sample_id=chosen["sample_id"], rejected_sample_id=rejected["sample_id"],
        rejected_error_spans=region.spans, build_id=build_id,
    ), None


def focal_pairs(tasks: dict[str, Task], trajectories: Iterable[Trajectory], options: FocalOptions, build_id: str,
                model: str, count_tokens: Callable[[str], int] | None = None) -> tuple[list[Pair], dict[str, int]]:
    """One pair per solved trajectory that passes the filters (identical pairs of one task kept once), and
    the count of every reason a trajectory gave none."""
    reasons: dict[str, int] = {}
    pairs = list(iter_focal_pairs(tasks, trajectories, options, build_id, model, count_tokens, reasons))
    return pairs, reasons


def iter_focal_pairs(tasks: dict[str, Task], trajectories: Iterable[Trajectory], options: FocalOptions,
                     build_id: str, model: str, count_tokens: Callable[[str], int] | None = None,
                     reasons: dict[str, int] | None = None) -> Iterator[Pair]:
    """`focal_pairs` one pair at a time, counting into `reasons` (every reason set to 0 first): a build streams
    them, holding a digest per pair for the duplicate check instead of the pair."""
    reasons = reasons if reasons is not None else {}
    reasons.update({r: 0 for r in (*NO_PAIR, *FILTERS)})
    seen: set[str] = set()
    for trajectory in trajectories:
        pair, reason = focal_pair(tasks[trajectory.task_id], trajectory, options, build_id, model, count_tokens)
        if pair is not None:
            key = content_hash(pair.task_id, pair.chosen[0]["content"], pair.rejected[0]["content"])
            if key in seen:
                pair, reason = None, "duplicate"
            else:
                seen.add(key)
                yield pair
        if reason:
            reasons[reason] += 1


def token_counter(spec: str) -> Callable[[str], int]:
    """Token counts in a model's own tokenizer, for the length filter (loaded before any work: a model without a
    tokenizer fails first)."""
    from transformers import AutoTokenizer

    try:
        ref = resolve(spec)
    except UserError:
        raise UserError(f"cannot measure focal pairs in {spec!r}'s tokenizer: pass --tokenizer with a local or "
                        f"Hub model that shares it (a served model name is not a tokenizer)") from None
    try:
        tokenizer = AutoTokenizer.from_pretrained(ref.path)
    except OSError as exc:
        raise UserError(f"cannot load the tokenizer of {spec!r}: {str(exc).splitlines()[0]}") from None
    return lambda text: len(tokenizer(text, add_special_tokens=False)["input_ids"])
