"""`build`'s configuration: every option, its default, its help text and its rules; written whole into every
release (build_config.yaml) and, minus where and how the work ran, hashed into the build id."""

from __future__ import annotations

import re
from pathlib import Path

from codelutra_data.builders.executors import ExecutorSettings
from codelutra_data.builders.focal_pairs import REJECTED_RULES
from codelutra_data.builders.release import parse_version
from codelutra_data.builders.sampling import SamplingSettings
from codelutra_data.builders.tasks import source_name
from codelutra_data.builders.tasks.adapters import TaskFormatSettings
from codelutra_data.config import MAX_SEED, Settings, group, setting, settings
from codelutra_data.errors import UserError
from codelutra_data.models.engine import EngineSettings
from codelutra_data.sandboxes.settings import SandboxSettings

BUILD_MODES = ("pairs", "trajectories")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
# Options that do not change what is built, so a resumed run may differ in them.
NOT_DETERMINING = {"resume", "runs_dir", "releases_dir", "workers", "batch_size", "version", "name", "isolation",
                   "base_url", "api_key_env", "concurrency", "request_timeout_s", "threads", "tensor_parallel_size",
                   *ExecutorSettings.layout()}
# Options that only one mode reads: left out of the other mode's configuration (and its build id).
MODE_ONLY = {"pairs": {"samples", "pairs_per_task", "reference_fallback"},
             "trajectories": {"trajectories_per_task", "max_rounds", "reviser", "rejected", "max_error_lines",
                              "max_pair_tokens", "max_repeats"}}


@settings
class BuildConfig(Settings):
    """Everything that determines a build, and where and how it runs."""

    tasks: str = setting("spider-dev", "Task source: a name (spider-dev, mbpp, humaneval), a Spider/BIRD folder, a "
                         ".jsonl file or a Hub dataset hf:ORG/NAME[:CONFIG][@REVISION] (in any format --format "
                         "names).", path="input")
    task_format: TaskFormatSettings = group(TaskFormatSettings)
    decontaminate: str = setting("", "Drop tasks that share a 13-gram of their problem or reference with these suites "
                                 "(comma-separated: humaneval+,mbpp+,ds1000, a bundled name or any suite spec); "
                                 "every card reports the overlap with the suites readable here either way.",
                                 shown="")
    mode: str = setting("pairs", "pairs: CodeLutra pass/fail pairs from independent samples; trajectories: CodeFlow "
                        "debug trajectories and IterPref focal pairs.", choices=BUILD_MODES)
    split: str = setting("auto", "Split to use: train, test, validation, all, or auto (train if the source has one, "
                         "else all).")
    limit: int = setting(30, "Use the first N tasks; 0 = all.", at_least=0)
    samples: int = setting(8, "Samples per task (M).", at_least=1, at_most=10_000)
    pairs_per_task: int = setting(2, "Pairs per task (K).", at_least=1, at_most=10_000)
    seed: int = setting(0, "Seed for sampling and pairing.", at_least=0, at_most=MAX_SEED)
    model: str = setting("smollm2-135m", "Bundled name (smollm2-135m), a local directory, or a Hub id.", path="input")
    engine: EngineSettings = group(EngineSettings)
    tokenizer: str | None = setting(None, "trajectories: model spec whose tokenizer measures focal pairs.",
                                    shown="--model", path="input")
    sampling: SamplingSettings = group(SamplingSettings)
    sandbox: SandboxSettings = group(SandboxSettings)
    min_reference_pass_rate: float = setting(0.95, "Refuse a task source whose reference solutions pass less often; "
                                             "0 disables.", at_least=0, at_most=1)
    reference_fallback: bool = setting(False, "Use the gold answer as the chosen side when no sample is correct.",
                                       negatable=True)
    include_timeouts: bool = setting(False, "Allow timed-out samples as rejected answers (off: timeouts depend on the "
                                     "machine).", negatable=True)
    trajectories_per_task: int = setting(1, "trajectories: independent debug trajectories per task.", at_least=1,
                                         at_most=1000)
    max_rounds: int = setting(5, "trajectories: revisions after the first attempt.", at_least=0, at_most=100)
    reviser: str | None = setting(None, "trajectories: model spec that writes the fixes (e.g. a stronger model).",
                                  shown="--model", path="input")
    rejected: str = setting("random", "trajectories: which earlier failing attempt is the rejected side (random is "
                            "seeded).", choices=REJECTED_RULES)
    max_error_lines: int = setting(20, "trajectories: drop focal pairs with more error lines.", at_least=1)
    max_pair_tokens: int = setting(2048, "trajectories: drop focal pairs with a side longer than this many tokens.",
                                   at_least=1)
    max_repeats: int = setting(2, "trajectories: close a trajectory after this many resubmissions in a row.",
                               at_least=1)
    name: str | None = setting(None, "Release name.", shown="<source>-<model>, plus -trajectories in that mode")
    version: str | None = setting(None, "Release version (semver).", shown="next free patch, from 0.1.0")
    runs_dir: str = setting("runs", "Where run stores live.", path="output-folder")
    releases_dir: str = setting("releases", "Where releases are written.", path="output-folder")
    resume: bool = setting(False, "Continue an interrupted build of the same config.")
    where: ExecutorSettings = group(ExecutorSettings)

    def check(self) -> None:
        if self.version is not None and parse_version(self.version) is None:
            raise UserError(f"version {self.version!r} is not semver (MAJOR.MINOR.PATCH)")
        if self.name is not None and not _NAME.match(self.name):
            raise UserError(f"name {self.name!r} may use only letters, digits, '.', '_' and '-'")

    def relevant(self) -> dict:
        """The configuration without the other mode's options: what cards and build_config.yaml show."""
        other = MODE_ONLY["trajectories" if self.mode == "pairs" else "pairs"]
        return {k: v for k, v in self.flat().items() if k not in other}

    def determining(self) -> dict:
        return {k: v for k, v in self.relevant().items() if k not in NOT_DETERMINING
                and not (k == "sandbox_python" and v is None)}  # builds from before it keep their id

    @property
    def release_name(self) -> str:
        """The name given, else <source>-<model>, plus -trajectories in that mode."""
        if self.name:
            return self.name
        source = source_name(self.tasks)
        model = Path(self.model).name or self.model
        suffix = "-trajectories" if self.mode == "trajectories" else ""
        return re.sub(r"[^A-Za-z0-9._-]+", "-", f"{source}-{model}{suffix}").strip("-")
