"""The `openai` backend: any OpenAI-compatible chat-completions server (vLLM serve, SGLang, llama.cpp server,
hosted endpoints), e.g. a stronger model as the debug-trajectory reviser.

Standard library HTTP on purpose: the retry rules are ours (retry 429, 5xx, timeouts and dropped
connections with exponential backoff; never another 4xx), and the key must never reach a log, an error
message or a record, which is easiest to keep true in a hundred lines we can read.
"""

from __future__ import annotations

import json
import os
import random
import socket
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from codelutra_data.errors import UserError
from codelutra_data.models.base import Completion, SamplingParams
from codelutra_data.models.spec import ModelRef
from codelutra_data.records import Message

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
FENCE_REQUEST = "Reply with the complete code in one fenced code block."


@dataclass(frozen=True)
class ServerOptions:
    """Where the server is and how hard to try. `api_key_env` names the variable holding the key: the name is
    recorded, the key never is."""

    base_url: str
    api_key_env: str = "OPENAI_API_KEY"
    concurrency: int = 8
    timeout_s: float = 120.0
    retries: int = 4
    backoff_s: float = 1.0
    single_choice: bool = False  # one completion per request: exact token counts per sample, n spread over slots


class ServerError(UserError):
    """A request that failed for good: one line, never the key."""


def _continue_text(prefill: str, content: str) -> str:
    """Servers differ: vLLM's `continue_final_message` returns only the continuation, llama.cpp's assistant
    prefill returns the whole message. Either way the caller gets what follows the prefill."""
    return content[len(prefill):] if prefill and content.startswith(prefill) else content


def _cut_fenced(content: str) -> str:
    """In fenced mode the answer opens its own fence: drop that first line and keep up to the closing fence,
    so prefill + result reads like a continued answer."""
    text = content.lstrip()
    if text.startswith("```"):
        text = text.split("\n", 1)[1] if "\n" in text else ""
    end = text.find("```")
    return text if end < 0 else text[:end + 3]


PROMPTS_PER_SLOT = 4  # a chunk keeps every request slot busy for several requests, so slow answers overlap
MAX_BATCH = 4096


