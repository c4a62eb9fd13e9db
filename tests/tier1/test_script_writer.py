"""The Ollama script writer (myspinbot.script.write_script), through the real ``ollama``
Python client, against a server started by the test.

``OllamaStandIn`` below is a PROTOCOL STAND-IN, not Ollama: a small HTTP server on loopback
that speaks Ollama's documented ``POST /api/chat`` (non-streaming JSON and streaming NDJSON)
and ``GET /api/tags``, replies with scripted contents and records every request it gets, so
the tests check the exact bodies the writer sends. No test needs a real Ollama.
"""

from __future__ import annotations

import ast
import json
import socket
import subprocess
import sys
import threading
import time
from collections import deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from myspinbot.errors import InvalidInputError, ScriptWriterError, code_from_message
from myspinbot.script import (
    DEFAULT_HOST,
    Script,
    ScriptSettings,
    chat_request,
    json_schema,
    parse_keep_alive,
    resolve_host,
    write_script,
)

REPO = Path(__file__).resolve().parents[2]
GOOD = {
    "title": "Cooking at home",
    "narration": "Welcome to the channel. Today we cook a simple soup together.",
    "stage_description": "A smiling cook in a bright kitchen, framed from the chest up.",
    "mood": "cheerful",
}
GOOD_TEXT = json.dumps(GOOD)


# --- the protocol stand-in ----------------------------------------------------------------

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


@pytest.fixture
def ollama():
    stand_in = OllamaStandIn()
    stand_in.thread.start()
    yield stand_in
    stand_in.server.shutdown()
    stand_in.server.server_close()


