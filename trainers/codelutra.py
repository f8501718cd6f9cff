"""CodeLutra's dual loss: -log σ(β·Δ) + λ·NLL(chosen), which is TRL's sigmoid loss plus its SFT term."""

from __future__ import annotations

from codelutra_data.trainers.config import TrainConfig
from codelutra_data.trainers.preference import plain_select, plain_trainer

NEEDS = ("prompt", "chosen", "rejected")


def losses(cfg: TrainConfig) -> tuple[list[str], list[float]]:
    return ["sigmoid", "sft"], [1.0, cfg.sft_weight]


def describe(cfg: TrainConfig) -> str:
    return f"-log σ(β·Δ) + λ·NLL(chosen), β={cfg.beta}, λ={cfg.sft_weight} (CodeLutra dual loss)"


select = plain_select
trainer = plain_trainer(losses)
