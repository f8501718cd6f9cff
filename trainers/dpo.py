"""Plain sigmoid DPO, the ablation CodeLutra reports collapsing without the SFT term."""

from __future__ import annotations

from codelutra_data.trainers.config import TrainConfig
from codelutra_data.trainers.preference import plain_select, plain_trainer

NEEDS = ("prompt", "chosen", "rejected")


def losses(cfg: TrainConfig) -> tuple[list[str], list[float]]:
    return ["sigmoid"], [1.0]


def describe(cfg: TrainConfig) -> str:
    return f"-log σ(β·Δ), β={cfg.beta} (plain DPO)"


select = plain_select
trainer = plain_trainer(losses)
