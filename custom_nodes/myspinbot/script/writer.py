"""Writes a script with a local LLM served by Ollama (the ``ollama`` Python client).

One chat request asks for structured output: Ollama's ``format`` carries the JSON Schema of
:class:`~.schema.Script`, the reply is validated with pydantic, and an invalid or empty reply
is retried once with a correction message. ``keep_alive`` defaults to 0 so the model leaves
VRAM as soon as the script is written, before the GPU stages of a pipeline run. Every
failure is a :class:`~myspinbot.errors.ScriptWriterError` whose message ends with the fix.

The parts: :mod:`.request` (settings → chat request), :mod:`.transport` (the client, one
exchange, its errors), :mod:`.reply` (reply → :class:`Script`); this module holds the
attempt loop and keeps the names callers import from it.
No ComfyUI import; ``ollama`` (and ``httpx``) are imported on first use only.
"""

from __future__ import annotations

from typing import Callable

from ..errors import ScriptWriterError
from .prompting import correction_messages
from .reply import BadReply, parse_reply, read_script
from .request import (DEFAULT_HOST, DEFAULT_MODEL, DEFAULT_TIMEOUT_S, ScriptSettings, chat_request, parse_keep_alive,
                      resolve_host)
from .schema import Script
from .transport import (CONNECT_TIMEOUT_S, VERBATIM_HINT, ClientFactory, chat, ollama_client, unreachable_error)

MAX_ATTEMPTS = 2  # the first try and one retry

ProgressCallback = Callable[[int, int], None]
"""``on_progress(done, total)``: tokens read so far and the token limit."""

__all__ = [
    "CONNECT_TIMEOUT_S", "ClientFactory", "DEFAULT_HOST", "DEFAULT_MODEL", "DEFAULT_TIMEOUT_S", "MAX_ATTEMPTS",
    "ProgressCallback", "ScriptSettings", "VERBATIM_HINT", "chat_request", "ollama_client", "parse_keep_alive",
    "parse_reply", "resolve_host", "unreachable_error", "write_script",
]


def write_script(
    settings: ScriptSettings,
    *,
    client_factory: ClientFactory | None = None,
    on_progress: ProgressCallback | None = None,
) -> Script:
    """Write one script with the Ollama model ``settings.model``.

    ``client_factory(host, timeout)`` makes the client (default :func:`ollama_client`).
    ``on_progress(done, total)`` is called before each request and after each streamed
    chunk (``total`` = the token limit); an exception it raises (a cancel) stops the request
    and propagates unchanged.

    Raises ``InvalidInputError`` for unusable settings and ``ScriptWriterError`` with code
    ``ollama_not_installed``, ``ollama_unreachable``, ``ollama_model_missing``,
    ``ollama_timeout``, ``ollama_error``, ``script_truncated``, ``script_invalid_output`` or
    ``script_empty``."""
    request = chat_request(settings)
    host = resolve_host(settings.host)
    model = request["model"]
    total = request["options"]["num_predict"]
    timeout = float(settings.timeout)
    progress = on_progress or (lambda done, total_now: None)

    client = (client_factory or ollama_client)(host, timeout)
    try:
        messages = list(request["messages"])
        last: BadReply | None = None
        last_reply = ""
        for _attempt in range(MAX_ATTEMPTS):
            progress(0, total)
            content, done_reason = chat(client, {**request, "messages": messages}, host=host, timeout=timeout,
                                        on_chunk=lambda n: progress(min(n, total), total))
            if done_reason == "length":
                raise ScriptWriterError(
                    f"the model '{model}' stopped at the token limit (done_reason 'length', "
                    f"num_predict={total}) before the script was complete; fix: lower target_seconds "
                    f"(now {settings.target_seconds:g}), or use a model that keeps to the requested length",
                    code="script_truncated",
                )
            try:
                return read_script(content, settings.clean_narration)
            except BadReply as bad:
                last, last_reply = bad, content
                messages = messages + correction_messages(content, bad.problem)
        raise _no_script(model, last, last_reply)
    finally:
        close = getattr(client, "close", None)
        if callable(close):
            close()


def _no_script(model: str, last: BadReply | None, last_reply: str) -> ScriptWriterError:
    """The error after :data:`MAX_ATTEMPTS` unusable replies, the last being ``last``."""
    assert last is not None
    if last.kind == "empty":
        return ScriptWriterError(
            f"the model '{model}' returned an empty narration {MAX_ATTEMPTS} times ({last.problem}); "
            "fix: make the prompt say what the video is about, change the seed or the model, "
            f"{VERBATIM_HINT}",
            code="script_empty",
        )
    snippet = " ".join(last_reply.split())[:160]
    return ScriptWriterError(
        f"the model '{model}' gave no valid script JSON in {MAX_ATTEMPTS} attempts (last problem: "
        f"{last.problem}; the reply began {snippet!r}); fix: use a model that follows structured "
        "outputs (Ollama 0.5 or newer is needed for a JSON-schema `format`), lower the temperature, "
        f"change the seed, {VERBATIM_HINT}",
        code="script_invalid_output",
    )
