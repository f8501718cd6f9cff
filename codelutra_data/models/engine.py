"""The model engine: the settings that say how a model is run (one group, shared by build, eval and refine),
the lazily loaded backend every command samples through, and what a run reports about its generation."""

from __future__ import annotations

import dataclasses
import time

from codelutra_data.config import Settings, setting, settings
from codelutra_data.errors import UserError
from codelutra_data.models.base import Backend, Completion, SamplingParams
from codelutra_data.models.registry import BACKENDS, backend_class
from codelutra_data.records import Message


@settings(frozen=True)
class EngineSettings(Settings):
    """How a model is run; never what is built (a resumed build may change any of these but the backend)."""

    backend: str = setting("auto", "Model backend: transformers, ctranslate2 (fast CPU, float32), llamacpp (a .gguf "
                           "file on CPU), vllm (GPU), or openai (any OpenAI-compatible server).",
                           shown="auto: ctranslate2 on CPU, vllm on a GPU where installed, else transformers",
                           choices=("auto", *BACKENDS))
    base_url: str | None = setting(None, "openai backend: the server's API root, e.g. http://127.0.0.1:8000/v1.")
    api_key_env: str = setting("OPENAI_API_KEY", "openai backend: environment variable holding the API key (never "
                               "recorded).")
    concurrency: int = setting(8, "openai backend: requests in flight.", at_least=1, at_most=1024)
    request_timeout_s: float = setting(120.0, "openai backend: seconds per request before a retry.",
                                       flags=("--request-timeout",), above=0, at_most=24 * 3600)
    threads: int | None = setting(None, "CPU generation threads.",
                                  shown="OMP_NUM_THREADS, else the cores this process may use", at_least=1,
                                  at_most=4096)
    tensor_parallel_size: int = setting(1, "vllm backend: GPUs per model.", at_least=1, at_most=1024)
    batch_size: int | str = setting("auto", "Sequences generated per call: the chunk the run store keeps and a kill "
                                    "may lose. A seeded engine's samples repeat at the same size.",
                                    shown="auto: what the engine wants (32 on CPU, 512 transformers on a GPU, 1024 "
                                    "vllm, 4 x 8 x --concurrency openai)", choices=("auto",), at_least=1,
                                    at_most=65536)

    def check(self) -> None:
        if self.backend == "openai" and not self.base_url:
            raise UserError("--backend openai needs --base-url (e.g. http://127.0.0.1:8000/v1)")
        if self.base_url and not self.base_url.startswith(("http://", "https://")):
            raise UserError(f"base_url (--base-url) must be an http:// or https:// URL, got {self.base_url!r}")


def load_backend(name: str, model_spec: str, **engine: object) -> Backend:
    """A loaded backend by name for a model spec (bundled name, directory or Hub id; for `openai`, the name the
    server serves it under); `engine` takes any EngineSettings field."""
    settings_ = EngineSettings(backend=name, **engine)
    settings_.validate()
    cls = backend_class(name)
    return cls.load(model_spec, resolved(dataclasses.replace(settings_, backend=cls.name), cls)[0])


def resolved(engine: EngineSettings, cls: type) -> tuple[EngineSettings, dict]:
    """The engine with `--batch-size auto` replaced by the backend's own size here, and what was asked, used and
    why (stats and cards record it)."""
    if engine.batch_size != "auto":
        return engine, {"asked": engine.batch_size, "used": engine.batch_size, "why": "--batch-size"}
    size, why = cls.preferred_batch(engine)
    return dataclasses.replace(engine, batch_size=size), {"asked": "auto", "used": size, "why": why}


class LazyBackend:
    """A backend that loads its model on the first generate call: a resumed build whose samples are all
    stored never loads it. Its name and model reference (which key every sample) are known up front."""

    def __init__(self, model_spec: str, engine: EngineSettings, timing: dict | None = None):
        self.cls = backend_class(engine.backend)  # `auto` (backend and batch size) is resolved here, once
        self.engine, self.batch = resolved(dataclasses.replace(engine, backend=self.cls.name), self.cls)
        self.name: str = self.cls.name
        self.model_spec = model_spec
        self.ref = self.cls.model_ref(model_spec, self.engine)
        self.timing = timing if timing is not None else {}
        self.generated = {"completions": 0, "tokens": 0, "tokens_unreported": 0, "finished_by_length": 0}
        self._backend: Backend | None = None
        self._remote_version = ""

    @property
    def seeded(self) -> bool:
        return self.cls.seeded

    @property
    def version(self) -> str:
        return self._backend.version if self._backend is not None else self._remote_version

    @property
    def loaded(self) -> bool:
        return self._backend is not None or bool(self._remote_version)

    def generate(self, prompts: list[list[Message]], n: int, sampling: SamplingParams,
                 seed: int) -> list[list[Completion]]:
        if self._backend is None:
            t0 = time.monotonic()
            self._backend = self.cls.load(self.model_spec, self.engine)
            self.timing["model_load_s"] = self.timing.get("model_load_s", 0.0) + time.monotonic() - t0
        out = self._backend.generate(prompts, n, sampling, seed)
        self._count(out)
        return out

    def record_remote(self, out: list[list[Completion]], version: str) -> None:
        """Completions a replica of this backend made elsewhere (a Ray actor): counted here, so stats and
        samples read the same as a local run's."""
        self._remote_version = version
        self._count(out)

    def _count(self, out: list[list[Completion]]) -> None:
        for c in (c for row in out for c in row):
            self.generated["completions"] += 1
            self.generated["tokens" if c.tokens >= 0 else "tokens_unreported"] += max(c.tokens, 1)
            self.generated["finished_by_length"] += c.finish_reason == "length"


def generation_stats(backends: list[LazyBackend], versions: set[str], generation_s: float) -> dict:
    """What the build's stats and card say about generation: the engine (with `versions`, the engines that made
    samples resumed from the store), whether its sampling repeats under the seed, and the tokens/s of this run
    (none when every sample was resumed)."""
    made = {k: sum(b.generated[k] for b in backends) for k in backends[0].generated}
    engines = sorted({b.version for b in backends if b.loaded} | set(versions) - {""})
    return {
        "engine": ", ".join(engines) or backends[0].name,
        "exactness": backends[0].cls.exactness,
        "seeded_sampling": all(b.seeded for b in backends),
        "completions_generated": made["completions"],
        "tokens_generated": made["tokens"],
        "tokens_per_s": round(made["tokens"] / generation_s, 1) if made["tokens"] and generation_s > 0 else None,
        "finished_by_length": made["finished_by_length"],
        "batch_size": backends[0].batch["used"],
        "batch_size_chosen": backends[0].batch["why"],
    }
