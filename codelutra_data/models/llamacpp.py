"""The `llamacpp` backend: a GGUF file served by llama.cpp's own server (the `xllamacpp` wheel, no compile) in a
child process on a free loopback port, sampled through our `openai` backend.

A separate process on purpose: llama.cpp's threads and memory stay out of ours, a crash in native code is a
clear error instead of a dead build, and the server is the same program users run with `llama-server`.
Continuous batching serves up to `slots` sequences at once. Q4/Q8 weights are not exact: greedy output can
differ from the float32 engines, which the card says. Sampling is seeded per request, but llama.cpp's numerics
depend on which requests share a batch, so only one-at-a-time requests reproduce exactly.
"""

from __future__ import annotations

import atexit
import importlib.util
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from codelutra_data.errors import UserError
from codelutra_data.machine import default_threads
from codelutra_data.models.base import Completion, SamplingParams
from codelutra_data.models.spec import BUNDLED, ModelRef
from codelutra_data.paths import cache_dir
from codelutra_data.records import Message, content_hash

_SERVER = r"""
import json, sys, xllamacpp
a = json.loads(sys.argv[1])
p = xllamacpp.CommonParams()
p.model.path = a["gguf"]
p.port = a["port"]
p.n_parallel = a["slots"]
p.n_ctx = a["ctx_per_slot"] * a["slots"]
p.cpuparams.n_threads = a["threads"]
p.cpuparams_batch.n_threads = a["threads"]
if a["api_key"]:
    p.api_keys = [a["api_key"]]
server = xllamacpp.Server(p)
print("ready", flush=True)
sys.stdin.read()  # serve until our parent closes stdin or dies
"""


def gguf_ref(spec: str) -> ModelRef:
    """A bundled name (its own GGUF, not the dequantized copy) or a path to a .gguf file."""
    if spec in BUNDLED:
        info = BUNDLED[spec]
        return ModelRef(spec, str(bundled_gguf(spec)), info["model_id"], info["revision"].replace("-dequantized", ""))
    path = Path(os.path.expanduser(spec))  # an unknown ~user stays as written
    if path.suffix != ".gguf" or not path.is_file():
        raise UserError(f"--backend llamacpp needs a .gguf file or a bundled name ({', '.join(BUNDLED)}), got {spec!r}")
    stat = path.stat()
    return ModelRef(spec, str(path.resolve()), path.stem, f"gguf-{content_hash(path.name, stat.st_size, int(stat.st_mtime))}")


def bundled_gguf(name: str) -> Path:
    """The bundled GGUF file: from the installed package, else extracted once into the cache."""
    from codelutra_data.models.spec import _find_gguf

    info = BUNDLED[name]
    spec = importlib.util.find_spec(info["module"])
    if spec is not None and spec.submodule_search_locations:
        candidate = Path(list(spec.submodule_search_locations)[0]) / info["gguf"]
        if candidate.exists():
            return candidate
    target = cache_dir() / "gguf" / info["gguf"]
    if not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        found = _find_gguf(info, target.parent / f".download-{os.getpid()}")
        os.replace(found, target)
    return target


class LlamaCppServer:
    """llama.cpp's HTTP server for one GGUF file, in a child process; `url` is its OpenAI base URL."""

    def __init__(self, gguf: str, threads: int, slots: int = 8, ctx_per_slot: int = 2048, api_key: str = "",
                 start_timeout_s: float = 120.0):
        from importlib.metadata import version

        if importlib.util.find_spec("xllamacpp") is None:
            raise UserError("the llamacpp backend needs xllamacpp: pip install 'codelutra-data[llamacpp]'")
        self.version = f"llama.cpp (xllamacpp {version('xllamacpp')})"
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        args = dict(gguf=gguf, port=port, slots=max(1, slots), ctx_per_slot=ctx_per_slot, threads=max(1, threads),
                    api_key=api_key)
        self.proc = subprocess.Popen([sys.executable, "-c", _SERVER, json.dumps(args)], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        atexit.register(self.close)
        self.url = f"http://127.0.0.1:{port}/v1"
        if "ready" not in (self.proc.stdout.readline() or ""):
            self.close()
            detail = [line for line in (self.proc.stderr.read() or "").splitlines() if line.strip()][-1:] or ["no output"]
            raise UserError(f"llama.cpp could not load {gguf}: {detail[0][:200]}")
        deadline = time.monotonic() + start_timeout_s
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=5) as r:
                    if json.loads(r.read()).get("status") == "ok":
                        break
            except OSError:
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.close()
                raise UserError(f"llama.cpp's server for {gguf} did not become ready")
            time.sleep(0.05)
        # Its log would flood ours; read it away so a full pipe never blocks the server.
        import threading

        threading.Thread(target=lambda: [None for _ in self.proc.stderr], daemon=True).start()

    def close(self) -> None:
        if self.proc.poll() is None:
            try:
                self.proc.stdin.close()
                self.proc.wait(timeout=20)
            except (OSError, subprocess.TimeoutExpired):
                self.proc.kill()
                self.proc.wait()

    def __enter__(self) -> "LlamaCppServer":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class LlamaCppBackend:
    name = "llamacpp"
    seeded = False  # batch composition changes llama.cpp's numerics
    exactness = "quantized GGUF weights: not exact, output differs from the float32 engines"
    requires = ("xllamacpp", "pip install 'codelutra-data[llamacpp]'")

    @classmethod
    def model_ref(cls, spec: str, engine) -> ModelRef:
        return gguf_ref(spec)

    @classmethod
    def load(cls, spec: str, engine) -> "LlamaCppBackend":
        return cls(spec, batch_size=engine.batch_size, threads=engine.threads)

    @classmethod
    def preferred_batch(cls, engine) -> tuple[int, str]:
        return 32, "llamacpp on CPU: 32 sequences per call over its 16 slots"

    @classmethod
    def describe(cls) -> str:
        from importlib.metadata import version

        return f"xllamacpp {version('xllamacpp')}: GGUF files on CPU through llama.cpp's server (quantized weights: not exact)"

    def __init__(self, spec: str, batch_size: int = 32, threads: int | None = None):
        from codelutra_data.models.openai_api import OpenAIBackend, ServerOptions

        self.ref = gguf_ref(spec)
        slots = max(1, min(batch_size, 16))
        self.server = LlamaCppServer(self.ref.path, threads or default_threads(), slots=slots)
        self.version = self.server.version
        self._client = OpenAIBackend(self.ref.model_id, ServerOptions(self.server.url, api_key_env="", concurrency=slots,
                                                                      timeout_s=600.0, retries=1, single_choice=True))

    def generate(self, prompts: list[list[Message]], n: int, sampling: SamplingParams,
                 seed: int) -> list[list[Completion]]:
        return self._client.generate(prompts, n, sampling, seed)

    def close(self) -> None:
        self.server.close()
