"""Protocol stand-in for an Ollama server, shared by tier-1 and tier-2 tests.

``OllamaStandIn`` is NOT Ollama: a small HTTP server on loopback that speaks Ollama's documented
``POST /api/chat`` (non-streaming JSON and streaming NDJSON) and ``GET /api/tags``, replies
with scripted contents and records every request it gets.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from collections import deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

GOOD = {
    "title": "Cooking at home",
    "narration": "Welcome to the channel. Today we cook a simple soup together.",
    "stage_description": "A smiling cook in a bright kitchen, framed from the chest up.",
    "mood": "cheerful",
}
GOOD_TEXT = json.dumps(GOOD)


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        # a client that hangs up mid-reply (cancel, timeout) is expected here
        if not isinstance(sys.exc_info()[1], (BrokenPipeError, ConnectionResetError)):
            super().handle_error(request, client_address)


class OllamaStandIn:
    """Protocol stand-in for an Ollama server (not Ollama itself): ``/api/chat`` and
    ``/api/tags`` as documented in Ollama's API reference. Chat replies are taken in order
    from ``replies`` (see :meth:`reply`, :meth:`fail`); requests are kept in ``requests``."""

    def __init__(self, models=("llama3.2:latest", "qwen2.5:3b")):
        self.models = list(models)
        self.replies: deque[dict] = deque()
        self.requests: list[dict] = []
        self.chunk_chars = 7
        self._lock = threading.Lock()
        stand_in = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # keep pytest output clean
                pass

            def do_GET(self):
                stand_in._record(self, None)
                if self.path == "/api/tags":
                    self._json(200, {"models": [stand_in._model_entry(m) for m in stand_in.models]})
                else:
                    self._json(404, {"error": "404 page not found"})

            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}")
                stand_in._record(self, body)
                if self.path != "/api/chat":
                    self._json(404, {"error": "404 page not found"})
                    return
                stand_in._chat(self, body)

            def _json(self, status, obj):
                data = json.dumps(obj).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json; charset=utf-8")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.Handler = Handler
        self.server = _QuietServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    # scripting the replies
    def reply(self, content: str, done_reason: str = "stop", delay: float = 0.0) -> "OllamaStandIn":
        self.replies.append({"content": content, "done_reason": done_reason, "delay": delay})
        return self

    def fail(self, status: int, error: str) -> "OllamaStandIn":
        self.replies.append({"status": status, "error": error})
        return self

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    def chats(self) -> list[dict]:
        return [r["body"] for r in self.requests if r["path"] == "/api/chat"]

    # internals
    def _record(self, handler, body):
        with self._lock:
            self.requests.append({"method": handler.command, "path": handler.path, "body": body})

    @staticmethod
    def _model_entry(name):
        return {
            "name": name, "model": name, "modified_at": "2025-01-01T00:00:00Z", "size": 2019393189,
            "digest": "a80c4f17acd5" + "0" * 52,
            "details": {"parent_model": "", "format": "gguf", "family": "llama", "families": ["llama"],
                        "parameter_size": "3.2B", "quantization_level": "Q4_K_M"},
        }

    def _has_model(self, name: str) -> bool:
        full = name if ":" in name else f"{name}:latest"
        return full in self.models

    def _chat(self, handler, body):
        if not self._has_model(body.get("model", "")):
            handler._json(404, {"error": f'model "{body.get("model")}" not found, try pulling it first'})
            return
        with self._lock:
            reply = self.replies.popleft() if self.replies else {"content": GOOD_TEXT, "done_reason": "stop"}
        if "status" in reply:
            handler._json(reply["status"], {"error": reply["error"]})
            return
        time.sleep(reply.get("delay", 0.0))
        base = {"model": body["model"], "created_at": "2025-01-01T00:00:00.000000Z"}
        final = {**base, "message": {"role": "assistant", "content": ""}, "done": True,
                 "done_reason": reply["done_reason"], "total_duration": 4883583458, "load_duration": 1334875,
                 "prompt_eval_count": 26, "prompt_eval_duration": 342546000, "eval_count": 282,
                 "eval_duration": 4535599000}
        if body.get("stream", True):  # Ollama streams unless told "stream": false
            handler.send_response(200)
            handler.send_header("Content-Type", "application/x-ndjson")
            handler.send_header("Transfer-Encoding", "chunked")
            handler.end_headers()
            text = reply["content"]
            pieces = [text[i:i + self.chunk_chars] for i in range(0, len(text), self.chunk_chars)]
            lines = [{**base, "message": {"role": "assistant", "content": p}, "done": False} for p in pieces]
            for obj in lines + [final]:
                data = json.dumps(obj).encode() + b"\n"
                handler.wfile.write(f"{len(data):X}\r\n".encode() + data + b"\r\n")
                handler.wfile.flush()
            handler.wfile.write(b"0\r\n\r\n")
        else:
            final["message"]["content"] = reply["content"]
            handler._json(200, final)


