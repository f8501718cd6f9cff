"""One config for every training method; every value lands in the model card."""

from __future__ import annotations

from dataclasses import dataclass

from codelutra_data.errors import UserError

METHODS = ("codelutra", "focal", "dpo", "sft")


@dataclass
class TrainConfig:
    method: str = "codelutra"
    data: str = ""  # a release directory, a pairs .parquet/.jsonl file, or a Hub dataset id
    data_revision: str | None = None  # Hub only: a tag such as v0.1.0
    data_config: str | None = None  # the release's config to read; None: `pairs`, else `focal_pairs`
    split: str = "train"
    limit: int | None = None  # use the first N pairs
    model: str = "smollm2-135m"
    out: str = ""
    # Losses (REFERENCE: β=0.1, λ=α=1).
    beta: float = 0.1
    sft_weight: float = 1.0  # λ: codelutra's NLL(chosen) weight
    focal_alpha: float = 1.0  # α: focal's NLL(chosen) weight; 0 = Target-DPO, >0 = Target-RPO
    # Optimisation (REFERENCE, IterPref: lr 1e-5, cosine, 3% warmup, 3 epochs, max length 2048).
    learning_rate: float | None = None  # None: 1e-5 full fine-tuning, 1e-4 LoRA
    epochs: float = 3.0
    max_steps: int = -1
    batch_size: int = 4
    gradient_accumulation_steps: int = 1
    max_length: int = 2048
    warmup_ratio: float = 0.03
    lr_scheduler: str = "cosine"
    weight_decay: float = 0.0
    gradient_checkpointing: bool = False
    precompute_ref: bool = False
    seed: int = 0
    logging_steps: int = 1
    # LoRA (peft); the output is the adapter unless `merge` is set.
    lora: bool = False
    lora_r: int = 16
    lora_alpha: int = 32
    lora_dropout: float = 0.05
    lora_target: str = "all-linear"
    merge: bool = False

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise UserError(f"unknown method {self.method!r}: choose one of {', '.join(METHODS)}")
        if not self.data:
            raise UserError("--data is required: a release directory (releases/NAME/VERSION), a pairs file, "
                            "or a Hub dataset id")
        if not self.out:
            raise UserError("--out is required: the directory the trained model is written to")
        for name in ("batch_size", "gradient_accumulation_steps", "max_length", "logging_steps", "lora_r"):
            if getattr(self, name) < 1:
                raise UserError(f"{name.replace('_', '-')} must be at least 1")
        if self.beta <= 0:
            raise UserError("beta must be positive")
        if self.sft_weight < 0 or self.focal_alpha < 0:
            raise UserError("sft-weight and focal-alpha must be 0 or more")
        if self.max_steps == 0 or self.max_steps < -1:
            raise UserError("max-steps must be positive (or -1: train for --epochs)")
        if self.epochs <= 0:
            raise UserError("epochs must be positive")
        if self.limit is not None and self.limit < 1:
            raise UserError("limit must be at least 1")
        if self.merge and not self.lora:
            raise UserError("--merge only applies to --lora runs (full fine-tuning always writes a full model)")

    @property
    def lr(self) -> float:
        if self.learning_rate is not None:
            return self.learning_rate
        return 1e-4 if self.lora else 1e-5