class OpenAIBackend:
    name = "openai"
    seeded = False  # up to the server: batching changes numerics
    exactness = "whatever the server runs (its weights, precision and batching are not checked here)"
    requires = None

    @classmethod
    def model_ref(cls, spec: str, engine) -> ModelRef:
        return ModelRef(spec=spec, path=(engine.base_url or "").rstrip("/"), model_id=spec, revision="served")

    @classmethod
    def load(cls, spec: str, engine) -> "OpenAIBackend":
        return cls(spec, ServerOptions(engine.base_url, engine.api_key_env, engine.concurrency,
                                       engine.request_timeout_s))

    @classmethod
    def preferred_batch(cls, engine) -> tuple[int, str]:
        size = min(MAX_BATCH, max(32, PROMPTS_PER_SLOT * 8 * engine.concurrency))
        return size, (f"openai: {PROMPTS_PER_SLOT} prompts x 8 samples per request slot x --concurrency "
                      f"{engine.concurrency} = {size} sequences per call (at most {MAX_BATCH}: what a kill may lose)")

    @classmethod
    def describe(cls) -> str:
        return "any OpenAI-compatible server: give --base-url and the key's variable (--api-key-env)"

    def __init__(self, model: str, options: ServerOptions):
        if not options.base_url.startswith(("http://", "https://")):
            raise UserError(f"--base-url must be an http(s) URL like http://127.0.0.1:8000/v1, got {options.base_url!r}")
        self.options = options
        self.ref = ModelRef(spec=model, path=options.base_url.rstrip("/"), model_id=model, revision="served")
        self._key = os.environ.get(options.api_key_env) or ""
        self.prefill_mode = "continued"  # becomes "fenced" for good once a server refuses a prefilled turn
        self.requests = 0
        self.version = "openai-compatible server"  # the server's build fingerprint is added once it answers

    # ---------------------------------------------------------------------------------------- HTTP
    def _post(self, body: dict) -> dict:
        url = f"{self.ref.path}/chat/completions"
        data = json.dumps(body).encode("utf-8")
        headers = {"Content-Type": "application/json"}
        if self._key:
            headers["Authorization"] = f"Bearer {self._key}"
        attempt = 0
        while True:
            self.requests += 1
            problem = ""
            try:
                request = urllib.request.Request(url, data=data, headers=headers, method="POST")
                with urllib.request.urlopen(request, timeout=self.options.timeout_s) as response:
                    return json.loads(response.read().decode("utf-8"))
            except urllib.error.HTTPError as exc:
                detail = self._error_detail(exc)
                if exc.code in (401, 403):
                    raise ServerError(f"the server at {self.ref.path} refused the request ({exc.code}: {detail}); "
                                      f"check the key in ${self.options.api_key_env}") from None
                if exc.code not in RETRY_STATUSES:
                    raise ServerError(f"the server at {self.ref.path} rejected the request ({exc.code}: {detail})") from None
                problem = f"HTTP {exc.code}"
            except (TimeoutError, socket.timeout):
                problem = f"no answer within {self.options.timeout_s:g} s"
            except (urllib.error.URLError, ConnectionError, OSError) as exc:
                reason = getattr(exc, "reason", exc)
                if isinstance(reason, (TimeoutError, socket.timeout)):
                    problem = f"no answer within {self.options.timeout_s:g} s"
                else:
                    problem = f"cannot connect ({str(reason).splitlines()[0][:120]})"
            except ValueError:
                problem = "the answer was not JSON"
            attempt += 1
            if attempt > self.options.retries:
                raise ServerError(f"the server at {self.ref.path} failed {attempt} times; last: {problem}")
            time.sleep(self.options.backoff_s * 2 ** (attempt - 1) * (0.5 + random.random()))

    def _error_detail(self, exc: urllib.error.HTTPError) -> str:
        try:
            body = json.loads(exc.read().decode("utf-8", "replace"))
            message = body.get("error", {}).get("message") if isinstance(body.get("error"), dict) else body.get("error")
            text = str(message or body.get("message") or body)
        except (ValueError, AttributeError, OSError):
            text = exc.reason or "no detail"
        if self._key:
            text = text.replace(self._key, "***")
        return " ".join(str(text).split())[:200]

    # ---------------------------------------------------------------------------------------- sampling
    def _body(self, messages: list[Message], n: int, sampling: SamplingParams, seed: int, fenced: bool) -> dict:
        body = {"model": self.ref.model_id, "n": n, "seed": seed, "max_tokens": sampling.max_new_tokens,
                "temperature": sampling.temperature, "top_p": sampling.top_p if sampling.temperature > 0 else 1.0}
        if fenced:
            body["messages"] = self._fenced(messages)
        else:
            body["messages"] = messages
            if sampling.stop:
                body["stop"] = list(sampling.stop)
            if messages and messages[-1]["role"] == "assistant":
                body.update(continue_final_message=True, add_generation_prompt=False)  # vLLM's names
        return body

    @staticmethod
    def _fenced(messages: list[Message]) -> list[Message]:
        """Without prefill: drop the opened assistant turn and ask for a fenced block instead."""
        chat = [dict(m) for m in messages if m is not messages[-1] or m["role"] != "assistant"]
        for m in reversed(chat):
            if m["role"] == "user":
                m["content"] = f"{m['content']}\n\n{FENCE_REQUEST}"
                break
        return chat

    def _completions(self, answer: dict, prefill: str, fenced: bool) -> list[Completion]:
        """Servers report tokens only as a total per request: exact for one choice, unknown (-1) for several."""
        if answer.get("system_fingerprint"):
            self.version = f"openai-compatible server ({answer['system_fingerprint']})"
        choices = sorted(answer.get("choices") or [], key=lambda c: c.get("index", 0))
        total = (answer.get("usage") or {}).get("completion_tokens")
        tokens = int(total) if len(choices) == 1 and isinstance(total, (int, float)) else -1
        out = []
        for choice in choices:
            content = (choice.get("message") or {}).get("content") or ""
            text = _cut_fenced(content) if fenced else _continue_text(prefill, content)
            stop = choice.get("stop_reason")  # vLLM names the stop string it met: keep it, as in-process backends do
            if not fenced and isinstance(stop, str) and stop and not text.endswith(stop):
                text += stop
            reason = "length" if choice.get("finish_reason") == "length" else "stop"
            out.append(Completion(text, tokens, reason, "fenced" if fenced else "continued"))
        return out

    def _complete(self, messages: list[Message], n: int, sampling: SamplingParams, seed: int) -> list[Completion]:
        prefill = messages[-1]["content"] if messages and messages[-1]["role"] == "assistant" else ""
        texts: list[Completion] = []
        request = 0
        while len(texts) < n:  # a server that ignores `n` answers once: ask again with the next seed
            want = 1 if self.options.single_choice else n - len(texts)
            fenced = self.prefill_mode == "fenced" and bool(prefill)
            try:
                answer = self._post(self._body(messages, want, sampling, seed + request, fenced))
            except ServerError as exc:
                if prefill and not fenced and "(400:" in str(exc):
                    self.prefill_mode = "fenced"  # this server does not continue an assistant turn
                    continue
                raise
            got = self._completions(answer, prefill, fenced)
            if not got:
                raise ServerError(f"the server at {self.ref.path} answered without choices")
            texts.extend(got[:want])
            request += 1
        return texts

    def generate(self, prompts: list[list[Message]], n: int, sampling: SamplingParams,
                 seed: int) -> list[list[Completion]]:
        """n completions per prompt, requests in parallel up to `concurrency`; each prompt gets its own seed
        (derived from the chunk's), so a rerun asks the server exactly the same questions."""
        with ThreadPoolExecutor(max_workers=max(1, self.options.concurrency)) as pool:
            if self.options.single_choice:  # sample j of prompt i asked on its own, with the seed it would get anyway
                futures = [[pool.submit(self._complete, p, 1, sampling, (seed + 1000 * i + j) % 2**31)
                            for j in range(n)] for i, p in enumerate(prompts)]
                return [[f.result()[0] for f in row] for row in futures]
            futures = [pool.submit(self._complete, p, n, sampling, (seed + 1000 * i) % 2**31)
                       for i, p in enumerate(prompts)]
            return [f.result() for f in futures]
