"""Every backend, by name: the one list to extend when adding one (see ARCHITECTURE.md)."""

from __future__ import annotations

import importlib.util

from codelutra_data.errors import UserError
from codelutra_data.models.ct2 import CTranslate2Backend
from codelutra_data.models.hf import TransformersBackend
from codelutra_data.models.llamacpp import LlamaCppBackend
from codelutra_data.models.openai_api import OpenAIBackend
from codelutra_data.models.vllm_backend import VLLMBackend

BACKENDS: dict[str, type] = {cls.name: cls for cls in (TransformersBackend, CTranslate2Backend, LlamaCppBackend,
                                                       VLLMBackend, OpenAIBackend)}


def installed(cls: type) -> bool:
    return cls.requires is None or importlib.util.find_spec(cls.requires[0]) is not None


def default_backend() -> str:
    """What `--backend auto` (the default) means here: on CPU the fastest exact engine installed (CTranslate2
    float32, 1.5-2x transformers' tokens/s on the build's shape, greedy token-identical); on a GPU, vLLM
    where installed, else transformers."""
    try:
        import torch

        gpu = torch.cuda.is_available()
    except ImportError:
        gpu = False
    preferred = VLLMBackend if gpu else CTranslate2Backend
    return preferred.name if installed(preferred) else TransformersBackend.name


def resolve_backend(name: str) -> str:
    return default_backend() if name == "auto" else name


def backend_class(name: str) -> type:
    """The class for a backend name ("auto" resolved here); an unknown or uninstalled one is one line, before
    any work."""
    name = resolve_backend(name)
    if name not in BACKENDS:
        raise UserError(f"unknown backend {name!r}: available: auto, {', '.join(BACKENDS)}")
    cls = BACKENDS[name]
    if not installed(cls):
        module, hint = cls.requires
        raise UserError(f"the {name} backend needs {module}, which is not installed: {hint}")
    return cls


def backend_report() -> list[dict]:
    """Each backend with whether it can run on this machine, and why not, and which one `--backend auto` picks:
    what `doctor` prints."""
    auto = default_backend()
    rows = []
    for name, cls in BACKENDS.items():
        if not installed(cls):
            rows.append({"name": name, "usable": False, "detail": f"not installed: {cls.requires[1]}"})
            continue
        try:
            rows.append({"name": name, "usable": True, "detail": cls.describe(), "auto": name == auto})
        except ImportError as exc:
            rows.append({"name": name, "usable": False, "detail": f"not installed ({exc})"})
    return rows
