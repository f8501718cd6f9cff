"""The DPO family (codelutra, focal, dpo) on TRL's DPOTrainer: one place that maps our config onto TRL's."""

from __future__ import annotations

from typing import Any

from codelutra_data.trainers.config import TrainConfig

PAIR_COLUMNS = ("pair_id", "prompt", "chosen", "rejected", "rejected_error_spans")


def training_arguments(cfg: TrainConfig, output_dir: str) -> dict[str, Any]:
    """Arguments shared by the DPO and SFT configs (both are transformers TrainingArguments)."""
    import torch

    # TRL defaults to bf16, which transformers refuses on a CPU; mixed precision only where a GPU supports it.
    bf16 = torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    # TRL turns activation (gradient) checkpointing on by default: a third slower; ours is off unless asked.
    # transformers renamed the argument (gradient_ -> activation_checkpointing); vLLM environments pin older.
    return dict(bf16=bf16, dataloader_pin_memory=torch.cuda.is_available(),
                **{_checkpointing_argument(): bool(cfg.gradient_checkpointing)},
        output_dir=output_dir, learning_rate=cfg.lr, num_train_epochs=cfg.epochs, max_steps=cfg.max_steps,
        per_device_train_batch_size=cfg.batch_size, gradient_accumulation_steps=cfg.gradient_accumulation_steps,
        warmup_steps=cfg.warmup_ratio, lr_scheduler_type=cfg.lr_scheduler, weight_decay=cfg.weight_decay,
        seed=cfg.seed, logging_steps=cfg.logging_steps,
        max_length=cfg.max_length, report_to="none", save_strategy="no", dataloader_num_workers=0,
    )


def _checkpointing_argument() -> str:
    import dataclasses

    from transformers import TrainingArguments

    names = {f.name for f in dataclasses.fields(TrainingArguments)}
    return "activation_checkpointing" if "activation_checkpointing" in names else "gradient_checkpointing"


def dpo_config(cfg: TrainConfig, output_dir: str, loss_type: list[str], loss_weights: list[float],
               keep_columns: bool = False):
    from trl import DPOConfig

    return DPOConfig(**training_arguments(cfg, output_dir), beta=cfg.beta, loss_type=loss_type,
                     loss_weights=loss_weights, truncation_mode="keep_start",
                     precompute_ref_log_probs=bool(cfg.precompute_ref), remove_unused_columns=not keep_columns)


def pair_dataset(rows: list[dict]):
    import datasets

    return datasets.Dataset.from_list([{k: r.get(k) for k in PAIR_COLUMNS if k in r} for r in rows])


def dpo_trainer(cfg: TrainConfig, model, tokenizer, rows: list[dict], output_dir: str, loss_type: list[str],
                loss_weights: list[float], collator_cls=None, ref_model=None, peft_config=None):
    """A DPOTrainer over `rows`; with `collator_cls`, our collator replaces TRL's (same padding and truncation)."""
    from trl import DPOTrainer

    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    args = dpo_config(cfg, output_dir, loss_type, loss_weights, keep_columns=collator_cls is not None)
    collator = None
    if collator_cls is not None:
        collator = collator_cls(pad_token_id=tokenizer.pad_token_id, max_length=args.max_length,
                                truncation_mode=args.truncation_mode, pad_to_multiple_of=args.pad_to_multiple_of,
                                tokenizer=tokenizer)
    trainer = DPOTrainer(model=model, ref_model=ref_model, args=args, data_collator=collator,
                         train_dataset=pair_dataset(rows), processing_class=tokenizer, peft_config=peft_config)
    if len(trainer.train_dataset) != len(rows):
        raise RuntimeError(f"TRL kept {len(trainer.train_dataset)} of {len(rows)} pre-filtered pairs: its "
                           "tokenization differs from ours (unsupported TRL version?)")
    return trainer


def plain_select(rows: list[dict], tokenizer, cfg: TrainConfig):
    from codelutra_data.trainers.data import select_pairs

    return select_pairs(rows, tokenizer, cfg.max_length, focal=False, limit=cfg.limit)


def plain_trainer(losses):
    """The `trainer` function of a method that is TRL's loss on TRL's collator, given the method's losses."""

    def trainer(cfg: TrainConfig, model, tokenizer, rows: list[dict], output_dir: str, ref_model=None,
                peft_config=None):
        loss_type, weights = losses(cfg)
        return dpo_trainer(cfg, model, tokenizer, rows, output_dir, loss_type, weights, ref_model=ref_model,
                           peft_config=peft_config)

    return trainer
