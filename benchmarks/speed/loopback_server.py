"""An OpenAI-compatible chat server on loopback for the speed scripts: it answers every request with the task's
reference solution (or a wrong program for the others) after a fixed delay, so generation costs what the script
says (nothing, or a remote GPU's latency) and the rest of the pipeline is what is measured."""

from __future__ import annotations

import contextlib
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Iterator


class _Handler(BaseHTTPRequestHandler):
    answers: dict[str, str] = {}
    delay_s: float = 0.0
    protocol_version = "HTTP/1.1"

    def log_message(self, *args) -> None:
        pass

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        if self.delay_s:
            time.sleep(self.delay_s)
        task = next((m["content"] for m in body["messages"] if m["role"] == "user"), "")
        code = self.answers.get(task, "SELECT 1" if "```sql" in json.dumps(body["messages"]) else "x = 1")
        choices = [{"index": i, "finish_reason": "stop",
                    "message": {"role": "assistant", "content": (code if i % 2 == 0 else code + "\n# variant")
                                + "\n```"}} for i in range(int(body.get("n", 1)))]
        data = json.dumps({"id": "loopback", "object": "chat.completion", "model": body.get("model", ""),
                           "choices": choices, "usage": {"completion_tokens": 16 * len(choices)}}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


@contextlib.contextmanager
def loopback_server(answers: dict[str, str], delay_s: float = 0.0) -> Iterator[str]:
    """The base URL (.../v1) of a server answering each task's user message with `answers[message]` after
    `delay_s` seconds; stopped on exit."""
    handler = type("Handler", (_Handler,), {"answers": dict(answers), "delay_s": delay_s})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    finally:
        server.shutdown()
        server.server_close()
