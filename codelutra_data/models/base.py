"""The model backend interface: batched by design, so every backend can fill its hardware.

A backend class is also its own registry entry (`registry.py` lists them): on the class it says what it needs
installed, whether its output is exact, whether a call repeats under a seed, how it names a model spec, how it
loads itself from the engine settings, and what `doctor` says about it. Adding a backend is one module here
and one line in the registry.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import ClassVar, Protocol

from codelutra_data.models.spec import ModelRef, resolve
from codelutra_data.records import Message


@dataclass(frozen=True)
class SamplingParams:
    temperature: float = 0.8
    top_p: float = 0.95
    max_new_tokens: int = 128
    stop: tuple[str, ...] = ()

    def to_dict(self) -> dict:
        d = asdict(self)
        d["stop"] = list(self.stop)
        return d


@dataclass(frozen=True)
class GenerationWork:
    """One batched generate call, as an executor hands it to a backend here or to a replica elsewhere."""

    prompts: list[list[Message]]
    n: int
    sampling: SamplingParams
    seed: int


@dataclass(frozen=True)
class Completion:
    """One generated continuation, as every backend reports it. `tokens` counts what the engine generated for
    this sequence, its end token included (-1 where a server reports only a total for several choices);
    `finish_reason` is "stop" (end token or stop string) or "length" (the token budget ran out); `prefill` is
    "continued" when the prompt's opened assistant turn was continued, "fenced" when a server that cannot
    continue one was asked for a fenced block instead."""

    text: str
    tokens: int
    finish_reason: str
    prefill: str = "continued"


class Backend(Protocol):
    """A generation engine. The class attributes and class methods are its registry entry; `engine` is an
    `EngineSettings` (models/engine.py), passed in so that backends never import the settings module."""

    name: ClassVar[str]
    seeded: ClassVar[bool]  # whether a call repeated with the same seed returns the same samples (greedy always does)
    exactness: ClassVar[str]  # what cards say about its numerics
    requires: ClassVar[tuple[str, str] | None]  # (module it needs, how to install it), checked before any work
    ref: ModelRef
    version: str  # the engine and its version, recorded in every sample (e.g. "ctranslate2 4.8.5")

    @classmethod
    def model_ref(cls, spec: str, engine) -> ModelRef:
        """How samples name the model, known without loading it (a resumed build may never load it)."""
        ...

    @classmethod
    def load(cls, spec: str, engine) -> "Backend":
        ...

    @classmethod
    def preferred_batch(cls, engine) -> tuple[int, str]:
        """What `--batch-size auto` means for this engine here: (sequences per generate call, why), the why
        recorded in stats and cards."""
        ...

    @classmethod
    def describe(cls) -> str:
        """What `doctor` says when it is installed (raises ImportError when it cannot run here)."""
        ...

    def generate(self, prompts: list[list[Message]], n: int, sampling: SamplingParams,
                 seed: int) -> list[list[Completion]]:
        """For each chat prompt, `n` completions (the assistant's text only, chat end token removed). A prompt
        ending in an assistant message is continued (prefill); completions are cut after any `stop` string."""
        ...


class LocalWeights:
    """Base of the backends that load a model's weights in this process (a bundled name, a directory or a Hub id):
    samples name the model the same way whichever of them generated it."""

    @classmethod
    def model_ref(cls, spec: str, engine) -> ModelRef:
        return resolve(spec, prepare=False)
