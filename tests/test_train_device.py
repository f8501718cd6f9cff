"""Training settings picked for the device: the CPU keeps what training always did; a GPU gets bf16, precomputed
reference log-probs, the largest step that fits with accumulation making up the update, and checkpointing only
where one pair would not fit. The choices are functions of a described device, so GPUs are tested here too."""

from __future__ import annotations

import pytest

from codelutra_data.errors import UserError
from codelutra_data.trainers.config import TrainConfig
from codelutra_data.trainers.device import Device, ModelSize, plan

GIB = 2**30
CPU = Device(False, "CPU", None, False)
H100 = Device(True, "NVIDIA H100 80GB HBM3", 79 * GIB, True)
L40S = Device(True, "NVIDIA L40S", 47 * GIB, True)
SMALL = Device(True, "a 16 GB GPU", 15 * GIB, True)
BUNDLED = ModelSize(parameters=134_515_008, trained=134_515_008, hidden=576, layers=30, vocab=49152)
QWEN_1_5B = ModelSize(parameters=1_543_714_304, trained=1_543_714_304, hidden=1536, layers=28, vocab=151936)


def config(**values) -> TrainConfig:
    return TrainConfig(data="d", out="o", **values)


def test_a_cpu_trains_as_it_always_did():
    cfg, choices = plan(config(method="focal"), CPU, BUNDLED)
    assert (cfg.batch_size, cfg.gradient_accumulation_steps, cfg.gradient_checkpointing, cfg.precompute_ref) == (
        4, 1, False, False)
    assert choices["batch_size"] == {"value": 4, "why": "CPU: 4 pairs a step"}
    assert choices["precompute_ref"]["why"] == "a live reference model" and choices["bf16"]["value"] is False
    cfg, choices = plan(config(batch_size=2, gradient_checkpointing=True, precompute_ref=True), CPU, BUNDLED)
    assert (cfg.batch_size, cfg.gradient_checkpointing, cfg.precompute_ref) == (2, True, True)
    assert {k: choices[k]["why"] for k in ("batch_size", "gradient_checkpointing", "precompute_ref")} == {
        "batch_size": "--batch-size", "gradient_checkpointing": "--gradient-checkpointing",
        "precompute_ref": "--precompute-ref"}


def test_a_big_gpu_takes_big_steps_without_checkpointing():
    cfg, choices = plan(config(method="codelutra"), H100, BUNDLED)
    assert cfg.precompute_ref is True and cfg.gradient_checkpointing is False and choices["bf16"]["value"] is True
    assert cfg.batch_size * cfg.gradient_accumulation_steps == 32 and cfg.batch_size >= 8
    assert choices["gradient_checkpointing"]["why"] == "not needed: a step fits in memory"
    bigger, _ = plan(config(method="codelutra", max_length=512), H100, BUNDLED)
    assert (bigger.batch_size, bigger.gradient_accumulation_steps) == (32, 1)  # shorter pairs: all 32 in one step


def test_checkpointing_only_where_one_pair_would_not_fit():
    cfg, choices = plan(config(method="dpo"), L40S, QWEN_1_5B)  # 2048 tokens a side, full fine-tuning
    assert cfg.gradient_checkpointing is True
    assert choices["gradient_checkpointing"]["why"] == "one pair a step does not fit without it"
    assert cfg.batch_size * cfg.gradient_accumulation_steps == 32
    roomy, _ = plan(config(method="dpo"), H100, QWEN_1_5B)
    assert roomy.gradient_checkpointing is False


def test_what_cannot_fit_is_refused_in_one_line():
    with pytest.raises(UserError, match="does not fit in the 15.0 GiB free on a 16 GB GPU: lower --max-length"):
        plan(config(method="dpo"), SMALL, QWEN_1_5B)


def test_methods_without_a_reference_and_grpo():
    cfg, choices = plan(config(method="sft"), H100, BUNDLED)
    assert cfg.precompute_ref is False and choices["precompute_ref"]["why"] == "no reference model to run"
    cfg, choices = plan(TrainConfig(method="grpo", tasks="spider-dev", out="o"), H100, BUNDLED)
    assert cfg.batch_size == 4 and choices["batch_size"]["why"] == "grpo: 4 prompts a step"
    cfg, _ = plan(config(method="dpo", lora=True), H100, BUNDLED)
    assert cfg.precompute_ref is False  # LoRA's reference is the base model with the adapter off: nothing to free


def test_the_longest_pair_not_max_length_sizes_a_step():
    full, _ = plan(config(method="codelutra"), L40S, BUNDLED)
    short, choices = plan(config(method="codelutra"), L40S, BUNDLED, longest=400)
    assert short.batch_size > full.batch_size and "(400 tokens a side at most)" in choices["batch_size"]["why"]
    assert short.batch_size * short.gradient_accumulation_steps == 32
    capped, _ = plan(config(method="codelutra", max_length=256), L40S, BUNDLED, longest=4000)
    assert plan(config(method="codelutra", max_length=256), L40S, BUNDLED)[0] == capped
