"""Supervised fine-tuning on the chosen side only (CodeLutra's "positives alone" ablation)."""

from __future__ import annotations

from codelutra_data.trainers.config import TrainConfig
from codelutra_data.trainers.data import Selection, select_sft
from codelutra_data.trainers.preference import training_arguments

NEEDS = ("prompt", "chosen")


def describe(cfg: TrainConfig) -> str:
    return "token-mean NLL of the chosen completion (SFT on positives)"


def select(rows: list[dict], tokenizer, cfg: TrainConfig) -> Selection:
    return select_sft(rows, tokenizer, cfg.max_length, limit=cfg.limit)


def trainer(cfg: TrainConfig, model, tokenizer, rows: list[dict], output_dir: str, ref_model=None, peft_config=None):
    import datasets
    from trl import SFTConfig, SFTTrainer

    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    args = SFTConfig(**training_arguments(cfg, output_dir), completion_only_loss=True, truncation_mode="keep_start")
    t = SFTTrainer(model=model, args=args, train_dataset=datasets.Dataset.from_list(rows), processing_class=tokenizer,
                   peft_config=peft_config)
    if len(t.train_dataset) != len(rows):
        raise RuntimeError(f"TRL kept {len(t.train_dataset)} of {len(rows)} pre-filtered examples")
    return t
