"""`refine`'s configuration. The engine, sampling, sandbox and where-it-runs groups are the loop's own and pass
unchanged to every build (sampling to builds only: evaluations stay greedy); the `build:`, `train:` and `eval:`
sections take any other option of those commands (the command line has flags for the usual ones)."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

from codelutra_data.benchmarks.runner import EvalConfig
from codelutra_data.builders.build_config import BuildConfig
from codelutra_data.builders.executors import ExecutorSettings
from codelutra_data.builders.tasks import source_name
from codelutra_data.builders.sampling import SamplingSettings
from codelutra_data.builders.tasks.adapters import TaskFormatSettings
from codelutra_data.config import MAX_SEED, Settings, group, setting, settings
from codelutra_data.errors import UserError
from codelutra_data.models.engine import EngineSettings
from codelutra_data.sandboxes.settings import SandboxSettings
from codelutra_data.trainers.config import METHODS, TrainConfig

MODES = ("pairs", "trajectories")
MAX_ITERATIONS = 1000
TRAIN_FROM = ("current", "base")
# Options the loop decides itself: sampling always reads train, from the current model, into this run's folders.
BUILD_FIXED = {"tasks", "mode", "split", "model", "name", "version", "runs_dir", "releases_dir", "resume", "seed"}
TRAIN_FIXED = {"method", "data", "tasks", "data_revision", "data_config", "split", "model", "out", "seed",
               *SandboxSettings.layout(), *ExecutorSettings.layout()}
# With --method grpo there is no build stage; these build options keep their meaning (the train tasks used, answers
# sampled per task) as GRPO's task limit and group size.
GRPO_FROM_BUILD = {"limit": "limit", "samples": "num_generations"}
EVAL_FIXED = {"suite", "split", "limit", "model", "samples", "predictions", "store", "out", "write_predictions",
              "seed"}
# Options that do not change results, so a resumed loop may differ in them: where it runs, and these.
NOT_DETERMINING = {"resume", "push_to_hub", "private", "store", *ExecutorSettings.layout()}
# The sections of a config file: the command whose options each takes, and those refine sets itself.
SECTIONS = {"build": (BuildConfig, BUILD_FIXED), "train": (TrainConfig, TRAIN_FIXED), "eval": (EvalConfig, EVAL_FIXED)}
# The shared groups, whose fields a `build:` section may also hold (as before they were groups).
SHARED = (EngineSettings, SamplingSettings, SandboxSettings, ExecutorSettings, TaskFormatSettings)
_SHARED_NAMES = {name for cls in SHARED for name in cls.layout()}
# The build and train options the command line takes as flags (any other goes in the config file's sections).
BUILD_FLAGS = ("limit", "samples", "pairs_per_task", "reference_fallback", "max_rounds", "trajectories_per_task",
               "reviser")
TRAIN_FLAGS = ("lora", "max_steps", "epochs", "learning_rate", "batch_size", "max_length", "beta", "sft_weight",
               "focal_alpha", "gradient_accumulation_steps", "reward", "turns", "max_completion_length", "kl_coef")


@settings
class RefineConfig(Settings):
    tasks: str = setting("spider-dev", "Task source with train, validation and test splits (spider-dev, mbpp, a "
                         "Spider/BIRD folder).", path="input")
    mode: str = setting("pairs", "pairs: CodeLutra; trajectories: IterPref debug trajectories.", choices=MODES)
    method: str = setting("codelutra", "codelutra, dpo, sft, focal (with --mode trajectories), or grpo (online RL on "
                          "the train split: no build stage).", choices=METHODS)
    iterations: int = setting(3, "Iterations at most.", at_least=1, at_most=MAX_ITERATIONS)
    patience: int = setting(1, "Stop after this many iterations without a better validation score.", at_least=1)
    train_from: str = setting("current", "current: train the previous iteration's model on its own pairs; base: the "
                              "base model on all pairs so far.", choices=TRAIN_FROM)
    model: str = setting("smollm2-135m", "The base model.", path="input")
    out: str = setting("", "Folder for the loop's releases, models, evals and report (required).", shown="",
                       path="output-folder")
    name: str | None = setting(None, "Release name; iteration t is version 0.t.0.", shown="refine-<tasks>")
    seed: int = setting(0, "Seed of iteration 1's build and training (iteration t adds t-1).", at_least=0,
                        at_most=MAX_SEED - MAX_ITERATIONS)
    eval_limit: int = setting(0, "Grade only the first N tasks of validation and test.", shown="0 = all", at_least=0)
    store: str | None = setting(None, "Results store the evaluations are recorded in.", shown="results/results.duckdb",
                                path="output-file")
    push_to_hub: str | None = setting(None, "Push each iteration's release to this Hub dataset repo.",
                                      shown="")
    private: bool = setting(False, "With --push-to-hub: create the repo private.")
    resume: bool = setting(False, "Continue a killed run in --out, at the stage it was in.")
    engine: EngineSettings = group(EngineSettings)
    sampling: SamplingSettings = group(SamplingSettings)
    sandbox: SandboxSettings = group(SandboxSettings)
    where: ExecutorSettings = group(ExecutorSettings)
    task_format: TaskFormatSettings = group(TaskFormatSettings)
    build: dict = setting(factory=dict, option=False)  # any other `build` option (samples, limit, ...)
    train: dict = setting(factory=dict, option=False)  # any `train` option (lora, max_steps, epochs, ...)
    eval: dict = setting(factory=dict, option=False)  # any `eval` option, group fields included, for evaluations only

    def __post_init__(self) -> None:
        if not isinstance(self.build, dict):
            return  # validate() says so
        lifted = {k: v for k, v in self.build.items() if k in _SHARED_NAMES}
        if lifted:  # group fields in a `build:` section are the loop's own, shared with its evaluations
            self.build = {k: v for k, v in self.build.items() if k not in _SHARED_NAMES}
            for attr in ("engine", "sampling", "sandbox", "where", "task_format"):
                mine = {k: v for k, v in lifted.items() if k in type(getattr(self, attr)).layout()}
                if mine:
                    setattr(self, attr, dataclasses.replace(getattr(self, attr), **mine))

    @classmethod
    def file_values(cls, values: dict) -> dict:
        """Group fields in a config file's `build:` section are lifted before the flags apply, so a flag wins."""
        build = values.get("build")
        if not isinstance(build, dict):
            return values
        values = {**values, "build": {k: v for k, v in build.items() if k not in _SHARED_NAMES}}
        for key, value in build.items():
            if key in _SHARED_NAMES:
                values.setdefault(key, value)
        return values

    def check(self) -> None:
        if not self.out:
            raise UserError("--out is required: the folder the loop writes its releases, models and report to")
        if self.push_to_hub:
            from codelutra_data.builders.publish import check_repo_id

            check_repo_id(self.push_to_hub, "--push-to-hub")
        if self.method == "focal" and self.mode != "trajectories":
            raise UserError("--method focal trains on debug trajectories' focal pairs: add --mode trajectories")
        if self.method == "grpo":
            self._check_grpo()
        for section, (cls, fixed) in SECTIONS.items():
            options = getattr(self, section)
            unknown = sorted(str(k) for k in set(options) - set(cls.layout()))
            if unknown:
                raise UserError(f"unknown {section} option(s): {', '.join(unknown)}")
            taken = sorted(set(options) & fixed)
            if taken:
                raise UserError(f"{section} option(s) {', '.join(taken)} are set by refine itself")
        self._check_sections()

    def _check_grpo(self) -> None:
        if self.mode != "pairs":
            raise UserError("--method grpo has no build stage, so no --mode: it samples and is rewarded while training")
        if self.train_from != "current":
            raise UserError("--train-from base retrains the base on every release so far; grpo has no releases: each "
                            "iteration continues from the previous model (--train-from current)")
        if self.push_to_hub:
            raise UserError("--push-to-hub pushes each iteration's release; --method grpo builds none")
        others = sorted(set(self.build) - set(GRPO_FROM_BUILD))
        if others:
            raise UserError(f"--method grpo has no build stage: build option(s) {', '.join(others)} do not apply "
                            f"(limit and samples do: the train tasks used and GRPO's group size)")

    def _check_sections(self) -> None:
        """Each section's values checked now, as the stage's own configuration will check them, so a bad `train:`
        value is one line before the first build, not a failure after it. The paths are stand-ins: the loop
        makes them."""
        out = Path(self.out)
        stages = ((() if self.method == "grpo" else (("build", lambda: self.build_config(1, self.model, out, False)),))
                  + (("train", lambda: self.train_config(1, self.model, "release", out / "model")),
                     ("eval", lambda: self.eval_config("validation", self.model, out / "eval"))))
        for section, stage in stages:
            try:
                stage().validate()
            except UserError as exc:
                raise UserError(f"{section}: {exc}") from None

    @property
    def release_name(self) -> str:
        return self.name or re.sub(r"[^A-Za-z0-9._-]+", "-", f"refine-{source_name(self.tasks)}").strip("-")

    @staticmethod
    def version(t: int) -> str:
        """Iteration t's release version."""
        return f"0.{t}.0"

    def determining(self) -> dict:
        values = {k: v for k, v in self.flat().items() if k not in NOT_DETERMINING}
        values["eval"] = {k: v for k, v in self.eval.items() if k not in NOT_DETERMINING}
        return values

    # --------------------------------------------------------------------------- each stage's configuration
    def build_config(self, t: int, model: str, out: Path, resume: bool) -> BuildConfig:
        """Iteration t's build: the train split, sampled from `model`, into this loop's folders."""
        return BuildConfig(**{**self.build, "tasks": self.tasks, "mode": self.mode, "split": "train", "model": model,
                              "name": self.release_name, "version": self.version(t), "runs_dir": str(out / "runs"),
                              "releases_dir": str(out / "releases"), "seed": self.seed + t - 1, "resume": resume,
                              "engine": self.engine, "sampling": self.sampling, "sandbox": self.sandbox,
                              "where": self.where, "task_format": self.task_format})

    def train_config(self, t: int, model: str, data: str, out: Path) -> TrainConfig:
        options = dict(self.train)
        if options.get("lora"):
            options["merge"] = True  # the next iteration samples from it: a full model every backend loads
        if self.method == "grpo":
            return self._grpo_config(t, model, options, out)
        return TrainConfig(**{**options, "method": self.method, "data": data, "model": model, "out": str(out),
                              "seed": self.seed + t - 1})

    def _grpo_config(self, t: int, model: str, options: dict, out: Path) -> TrainConfig:
        """GRPO on the train split with the loop's sandbox, executor and sampling temperature; without --max-steps,
        one pass over the train tasks per iteration (a fixed budget: the same steps every iteration)."""
        for build_key, train_key in GRPO_FROM_BUILD.items():
            if build_key in self.build and train_key not in options:
                options[train_key] = self.build[build_key] or None  # limit 0: every task
        if options.get("max_steps", -1) == -1:
            options.setdefault("epochs", 1.0)
        options.setdefault("temperature", self.sampling.temperature)
        if self.engine.backend == "vllm":
            options.setdefault("use_vllm", True)  # the loop generates with vLLM: so does GRPO (TRL's colocated mode)
        return TrainConfig(**{**options, "method": "grpo", "tasks": self.tasks, "model": model, "out": str(out),
                              "seed": self.seed + t - 1, "sandbox": self.sandbox, "where": self.where})

    def eval_config(self, split: str, model: str, out: Path) -> EvalConfig:
        """A greedy evaluation on the same engine, sandbox and executor as the builds (the `eval:` section may
        override any of them)."""
        store = {"store": self.store} if self.store else {}
        return EvalConfig(**{**self.eval, **store, "suite": self.tasks, "split": split, "model": model,
                             "limit": self.eval_limit, "seed": self.seed, "out": str(out), "engine": self.engine,
                             "sandbox": self.sandbox, "where": self.where, "task_format": self.task_format})
