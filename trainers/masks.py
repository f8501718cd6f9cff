"""Error spans (character ranges over the rejected completion) -> token masks, at collation.

TRL 1.16 has no per-token mask hook, but its preference collator emits a `completion_mask` that becomes the
labels: a position with mask 0 is a `-100` label and adds nothing to the summed log-probs of the policy or
of the reference. So the focal (Target-DPO) loss needs no loss code of its own: we run TRL's collator and
then zero the rejected rows outside the error spans.

The mask is only right if our token positions are exactly TRL's. `tokenize_pair` mirrors TRL's dataset
tokenization, and `span_token_mask` re-tokenizes the rendered chat with offsets and refuses to go on unless
the ids equal the ones TRL will score. `mask_alignment_errors` is an independent check (prefix decoding
instead of offsets) used by the tests and on the first pairs of every focal run.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from trl.trainer.dpo_trainer import DataCollatorForPreference

from codelutra_data.errors import UserError


class MaskAlignmentError(UserError):
    """The token mask cannot be lined up with the tokens TRL scores (a tokenizer or chat template quirk)."""


@dataclass
class PairTokens:
    prompt_ids: list[int]
    chosen_ids: list[int]
    rejected_ids: list[int]


def _ids(tokenizer, messages: list[dict], **kwargs) -> list[int]:
    return list(tokenizer.apply_chat_template(messages, tokenize=True, return_dict=True, **kwargs)["input_ids"])


def _common_prefix(a: list[int], b: list[int]) -> int:
    n = 0
    for x, y in zip(a, b):
        if x != y:
            break
        n += 1
    return n


def tokenize_pair(tokenizer, prompt: list[dict], chosen: list[dict], rejected: list[dict] | None) -> PairTokens:
    """The token ids TRL 1.16's DPOTrainer builds for a conversational pair (prompt, then each completion).

    The completion starts where the prompt (with generation prompt) and prompt+completion diverge, as in TRL.
    `rejected=None` tokenizes a prompt-completion example (SFT)."""
    prompt_ids = _ids(tokenizer, prompt, add_generation_prompt=True)
    full_chosen = _ids(tokenizer, prompt + chosen)
    full_rejected = _ids(tokenizer, prompt + rejected) if rejected is not None else full_chosen
    cut = min(_common_prefix(prompt_ids, full_chosen), _common_prefix(prompt_ids, full_rejected))
    return PairTokens(prompt_ids[:cut], full_chosen[cut:], full_rejected[cut:] if rejected is not None else [])


def check_spans(spans: Any, content: str) -> list[tuple[int, int]]:
    """Validated spans as tuples; raises ValueError with the reason when they do not fit the completion."""
    out = []
    for span in spans or []:
        if len(span) != 2:
            raise ValueError(f"span {list(span)} is not [start, end]")
        start, end = int(span[0]), int(span[1])
        if not 0 <= start < end <= len(content):
            raise ValueError(f"span [{start}, {end}] is outside the rejected completion ({len(content)} characters)")
        out.append((start, end))
    return out


def _locate(text: str, content: str, start_at: int) -> tuple[int, int, int]:
    """Where the completion's content sits in the rendered chat: (position, leading characters the template
    stripped, length as rendered). Some templates `trim` the content."""
    at = text.find(content, start_at)
    if at >= 0:
        return at, 0, len(content)
    stripped = content.strip()
    at = text.find(stripped, start_at) if stripped else -1
    if at < 0:
        raise MaskAlignmentError("the chat template rewrites the completion text, so error spans cannot be placed "
                                 "on its tokens")
    return at, len(content) - len(content.lstrip()), len(stripped)


def span_token_mask(tokenizer, prompt: list[dict], rejected: list[dict], spans: Any,
                    prompt_ids: list[int], rejected_ids: list[int]) -> list[int]:
    """1 for each token of `rejected_ids` inside an error span, else 0.

    A token is inside when its characters overlap a span. A span that runs to the end of the completion also
    takes the end-of-turn tokens the template appends: where the model stopped is part of that region, and it
    makes a span covering the whole completion equal to the plain pair."""
    content = rejected[-1]["content"]
    try:
        char_spans = check_spans(spans, content)
    except ValueError as exc:
        raise MaskAlignmentError(str(exc)) from None
    text = tokenizer.apply_chat_template(prompt + rejected, tokenize=False)
    enc = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    if list(enc["input_ids"]) != list(prompt_ids) + list(rejected_ids):
        raise MaskAlignmentError("re-tokenizing the rendered chat does not give the ids the trainer scores, so "
                                 "span masks would be misplaced (tokenizer without offset support, or a template "
                                 "that tokenizes differently)")
    offsets = enc["offset_mapping"]
    first = offsets[len(prompt_ids)][0] if rejected_ids else len(text)
    base, shift, shown = _locate(text, content, min(first, len(text)))
    spans_abs = [(base + max(s - shift, 0), base + min(e - shift, shown)) for s, e in char_spans]
    spans_abs = [(s, e) for s, e in spans_abs if s < e]
    tail_from = base + shown
    to_end = any(e == len(content) for _, e in char_spans)
    mask = []
    for a, b in offsets[len(prompt_ids):]:
        inside = any(a < e and b > s for s, e in spans_abs) or (to_end and a >= tail_from)
        mask.append(1 if inside else 0)
    return mask


def mask_alignment_errors(tokenizer, rejected_ids: list[int], mask: list[int], content: str,
                          spans: Any) -> list[str]:
    """Independent check of a mask: masked tokens must overlap a span and every span character must be covered.

    Character positions come from decoding growing prefixes of the completion, not from offsets, so a bug in
    `span_token_mask` cannot hide itself. Returns human-readable problems; empty means aligned."""
    if len(mask) != len(rejected_ids):
        return [f"mask has {len(mask)} positions for {len(rejected_ids)} completion tokens"]
    kw = {"skip_special_tokens": False, "clean_up_tokenization_spaces": False}
    ends = [len(tokenizer.decode(rejected_ids[: j + 1], **kw)) for j in range(len(rejected_ids))]
    decoded = tokenizer.decode(rejected_ids, **kw)
    at = decoded.find(content)
    if at < 0:
        return ["the decoded completion does not contain the completion text"]
    char_spans = check_spans(spans, content)
    to_end = any(e == len(content) for _, e in char_spans)
    problems = []
    covered = set()
    for j, end in enumerate(ends):
        start = ends[j - 1] if j else 0
        lo, hi = start - at, end - at  # in content coordinates
        overlaps = any(lo < e and hi > s for s, e in char_spans)
        tail = to_end and lo >= len(content)
        if mask[j] and not (overlaps or tail):
            problems.append(f"token {j} {decoded[start:end]!r} is masked but outside every span")
        if mask[j]:
            covered.update(range(max(lo, 0), min(hi, len(content))))
    for s, e in char_spans:
        missing = [c for c in range(s, e) if c not in covered]
        if missing:
            problems.append(f"span [{s}, {e}] has uncovered characters from {missing[0]} "
                            f"({content[missing[0]:missing[0] + 10]!r})")
    return problems


@dataclass
class SpanMaskCollator(DataCollatorForPreference):
    """TRL's preference collator, then the rejected rows' completion mask narrowed to the error spans.

    Rows whose pair has no spans keep the full mask (a plain pair). Nothing is added to the batch, so nothing
    extra reaches `model.forward`."""

    tokenizer: Any = None

    def torch_call(self, examples: list[dict[str, Any]]) -> dict[str, Any]:
        batch = super().torch_call(examples)
        n = len(examples)
        for i, ex in enumerate(examples):
            if not ex.get("rejected_error_spans"):
                continue
            mask = span_token_mask(self.tokenizer, ex["prompt"], ex["rejected"], ex["rejected_error_spans"],
                                   ex["prompt_ids"], ex["rejected_ids"])
            row = [0] * len(ex["prompt_ids"]) + mask
            if self.max_length is not None:
                row = row[: self.max_length] if self.truncation_mode == "keep_start" else row[-self.max_length:]
            keep = torch.tensor(row, dtype=batch["completion_mask"].dtype)
            batch["completion_mask"][n + i, : len(row)] *= keep
        return batch
