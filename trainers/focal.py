"""IterPref's Target-DPO: the rejected log-ratio counts only the tokens of the error lines.

`L = -log σ(β·(K⁺ − K⁻_masked)) [+ α·NLL(chosen)]`. The chosen side keeps every token (masking it too breaks
the model, per the paper). The masking happens in the collator (see masks.py), so TRL's own sigmoid and SFT
losses compute exactly this."""

from __future__ import annotations

from codelutra_data.errors import UserError
from codelutra_data.trainers.config import TrainConfig
from codelutra_data.trainers.data import Selection, select_pairs
from codelutra_data.trainers.masks import SpanMaskCollator, mask_alignment_errors, span_token_mask
from codelutra_data.trainers.preference import dpo_trainer

NEEDS = ("prompt", "chosen", "rejected", "rejected_error_spans")
ALIGNMENT_CHECKS = 8


def losses(cfg: TrainConfig) -> tuple[list[str], list[float]]:
    if cfg.focal_alpha > 0:
        return ["sigmoid", "sft"], [1.0, cfg.focal_alpha]
    return ["sigmoid"], [1.0]


def describe(cfg: TrainConfig) -> str:
    name = "Target-RPO" if cfg.focal_alpha > 0 else "Target-DPO"
    return (f"-log σ(β·(K⁺ − K⁻ over error-line tokens)) + α·NLL(chosen), β={cfg.beta}, α={cfg.focal_alpha} "
            f"(IterPref {name})")


def select(rows: list[dict], tokenizer, cfg: TrainConfig) -> Selection:
    return select_pairs(rows, tokenizer, cfg.max_length, focal=True, limit=cfg.limit)


def check_alignment(train_dataset, tokenizer, limit: int = ALIGNMENT_CHECKS) -> int:
    """Check the first pairs' masks against an independent decoding; raise on any misalignment."""
    checked = 0
    for ex in train_dataset:
        if checked >= limit:
            break
        spans = ex.get("rejected_error_spans")
        if not spans:
            continue
        mask = span_token_mask(tokenizer, ex["prompt"], ex["rejected"], spans, ex["prompt_ids"], ex["rejected_ids"])
        problems = mask_alignment_errors(tokenizer, ex["rejected_ids"], mask, ex["rejected"][-1]["content"], spans)
        if problems:
            raise UserError(f"pair {ex.get('pair_id', '?')}: error-span mask does not line up with the tokens: "
                            f"{problems[0]}")
        checked += 1
    return checked


def trainer(cfg: TrainConfig, model, tokenizer, rows: list[dict], output_dir: str, ref_model=None, peft_config=None):
    loss_type, weights = losses(cfg)
    t = dpo_trainer(cfg, model, tokenizer, rows, output_dir, loss_type, weights, collator_cls=SpanMaskCollator,
                    ref_model=ref_model, peft_config=peft_config)
    check_alignment(t.train_dataset, tokenizer)
    return t
