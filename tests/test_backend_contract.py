"""One contract, every backend that can run here, on the real bundled model: batched prompts with n samples,
the opened assistant turn continued, stop strings, token counts and finish reasons, greedy determinism,
seeded sampling where the backend says it is seeded, and an engine version for the records."""

from __future__ import annotations

import importlib.util
import subprocess
import sys

import pytest

from codelutra_data.models.base import Completion, SamplingParams
from codelutra_data.models.engine import load_backend

PROMPTS = [[{"role": "system", "content": "You write SQLite queries. Answer with one query in a sql code block."},
            {"role": "user", "content": q},
            {"role": "assistant", "content": "```sql\n"}]
           for q in ("List the names of all singers.", "How many concerts are there?",
                     "Show the name and age of the oldest singer.")]
SAMPLED = SamplingParams(0.8, 0.95, 24, stop=("```",))
GREEDY = SamplingParams(0.0, 1.0, 32, stop=("```",))
FOUR_TOKENS = SamplingParams(0.0, 1.0, 4)


@pytest.fixture(scope="module")
def llama_url():
    from llama_server import llama_server

    with llama_server() as url:
        yield url


def _backend(name: str, request):
    if name == "openai":
        return load_backend("openai", "smollm2-135m", base_url=request.getfixturevalue("llama_url"), concurrency=4)
    return load_backend(name, "smollm2-135m", batch_size=8, threads=1)


BACKENDS = ["transformers", "llamacpp", "openai", pytest.param("ctranslate2", marks=pytest.mark.slow)]


@pytest.mark.parametrize("name", BACKENDS)
def test_backend_contract(name, request):
    backend = _backend(name, request)
    try:
        check_contract(backend)
    finally:
        close = getattr(backend, "close", None)
        if close:
            close()


def check_contract(backend) -> None:
    """The contract itself, shared with the vLLM tests (which run in vLLM's own environment)."""
    out = backend.generate(PROMPTS, 2, SAMPLED, seed=5)
    assert [len(x) for x in out] == [2, 2, 2]
    for c in (c for x in out for c in x):
        assert isinstance(c, Completion) and c.prefill == "continued"
        # the opened fence was continued, not opened again (closing it at once, "```", is a model's right)
        assert c.text == "```" or not c.text.startswith("```")
        assert c.text.find("```") in (-1, len(c.text) - 3)  # nothing after a stop string
        assert c.finish_reason in ("stop", "length")
        if c.tokens != -1:
            assert 1 <= c.tokens <= SAMPLED.max_new_tokens
            assert c.finish_reason == "stop" or c.tokens == SAMPLED.max_new_tokens
    assert backend.version and backend.version.split()[0] in ("transformers", "ctranslate2", "llama.cpp", "vllm",
                                                              "openai-compatible")

    # One prompt at a time: a server's continuous batching changes numerics with the batch's composition.
    first = backend.generate(PROMPTS[:1], 1, GREEDY, seed=0)
    assert backend.generate(PROMPTS[:1], 1, GREEDY, seed=99) == first  # greedy ignores the seed
    # Whether a greedy answer closes its fence within the budget is the model's luck on this CPU: the stop
    # string itself is checked where answers are scripted (the openai backend against the answer server).
    for c in (c for x in backend.generate(PROMPTS, 1, GREEDY, seed=0) for c in x):
        assert c.finish_reason in ("stop", "length") and c.text.find("```") in (-1, len(c.text) - 3)

    short = backend.generate(PROMPTS[:1], 1, FOUR_TOKENS, seed=0)[0][0]
    assert short.finish_reason == "length" and short.tokens in (4, -1) and short.text

    if backend.seeded:
        again = backend.generate(PROMPTS, 2, SAMPLED, seed=5)
        assert again == out
        assert backend.generate(PROMPTS, 2, SAMPLED, seed=6) != out
    else:
        assert type(backend).seeded is False  # said, so builds and cards can say it


@pytest.mark.skipif(importlib.util.find_spec("vllm") is not None, reason="vllm is installed here")
def test_a_missing_engine_is_one_line_before_any_work(tmp_path):
    result = subprocess.run([sys.executable, "-m", "codelutra_data.cli", "build", "--backend", "vllm", "--limit", "1"],
                            cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert result.returncode == 2 and result.stderr.count("\n") == 1
    assert "vllm backend needs vllm" in result.stderr and "make test-vllm" in result.stderr
    assert list(tmp_path.iterdir()) == []  # nothing written