@pytest.fixture
def closed_port_url():
    """A loopback address where nothing listens (a stand-in that is down)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def _settings(stand_in_url: str, **kw) -> ScriptSettings:
    return ScriptSettings(**{"prompt": "Welcome viewers to a home cooking channel.", "host": stand_in_url, **kw})


# --- the requests sent -------------------------------------------------------------------

def test_default_request_keep_alive_0_schema_in_format_options(ollama):
    script = write_script(_settings(ollama.url))

    assert script == Script(**GOOD)
    assert [(r["method"], r["path"]) for r in ollama.requests] == [("POST", "/api/chat")]
    body = ollama.chats()[0]
    assert body["model"] == "llama3.2"
    assert body["format"] == json_schema()
    assert body["format"]["required"] == ["title", "narration", "stage_description", "mood"]
    assert body["format"]["additionalProperties"] is False
    # the model leaves VRAM at once (the ollama client types keep_alive as float | str, so 0 goes out as 0.0)
    assert body["keep_alive"] == 0 and type(body["keep_alive"]) in (int, float)
    assert body["options"] == {"temperature": 0.8, "seed": 0, "num_predict": 550}  # 30 s -> 75 words
    assert body["stream"] is False
    assert [m["role"] for m in body["messages"]] == ["system", "user"]
    system, user = (m["content"] for m in body["messages"])
    assert "JSON" in system and "Warm, clear and concise" in system
    assert user.startswith("Welcome viewers to a home cooking channel.")
    assert "about 75 words" in user and "English" in user
    # what the test expects is exactly what chat_request() documents
    assert {k: v for k, v in body.items() if k != "tools"} == chat_request(_settings(ollama.url))


def test_settings_reach_the_wire(ollama):
    write_script(_settings(ollama.url, model="qwen2.5:3b", seed=1234, temperature=0.2, keep_alive="5m",
                           target_seconds=12, language="de", style="Dry humour.", num_predict=300))
    body = ollama.chats()[0]
    assert body["model"] == "qwen2.5:3b"
    assert body["options"] == {"temperature": 0.2, "seed": 1234, "num_predict": 300}
    assert body["keep_alive"] == "5m"
    assert "Dry humour." in body["messages"][0]["content"]
    assert "about 30 words" in body["messages"][1]["content"] and "German" in body["messages"][1]["content"]


def test_same_inputs_same_request_new_seed_only_changes_options_seed(ollama):
    write_script(_settings(ollama.url, seed=7))
    write_script(_settings(ollama.url, seed=7))
    write_script(_settings(ollama.url, seed=8))
    first, again, reseeded = ollama.chats()
    assert first == again
    assert reseeded["options"]["seed"] == 8
    assert {**reseeded, "options": {**reseeded["options"], "seed": 7}} == first


@pytest.mark.parametrize("given, sent", [("0", 0), ("", 0), ("300", 300), ("-1", -1), ("2.5", 2.5),
                                         ("1h30m", "1h30m"), (0, 0), (600, 600)])
def test_keep_alive_values(given, sent):
    assert parse_keep_alive(given) == sent
    assert type(parse_keep_alive(given)) is type(sent)


def test_keep_alive_nonsense_is_a_clear_input_error():
    with pytest.raises(InvalidInputError, match="duration like '5m'"):
        parse_keep_alive("soon")


def test_host_comes_from_OLLAMA_HOST_then_default(ollama, monkeypatch):
    monkeypatch.delenv("OLLAMA_HOST", raising=False)
    assert resolve_host(None) == DEFAULT_HOST == "http://127.0.0.1:11434"
    monkeypatch.setenv("OLLAMA_HOST", ollama.url)
    assert resolve_host(None) == ollama.url
    write_script(ScriptSettings(prompt="Hello"))
    assert len(ollama.chats()) == 1


def test_empty_prompt_is_an_input_error_and_sends_nothing(ollama):
    with pytest.raises(InvalidInputError, match="prompt is empty"):
        write_script(_settings(ollama.url, prompt="  \n"))
    assert ollama.requests == []


# --- replies ------------------------------------------------------------------------------

def test_invalid_json_once_then_valid_succeeds_on_the_retry(ollama):
    ollama.reply('{"title": "Cooking", "narration": "Welc').reply(GOOD_TEXT)
    assert write_script(_settings(ollama.url)) == Script(**GOOD)

    first, retry = ollama.chats()
    assert retry["messages"][:2] == first["messages"]
    assert retry["messages"][2] == {"role": "assistant", "content": '{"title": "Cooking", "narration": "Welc'}
    assert retry["messages"][3]["role"] == "user" and "not valid JSON" in retry["messages"][3]["content"]
    assert {k: retry[k] for k in ("model", "format", "options", "keep_alive", "stream")} == \
        {k: first[k] for k in ("model", "format", "options", "keep_alive", "stream")}


def test_invalid_json_twice_is_a_clear_error(ollama):
    ollama.reply("Sure! Here is your script: Welcome to the channel.").reply("I cannot do JSON, sorry.")
    with pytest.raises(ScriptWriterError) as caught:
        write_script(_settings(ollama.url))
    err = caught.value
    assert err.code == "script_invalid_output"
    assert code_from_message(str(err)) == "script_invalid_output"
    message = str(err)
    assert message.startswith("[script_invalid_output] ")
    assert "2 attempts" in message and "not valid JSON" in message and "I cannot do JSON" in message
    assert "fix:" in message and "verbatim" in message
    assert len(ollama.chats()) == 2  # one retry, no more


def test_json_not_matching_the_schema_twice_names_the_field(ollama):
    wrong = json.dumps({"title": "x", "stage_description": "y", "mood": "z"})
    ollama.reply(wrong).reply(wrong)
    with pytest.raises(ScriptWriterError, match=r"narration: Field required") as caught:
        write_script(_settings(ollama.url))
    assert caught.value.code == "script_invalid_output"


def test_empty_narration_twice_is_script_empty(ollama):
    empty = json.dumps({**GOOD, "narration": "  "})
    ollama.reply(empty).reply("")
    with pytest.raises(ScriptWriterError) as caught:
        write_script(_settings(ollama.url))
    assert caught.value.code == "script_empty"
    assert "fix:" in str(caught.value)
    assert len(ollama.chats()) == 2


def test_done_reason_length_is_a_truncation_error_without_retry(ollama):
    ollama.reply('{"title": "Cooking at home", "narration": "Welcome to the chan', done_reason="length")
    with pytest.raises(ScriptWriterError) as caught:
        write_script(_settings(ollama.url, target_seconds=20))
    err = caught.value
    assert err.code == "script_truncated"
    assert "done_reason 'length'" in str(err) and "num_predict=" in str(err)
    assert "fix: lower target_seconds (now 20)" in str(err)
    assert len(ollama.chats()) == 1


def test_code_fence_tolerated_and_narration_cleaned(ollama):
    reply = {**GOOD, "narration": "NARRATOR: Welcome [smiles] to the channel. (pause) Let's cook."}
    ollama.reply("```json\n" + json.dumps(reply) + "\n```")
    script = write_script(_settings(ollama.url))
    assert script.narration == "Welcome to the channel. Let's cook."
    assert script.title == GOOD["title"]


def test_script_json_round_trip(ollama):
    script = write_script(_settings(ollama.url))
    assert json.loads(script.to_json()) == GOOD
    assert list(json.loads(script.to_json())) == ["title", "narration", "stage_description", "mood"]


# --- streaming ----------------------------------------------------------------------------

def test_streaming_accumulates_chunks_and_reports_progress(ollama):
    ollama.chunk_chars = 5
    calls = []
    script = write_script(_settings(ollama.url, stream=True), on_progress=lambda d, t: calls.append((d, t)))
    assert script == Script(**GOOD)
    body = ollama.chats()[0]
    assert body["stream"] is True and body["keep_alive"] == 0 and body["format"] == json_schema()
    n_chunks = -(-len(GOOD_TEXT) // 5) + 1  # content pieces + the final done chunk
    assert calls[0] == (0, 550)
    assert [d for d, _ in calls[1:]] == list(range(1, n_chunks + 1))
    assert all(t == 550 for _, t in calls)


def test_streaming_retry_after_invalid_output(ollama):
    ollama.reply("{not json").reply(GOOD_TEXT)
    assert write_script(_settings(ollama.url, stream=True)) == Script(**GOOD)
    assert len(ollama.chats()) == 2


def test_streaming_truncation(ollama):
    ollama.reply('{"title": "Cook', done_reason="length")
    with pytest.raises(ScriptWriterError) as caught:
        write_script(_settings(ollama.url, stream=True))
    assert caught.value.code == "script_truncated"


def test_cancel_from_the_progress_callback_propagates_unchanged(ollama):
    class Cancelled(Exception):
        pass

    def on_progress(done, total):
        if done == 3:
            raise Cancelled

    with pytest.raises(Cancelled):
        write_script(_settings(ollama.url, stream=True), on_progress=on_progress)


# --- server errors ------------------------------------------------------------------------

@pytest.mark.parametrize("stream", [False, True])
def test_server_down_is_unreachable_with_the_fix(closed_port_url, monkeypatch, stream):
    monkeypatch.delenv("OLLAMA_HOST", raising=False)
    with pytest.raises(ScriptWriterError) as caught:
        write_script(_settings(closed_port_url, stream=stream, timeout=5))
    err = caught.value
    assert err.code == "ollama_unreachable"
    message = str(err)
    assert message.startswith("[ollama_unreachable] cannot reach the Ollama server at " + closed_port_url)
    assert "`ollama serve`" in message and "set OLLAMA_HOST" in message
    assert "OLLAMA_HOST is not set" in message


def test_unreachable_message_names_the_OLLAMA_HOST_in_use(closed_port_url, monkeypatch):
    monkeypatch.setenv("OLLAMA_HOST", closed_port_url)
    with pytest.raises(ScriptWriterError, match=r"OLLAMA_HOST is set to 'http://127\.0\.0\.1:\d+'") as caught:
        write_script(ScriptSettings(prompt="Hello", timeout=5))
    assert caught.value.code == "ollama_unreachable"


@pytest.mark.parametrize("stream", [False, True])
def test_model_not_pulled_says_ollama_pull(ollama, stream):
    with pytest.raises(ScriptWriterError) as caught:
        write_script(_settings(ollama.url, model="mistral", stream=stream))
    err = caught.value
    assert err.code == "ollama_model_missing"
    assert "fix: run `ollama pull mistral`" in str(err)
    assert "installed: llama3.2:latest, qwen2.5:3b" in str(err)  # read from /api/tags
    assert [(r["method"], r["path"]) for r in ollama.requests] == [("POST", "/api/chat"), ("GET", "/api/tags")]


def test_server_error_is_reported_with_its_text(ollama):
    ollama.fail(500, "model requires more system memory (5.6 GiB) than is available (2.1 GiB)")
    with pytest.raises(ScriptWriterError, match="requires more system memory") as caught:
        write_script(_settings(ollama.url))
    assert caught.value.code == "ollama_error"
    assert "HTTP 500" in str(caught.value)


def test_slow_server_is_a_timeout_error(ollama):
    ollama.reply(GOOD_TEXT, delay=3.0)
    started = time.monotonic()
    with pytest.raises(ScriptWriterError) as caught:
        write_script(_settings(ollama.url, timeout=0.5))
    assert caught.value.code == "ollama_timeout"
    assert "raise the timeout" in str(caught.value)
    assert time.monotonic() - started < 2.5


def test_ollama_package_missing_errors_only_when_run(ollama, monkeypatch):
    monkeypatch.setitem(sys.modules, "ollama", None)  # makes `import ollama` fail
    with pytest.raises(ScriptWriterError) as caught:
        write_script(_settings(ollama.url))
    assert caught.value.code == "ollama_not_installed"
    assert "pip install ollama" in str(caught.value)
    assert ollama.requests == []


def test_client_factory_gets_host_and_timeout(ollama):
    seen = []

    def factory(host, timeout):
        seen.append((host, timeout))
        from myspinbot.script import ollama_client
        return ollama_client(host, timeout)

    write_script(_settings(ollama.url, timeout=42), client_factory=factory)
    assert seen == [(ollama.url, 42.0)]


# --- loading without Ollama, and the node's caching contract -------------------------------

def test_importing_the_engine_does_not_import_ollama():
    code = "import sys, myspinbot.script; assert 'ollama' not in sys.modules and 'httpx' not in sys.modules; print('ok')"
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO / "custom_nodes", capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"


def test_node_is_thin_and_keeps_comfyui_input_caching():
    """Read without ComfyUI: the node defines no fingerprint (IS_CHANGED) and is not marked
    not-idempotent, so the same inputs reuse the cache and a new seed re-runs; its inputs
    match ``execute``; it does not import ``ollama`` itself."""
    source = (REPO / "custom_nodes/myspinbot/nodes/script_writer.py").read_text()
    tree = ast.parse(source)
    node = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "ScriptWriterOllama")
    methods = {f.name for f in node.body if isinstance(f, ast.FunctionDef)}
    assert methods == {"define_schema", "execute"}
    assert "fingerprint_inputs" not in source and "IS_CHANGED" not in source and "not_idempotent" not in source
    assert "import ollama" not in source
    assert 'node_id="MySpinBotScriptWriterOllama"' in source
    assert 'display_name="MySpinBot Script Writer (Ollama)"' in source
    assert 'category="MySpinBot/script"' in source

    inputs = [c.args[0].value for c in ast.walk(node) if isinstance(c, ast.Call)
              and isinstance(c.func, ast.Attribute) and c.func.attr == "Input"]
    execute = next(f for f in node.body if isinstance(f, ast.FunctionDef) and f.name == "execute")
    assert inputs == [a.arg for a in execute.args.args[1:]] == [
        "mode", "prompt", "style", "model", "target_seconds", "language", "temperature", "seed",
        "keep_alive", "timeout"]
    outputs = [c.args[0].value for c in ast.walk(node) if isinstance(c, ast.Call)
               and isinstance(c.func, ast.Attribute) and c.func.attr == "Output"]
    assert outputs == ["narration", "stage_description", "script_json"]
