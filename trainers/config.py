"""One config for every training method; every value lands in the model card."""

from __future__ import annotations

from codelutra_data.config import Settings, setting, settings
from codelutra_data.errors import UserError

METHODS = ("codelutra", "focal", "dpo", "sft")


@settings
class TrainConfig(Settings):
    method: str = setting("codelutra", "codelutra (DPO + SFT term), focal (IterPref Target-DPO on error lines), dpo, "
                          "or sft.")
    data: str = setting("", "A release directory (releases/NAME/VERSION), a pairs .parquet/.jsonl file, or a Hub "
                        "dataset id.", shown="")
    data_revision: str | None = setting(None, "Hub datasets only: the revision (tag) to load.")
    data_config: str | None = setting(None, "The release's config of pairs to read: pairs or focal_pairs.",
                                      shown="pairs if present, else focal_pairs")
    split: str = setting("train", "Split of the pairs to train on.")
    limit: int | None = setting(None, "Use the first N pairs.")
    model: str = setting("smollm2-135m", "Bundled name (smollm2-135m), a local directory, or a Hub id.")
    out: str = setting("", "Directory to write the trained model to (must not exist).", shown="")
    # Losses (REFERENCE: β=0.1, λ=α=1).
    beta: float = setting(0.1, "DPO β.")
    sft_weight: float = setting(1.0, "codelutra: λ, weight of NLL(chosen).")
    focal_alpha: float = setting(1.0, "focal: α, weight of NLL(chosen); 0 = Target-DPO.")
    # Optimisation (REFERENCE, IterPref: lr 1e-5, cosine, 3% warmup, 3 epochs, max length 2048).
    learning_rate: float | None = setting(None, "Learning rate.", shown="1e-5 full fine-tuning, 1e-4 LoRA")
    epochs: float = setting(3.0, "Passes over the data.")
    max_steps: int = setting(-1, "Stop after N optimizer steps (overrides --epochs).", shown="")
    batch_size: int = setting(4, "Pairs per device step.")
    gradient_accumulation_steps: int = setting(1, "Steps whose gradients add up to one update.")
    max_length: int = setting(2048, "Tokens per prompt+completion; longer pairs are truncated, pairs whose prompt "
                              "fills it are dropped and counted.")
    warmup_ratio: float = setting(0.03, "Share of the steps spent warming the learning rate up.")
    lr_scheduler: str = setting("cosine", "Learning-rate schedule (transformers' names).")
    weight_decay: float = setting(0.0, "AdamW weight decay.", option=False)
    gradient_checkpointing: bool = setting(False, "Less memory, about a third slower.", negatable=True)
    precompute_ref: bool = setting(False, "Compute reference log-probs once before training.", negatable=True)
    seed: int = setting(0, "Seed for data order and initialisation.")
    logging_steps: int = setting(1, "Log every N steps.", option=False)
    # LoRA (peft); the output is the adapter unless `merge` is set.
    lora: bool = setting(False, "Train a LoRA adapter (peft) instead of all weights.", negatable=True)
    lora_r: int = setting(16, "LoRA rank.")
    lora_alpha: int = setting(32, "LoRA scaling α.")
    lora_dropout: float = setting(0.05, "LoRA dropout.")
    lora_target: str = setting("all-linear", "Modules LoRA adapts.")
    merge: bool = setting(False, "With --lora: write the merged full model instead of the adapter.", negatable=True)

    def check(self) -> None:
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
