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
import time
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
from ollama_standin import GOOD, GOOD_TEXT, OllamaStandIn


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


# --- the scene kind (the scene pipeline's stage description is a text-to-image prompt) ----------

def test_scene_kind_asks_for_a_text_to_image_stage_description(ollama):
    script = write_script(_settings(ollama.url, kind="scene"))
    assert script == Script(**GOOD)  # the same four fields come back: narration + stage description
    body = ollama.chats()[0]
    assert body["format"] == json_schema()
    system = body["messages"][0]["content"]
    assert "text-to-image prompt" in system and "facing the camera" in system
    talking = chat_request(_settings(ollama.url))["messages"][0]["content"]
    assert "text-to-image" not in talking and "setting, framing and gestures" in talking
    # only the stage description's instruction differs
    assert system.split('"stage_description"')[0] == talking.split('"stage_description"')[0]


def test_unknown_kind_is_an_input_error_and_sends_nothing(ollama):
    with pytest.raises(InvalidInputError, match="kind must be one of talking_head, scene"):
        write_script(_settings(ollama.url, kind="poem"))
    assert ollama.requests == []
