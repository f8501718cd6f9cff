"""Training settings picked for the device (`--batch-size auto`, `--gradient-checkpointing` and `--precompute-ref`
left unset): on a CPU what training always did (4 pairs a step, no checkpointing, a live reference model); on a
GPU bf16, reference log-probabilities computed once before training (which also frees the reference model), an
update of 32 pairs split into the most each device step holds with gradient accumulation making up the rest,
and activation checkpointing only when one pair a step would not fit. Each choice keeps its reason, which the
report and the model card state."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from codelutra_data.errors import UserError

CPU_BATCH = 4  # pairs (grpo: prompts) per step on a CPU: what training always used
GPU_UPDATE = 32  # pairs per optimizer update on a GPU, where per-step overhead, not the device, limited batch 4
GRPO_BATCH = 4  # prompts per step, each with its group of completions
MEMORY_SHARE = 0.8  # of the device's free memory, for the weights, optimizer and one step's activations
# Bytes per token and layer per unit of hidden size a training pass keeps for the backward pass (measured for
# GRPO on a CPU, trainers/grpo.py); with checkpointing only each layer's input is kept.
ACTIVATION_BYTES = 64
CHECKPOINTED_BYTES = 4
OPTIMIZER_BYTES = 16  # per trained parameter: fp32 weight, gradient and AdamW's two moments


@dataclass(frozen=True)
class Device:
    """What the choices depend on: a CUDA device or not, its name, its free memory and bf16 support."""

    cuda: bool
    name: str
    free_bytes: int | None
    bf16: bool

    @classmethod
    def here(cls) -> "Device":
        import torch

        if not torch.cuda.is_available():
            return cls(False, "CPU", None, False)
        return cls(True, torch.cuda.get_device_name(0), torch.cuda.mem_get_info()[0], torch.cuda.is_bf16_supported())


@dataclass(frozen=True)
class ModelSize:
    """The model's shape, as far as training memory goes."""

    parameters: int
    trained: int  # parameters with gradients (LoRA: the adapter's)
    hidden: int
    layers: int
    vocab: int

    @classmethod
    def of(cls, model, lora_fraction: float | None = None) -> "ModelSize":
        c = getattr(model.config, "text_config", None) or model.config
        total = sum(p.numel() for p in model.parameters())
        trained = int(total * lora_fraction) if lora_fraction is not None else total
        return cls(total, trained, c.hidden_size, c.num_hidden_layers, c.vocab_size)


def step_bytes(size: ModelSize, pairs: int, tokens: int, checkpointing: bool) -> int:
    """One device step of `pairs` preference pairs (chosen and rejected, `tokens` each at most): the activations
    the backward pass keeps and the logits."""
    per_token = size.hidden * size.layers * (CHECKPOINTED_BYTES if checkpointing else ACTIVATION_BYTES)
    return pairs * 2 * tokens * (per_token + 3 * size.vocab * 4)


def fixed_bytes(size: ModelSize, reference: bool) -> int:
    """Weights, gradients and optimizer state, and a live reference model's weights."""
    return size.parameters * 4 + size.trained * OPTIMIZER_BYTES + (size.parameters * 4 if reference else 0)


def plan(cfg, device: Device, size: ModelSize, longest: int | None = None) -> tuple[object, dict[str, dict]]:
    """`cfg` with every device-dependent setting decided, and what was chosen and why (report and card).
    `longest`: tokens of the longest sequence the data gives (batches are padded to their longest, so no step
    holds more); `--max-length` when unknown."""
    preference = cfg.method in ("codelutra", "focal", "dpo")
    choices: dict[str, dict] = {"device": {"value": device.name, "why": "CUDA" if device.cuda else "no GPU"}}
    choices["bf16"] = {"value": device.bf16, "why": "a GPU with bf16" if device.bf16 else "no bf16 here: float32"}

    precompute = cfg.precompute_ref
    if precompute is None:
        precompute = device.cuda and preference and not cfg.lora
        why = ("GPU: the reference model's log-probs once, before training, and the model freed" if precompute
               else "a live reference model" if preference and not cfg.lora else "no reference model to run")
    else:
        why = "--precompute-ref" if precompute else "--no-precompute-ref"
    choices["precompute_ref"] = {"value": precompute, "why": why}

    batch, accumulation, checkpointing = cfg.batch_size, cfg.gradient_accumulation_steps, cfg.gradient_checkpointing
    if cfg.method == "grpo":
        batch = GRPO_BATCH if batch == "auto" else batch
        choices["batch_size"] = {"value": batch, "why": "grpo: 4 prompts a step" if cfg.batch_size == "auto"
                                 else "--batch-size"}
        checkpointing = bool(checkpointing)
    elif not device.cuda or device.free_bytes is None:
        batch = CPU_BATCH if batch == "auto" else batch
        choices["batch_size"] = {"value": batch, "why": "CPU: 4 pairs a step" if cfg.batch_size == "auto"
                                 else "--batch-size"}
        checkpointing = bool(checkpointing)
    else:
        budget = device.free_bytes * MEMORY_SHARE - fixed_bytes(size, preference and not precompute and not cfg.lora)
        tokens = min(cfg.max_length, longest) if longest else cfg.max_length

        def fits(pairs: int, ckpt: bool) -> bool:
            return step_bytes(size, pairs, tokens, ckpt) <= budget

        if checkpointing is None:
            checkpointing = not fits(1, False)
            ckpt_why = ("one pair a step does not fit without it" if checkpointing
                        else "not needed: a step fits in memory")
        else:
            ckpt_why = "--gradient-checkpointing" if checkpointing else "--no-gradient-checkpointing"
        if not fits(1, checkpointing):
            raise UserError(f"one pair of {tokens} tokens a side does not fit in the {device.free_bytes / 2**30:.1f} "
                            f"GiB free on {device.name}: lower --max-length, or add --lora")
        choices["gradient_checkpointing"] = {"value": checkpointing, "why": ckpt_why}
        if batch == "auto":
            update = GPU_UPDATE * accumulation
            batch = next(b for b in (32, 16, 8, 4, 2, 1) if fits(b, checkpointing))
            accumulation = max(1, update // batch)
            choices["batch_size"] = {"value": batch, "why": f"GPU: {update} pairs an update, {batch} a step fits "
                                     f"({tokens} tokens a side at most)"}
            choices["gradient_accumulation_steps"] = {"value": accumulation, "why": f"{batch} x {accumulation} = "
                                                      f"{batch * accumulation} pairs an update"}
        else:
            choices["batch_size"] = {"value": batch, "why": "--batch-size"}
    choices.setdefault("gradient_checkpointing", {"value": bool(checkpointing), "why": "off on a CPU: a third "
                       "slower" if cfg.gradient_checkpointing is None else "--gradient-checkpointing"
                       if checkpointing else "--no-gradient-checkpointing"})
    decided = dataclasses.replace(cfg, batch_size=batch, gradient_accumulation_steps=accumulation,
                                  gradient_checkpointing=bool(checkpointing), precompute_ref=precompute)
    return decided, choices
