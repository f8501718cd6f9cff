"""A deterministic OpenAI-compatible chat server on loopback: the same request always gets the same answers.

It stands in for a model whose outputs must not depend on the machine (floating point differs between CPUs),
so a whole build or evaluation can be pinned: each answer is picked by a hash of the conversation, the seed
and the choice's index from candidates written for the task in the prompt (SQL over the schema's tables,
Python over the function the tests call), most wrong, some broken, and, for the tasks whose reference solution
the server was given, that reference now and then (a model that sometimes gets it right or fixes its mistake)."""

from __future__ import annotations

import contextlib
import hashlib
import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable


def _sql_candidates(text: str) -> list[str]:
    tables = re.findall(r'CREATE TABLE "?(\w+)"?', text) or ["t"]
    question = text.rsplit("Question:", 1)[-1].lower()
    tables.sort(key=lambda t: t.lower().rstrip("s") not in question)  # tables the question names first
    first, second = tables[0], tables[-1]
    return [f"SELECT count(*) FROM {first}"] * 3 + [
        f"SELECT * FROM {first}", f"SELECT count(*) FROM {first} WHERE", f"SELECT no_such_column FROM {first}",
        f"SELECT count(*) FROM {first} GROUP BY 1", f"SELECT count(*) FROM {second}", f"SELECT max(1) FROM {second}"]


def _python_candidates(text: str) -> list[str]:
    names = re.findall(r"assert\s+(?:not\s+)?\(?\s*(\w+)\(", text)
    name = names[0] if names else "solution"
    return [f"def {name}(*args):\n    return None", f"def {name}(*args):\n    return args[0]",
            f"def {name}(*args):\n    return len(args[0])", f"def {name}(*args):\n    return sorted(args[0])",
            f"def {name}(*args)\n    return 1", f"def {name}(*args):\n    return True",
            f"def {name}(*args):\n    return undefined_name"]


def answer(messages: list[dict], seed: int, index: int, references: dict[str, str]) -> str:
    """The continuation of the opened code fence for one choice."""
    text = "\n".join(m.get("content", "") for m in messages)
    candidates = _sql_candidates(text) if "```sql" in text else _python_candidates(text)
    task = next((m["content"] for m in messages if m["role"] == "user"), "")
    if task in references:
        candidates += [references[task]] * 2
    blob = json.dumps([messages, seed, index], sort_keys=True).encode()
    pick = int(hashlib.sha256(blob).hexdigest(), 16) % len(candidates)
    return candidates[pick] + "\n```"


def greedy(body: dict) -> bool:
    """An evaluation's request (temperature 0), as opposed to a build's samples."""
    return not body.get("temperature")


def revision_round(body: dict) -> int:
    """Which attempt of a debug trajectory a request asks for: each revision adds one user message (feedback)."""
    return sum(m.get("role") == "user" for m in body["messages"]) - 1


class _Handler(BaseHTTPRequestHandler):
    references: dict[str, str] = {}
    gate: threading.Event | None = None
    hold: Callable[[dict], bool] = staticmethod(greedy)

    def log_message(self, *args) -> None:
        pass

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        if self.gate is not None and self.hold(body):
            self.gate.wait()  # a request the test wants held waits while the gate is closed
        n, seed = int(body.get("n", 1)), int(body.get("seed", 0))
        choices = [{"index": i, "finish_reason": "stop",
                    "message": {"role": "assistant", "content": answer(body["messages"], seed, i, self.references)}} for i in range(n)]
        tokens = sum(len(c["message"]["content"].split()) for c in choices)
        data = json.dumps({"id": "answer", "object": "chat.completion", "model": body.get("model", ""),
                           "choices": choices, "usage": {"completion_tokens": tokens}}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


class _Server(ThreadingHTTPServer):
    def handle_error(self, request, client_address) -> None:
        pass  # a client killed mid-request (the kill tests) is expected, not news


@contextlib.contextmanager
def answer_server(references: dict[str, str] | None = None, gate: threading.Event | None = None,
                  hold: Callable[[dict], bool] = greedy):
    """Yields the base URL (…/v1) of a running server; stops it afterwards. `references` maps a task's user
    message to its reference solution. With a `gate`, requests for which `hold(body)` is true (by default the
    greedy ones: evaluations) are answered only while it is set, so a test can hold a run at a chosen point
    for as long as it needs, on any machine."""
    handler = type("Handler", (_Handler,), {"references": dict(references or {}), "gate": gate,
                                            "hold": staticmethod(hold)})
    server = _Server(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    finally:
        if gate is not None:
            gate.set()  # let held requests finish so the server can close
        server.shutdown()
        server.server_close()
