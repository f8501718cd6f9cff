"""One config for every training method; every value lands in the model card."""

from __future__ import annotations

from codelutra_data.builders.release import PAIR_CONFIGS
from codelutra_data.builders.executors import ExecutorSettings
from codelutra_data.config import MAX_SEED, Settings, group, setting, settings
from codelutra_data.sandboxes.settings import SandboxSettings
from codelutra_data.errors import UserError

METHODS = ("codelutra", "focal", "dpo", "sft", "grpo")
GRPO_LOSSES = ("dapo", "grpo", "dr_grpo", "bnpo")  # TRL 1.16's names
# transformers' schedules that need no arguments of their own (the others would fail after the model is loaded).
SCHEDULERS = ("linear", "cosine", "cosine_with_restarts", "polynomial", "constant", "constant_with_warmup",
              "inverse_sqrt")


@settings
class TrainConfig(Settings):
    method: str = setting("codelutra", "codelutra (DPO + SFT term), focal (IterPref Target-DPO on error lines), dpo, "
                          "sft, or grpo (online RL: TRL's GRPOTrainer, rewarded by running its answers).",
                          choices=METHODS)
    data: str = setting("", "A release directory (releases/NAME/VERSION), a pairs .parquet/.jsonl file, or a Hub "
                        "dataset id.", shown="", path="input")
    tasks: str = setting("", "grpo: the task source whose train split is trained on (spider-dev, mbpp, a folder, a "
                         ".jsonl file, hf:...).", shown="", path="input")
    data_revision: str | None = setting(None, "Hub datasets only: the revision (tag) to load.")
    data_config: str | None = setting(None, "The release's config of pairs to read: pairs or focal_pairs.",
                                      shown="pairs if present, else focal_pairs", choices=PAIR_CONFIGS)
    split: str = setting("train", "Split of the pairs to train on.")
    limit: int | None = setting(None, "Use the first N pairs.", at_least=1)
    model: str = setting("smollm2-135m", "Bundled name (smollm2-135m), a local directory, or a Hub id.",
                         path="input")
    out: str = setting("", "Directory to write the trained model to (must not exist).", shown="", path="output-folder")
    # Losses (REFERENCE: β=0.1, λ=α=1).
    beta: float = setting(0.1, "DPO β.", above=0)
    sft_weight: float = setting(1.0, "codelutra: λ, weight of NLL(chosen).", at_least=0)
    focal_alpha: float = setting(1.0, "focal: α, weight of NLL(chosen); 0 = Target-DPO.", at_least=0)
    # Optimisation (REFERENCE, IterPref: lr 1e-5, cosine, 3% warmup, 3 epochs, max length 2048).
    learning_rate: float | None = setting(None, "Learning rate.", shown="1e-5 full fine-tuning, 1e-4 LoRA", above=0,
                                          at_most=1)
    epochs: float = setting(3.0, "Passes over the data.", above=0, at_most=10_000)
    max_steps: int = setting(-1, "Stop after N optimizer steps (overrides --epochs).", shown="", at_least=-1,
                             at_most=10**8)
    batch_size: int | str = setting("auto", "Pairs per device step (grpo: prompts per step).",
                                    shown="auto: 4 on a CPU (and for grpo); on a GPU the most of 32 a step holds, "
                                    "gradient accumulation making up 32 an update", choices=("auto",), at_least=1,
                                    at_most=65536)
    gradient_accumulation_steps: int = setting(1, "Steps whose gradients add up to one update.", at_least=1,
                                               at_most=65536)
    max_length: int = setting(2048, "Tokens per prompt+completion; longer pairs are truncated, pairs whose prompt "
                              "fills it are dropped and counted.", at_least=1, at_most=2**20)
    warmup_ratio: float = setting(0.03, "Share of the steps spent warming the learning rate up.", at_least=0,
                                  at_most=1)
    lr_scheduler: str = setting("cosine", "Learning-rate schedule (transformers' names).", choices=SCHEDULERS)
    weight_decay: float = setting(0.0, "AdamW weight decay.", option=False, at_least=0)
    gradient_checkpointing: bool | None = setting(None, "Less memory, about a third slower.", negatable=True,
                                                  shown="auto: only where one pair a step would not fit (GPU)")
    precompute_ref: bool | None = setting(None, "Compute reference log-probs once before training (frees the "
                                          "reference model).", negatable=True, shown="auto: on a GPU")
    seed: int = setting(0, "Seed for data order and initialisation.", at_least=0, at_most=MAX_SEED)
    logging_steps: int = setting(1, "Log every N steps.", option=False, at_least=1)
    # LoRA (peft); the output is the adapter unless `merge` is set.
    lora: bool = setting(False, "Train a LoRA adapter (peft) instead of all weights.", negatable=True)
    lora_r: int = setting(16, "LoRA rank.", at_least=1, at_most=65536)
    lora_alpha: int = setting(32, "LoRA scaling α.", at_least=1)
    lora_dropout: float = setting(0.05, "LoRA dropout.", at_least=0, at_most=1)
    lora_target: str = setting("all-linear", "Modules LoRA adapts.")
    merge: bool = setting(False, "With --lora: write the merged full model instead of the adapter.", negatable=True)
    # GRPO (online RL with an execution reward); defaults stated in the model card.
    reward: str = setting("pass", "grpo: pass (1 when every test passes, else 0) or tests-fraction (Python: tests "
                          "passed / total).", choices=("pass", "tests-fraction"))
    format_weight: float = setting(0.0, "grpo: subtracted from the reward of an answer with no code.", at_least=0,
                                   at_most=100)
    num_generations: int = setting(8, "grpo: completions per prompt (the group).", at_least=2, at_most=1024)
    max_completion_length: int = setting(256, "grpo: most tokens a completion may have.", at_least=1, at_most=2**20)
    temperature: float = setting(1.0, "grpo: sampling temperature of the completions.", above=0, at_most=10)
    kl_coef: float = setting(0.001, "grpo: KL coefficient against the starting model (TRL's beta; 0 loads no "
                             "reference model).", at_least=0, at_most=100)
    loss_type: str = setting("dapo", "grpo: TRL's loss aggregation (dapo, grpo, dr_grpo, bnpo).", choices=GRPO_LOSSES)
    micro_batch_size: int = setting(4, "grpo: completions per forward/backward pass; a step's groups accumulate "
                                    "gradients over as many passes as they need, so memory stays bounded (on a CPU "
                                    "about 1.5 GB per completion of 1k tokens with the bundled model).", at_least=1,
                                    at_most=65536)
    turns: int = setting(1, "grpo: attempts per completion; above 1, a failed attempt's sandbox feedback (the "
                         "trajectories' feedback-v1) comes back as the next user turn and the model revises "
                         "(RLEF-style); the final attempt is rewarded.", at_least=1, at_most=16)
    use_vllm: bool = setting(False, "grpo: generate with vLLM (TRL's colocated mode; needs a GPU and vllm).",
                             negatable=True)
    sandbox: SandboxSettings = group(SandboxSettings)
    where: ExecutorSettings = group(ExecutorSettings)

    def check(self) -> None:
        if self.method == "grpo":
            self._check_grpo()
            return
        if self.turns != 1:
            raise UserError("--turns is for --method grpo (multi-turn online RL); the other methods train on pairs")
        if self.tasks:
            raise UserError("--tasks is for --method grpo (online RL on a task source); the other methods train on "
                            "--data, a release of pairs")
        if not self.data:
            raise UserError("--data is required: a release directory (releases/NAME/VERSION), a pairs file, "
                            "or a Hub dataset id")
        if not self.out:
            raise UserError("--out is required: the directory the trained model is written to")
        if self.max_steps == 0:
            raise UserError("max_steps (--max-steps) must be positive (or -1: train for --epochs)")
        if self.merge and not self.lora:
            raise UserError("--merge only applies to --lora runs (full fine-tuning always writes a full model)")

    def _check_grpo(self) -> None:
        if not self.tasks:
            raise UserError("--method grpo trains on a task source's prompts: add --tasks (e.g. spider-dev, mbpp)")
        if self.data:
            raise UserError("--method grpo generates its own completions from --tasks; --data is for the offline "
                            "methods")
        if self.split != "train":
            raise UserError(f"--method grpo trains on the train split only (got --split {self.split}): validation "
                            f"and test are for choosing and reporting")
        if not self.out:
            raise UserError("--out is required: the directory the trained model is written to")
        if self.max_steps == 0:
            raise UserError("max_steps (--max-steps) must be positive (or -1: train for --epochs)")
        if self.merge and not self.lora:
            raise UserError("--merge only applies to --lora runs (full fine-tuning always writes a full model)")

    @property
    def lr(self) -> float:
        if self.learning_rate is not None:
            return self.learning_rate
        return 1e-4 if self.lora else 1e-5
