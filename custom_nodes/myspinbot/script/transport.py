"""Talking to the Ollama server: the client, one chat exchange (whole or streamed), and the
client's exceptions turned into :class:`~myspinbot.errors.ScriptWriterError`\\ s that say the fix.

``ollama`` and ``httpx`` are imported on first use only, so the pack loads without them.
"""

from __future__ import annotations

import os
import time
from typing import Any, Callable, Iterable

from ..errors import ScriptWriterError
from .reply import field
from .request import DEFAULT_HOST

CONNECT_TIMEOUT_S = 10.0
VERBATIM_HINT = "or set the node's mode to 'verbatim' to run without an LLM"

ClientFactory = Callable[[str, float], Any]
"""``(host, timeout seconds) -> client`` with the ``ollama.Client`` methods ``chat`` and ``list``."""


def ollama_client(host: str, timeout: float) -> Any:
    """The default client factory: ``ollama.Client`` for ``host``, waiting at most
    ``timeout`` seconds for a reply (and at most 10 s to connect). Raises
    ``ScriptWriterError`` ``ollama_not_installed`` without the ``ollama`` package."""
    try:
        import httpx
        import ollama
    except ImportError:
        raise ScriptWriterError(
            "the `ollama` Python package is not installed; fix: `pip install ollama` in ComfyUI's "
            f"Python environment and restart ComfyUI, {VERBATIM_HINT}",
            code="ollama_not_installed",
        ) from None
    return ollama.Client(host=host, timeout=httpx.Timeout(timeout, connect=min(timeout, CONNECT_TIMEOUT_S)))


def chat(client: Any, request: dict[str, Any], *, host: str, timeout: float,
         on_chunk: Callable[[int], None]) -> tuple[str, str | None]:
    """One ``client.chat(**request)``: the reply's text and its ``done_reason``. A streamed
    reply (``request["stream"]``) is read chunk by chunk, calling ``on_chunk(count)`` after each
    (an exception it raises, a cancel, propagates unchanged and closes the stream); reading
    stops after ``timeout`` seconds.

    Raises ``ScriptWriterError`` ``ollama_unreachable``, ``ollama_timeout``,
    ``ollama_model_missing`` or ``ollama_error``."""
    response_error = _ollama_response_error()
    cannot_connect, timed_out, broken = _httpx_errors()
    model = request["model"]
    deadline = time.monotonic() + timeout
    try:
        reply = client.chat(**request)
        return _read(reply, bool(request["stream"]), on_chunk, deadline)
    except response_error as err:
        raise _response_error(err, client, host, model) from None
    except cannot_connect as err:
        raise unreachable_error(host, f"{type(err).__name__}: {err}") from None
    except (TimeoutError, *timed_out):
        raise _timeout_error(host, timeout) from None
    except ConnectionError:  # how the ollama client reports httpx.ConnectError
        raise unreachable_error(host, "connection refused or host unknown") from None
    except broken as err:
        raise ScriptWriterError(
            f"the connection to the Ollama server at {host} broke during the request "
            f"({type(err).__name__}: {err}); fix: check the Ollama server log (it may have run "
            "out of memory or crashed) and run again",
            code="ollama_error",
        ) from None


def _read(reply: Any, stream: bool, on_chunk: Callable[[int], None], deadline: float) -> tuple[str, str | None]:
    """The reply's text and ``done_reason``, from one response or from streamed chunks;
    ``TimeoutError`` once ``deadline`` (``time.monotonic()``) is past."""
    if not stream:
        message = field(reply, "message")
        return field(message, "content") or "", field(reply, "done_reason")
    parts: list[str] = []
    done_reason = None
    chunks: Iterable[Any] = reply
    try:
        for count, chunk in enumerate(chunks, start=1):
            parts.append(field(field(chunk, "message"), "content") or "")
            if field(chunk, "done"):
                done_reason = field(chunk, "done_reason")
            on_chunk(count)
            if time.monotonic() > deadline:
                raise TimeoutError
    finally:
        close = getattr(chunks, "close", None)
        if callable(close):
            close()  # stops the HTTP stream, so Ollama stops generating
    return "".join(parts), done_reason


# --- errors -----------------------------------------------------------------------------

def _ollama_response_error() -> type[BaseException]:
    try:
        from ollama import ResponseError
    except ImportError:
        class ResponseError(Exception):  # never raised: stands in when ollama is missing
            pass
    return ResponseError


def _httpx_errors() -> tuple[tuple[type[BaseException], ...], tuple[type[BaseException], ...], tuple[type[BaseException], ...]]:
    """(cannot connect, timed out, broken connection) exception classes of httpx."""
    try:
        import httpx
    except ImportError:
        return (), (), ()
    return (httpx.ConnectError, httpx.ConnectTimeout), (httpx.TimeoutException,), (httpx.TransportError,)


def _host_note() -> str:
    env = os.environ.get("OLLAMA_HOST")
    if env and env.strip():
        return f"OLLAMA_HOST is set to {env.strip()!r}"
    return f"OLLAMA_HOST is not set, so the default {DEFAULT_HOST} is used"


def unreachable_error(host: str, reason: str) -> ScriptWriterError:
    """``ollama_unreachable`` for ``host``, saying how to start Ollama or point OLLAMA_HOST at it."""
    return ScriptWriterError(
        f"cannot reach the Ollama server at {host} ({reason}); fix: start it with `ollama serve` "
        f"(or open the Ollama app), or set OLLAMA_HOST to the address where it runs ({_host_note()}) "
        f"and restart ComfyUI; {VERBATIM_HINT}",
        code="ollama_unreachable",
    )


def _timeout_error(host: str, timeout: float) -> ScriptWriterError:
    return ScriptWriterError(
        f"the Ollama server at {host} did not finish the script within the timeout of {timeout:g} s; "
        "fix: raise the timeout (loading a large model the first time can take minutes), "
        "use a smaller model, or lower target_seconds",
        code="ollama_timeout",
    )


def _installed_models(client: Any) -> list[str] | None:
    """Names of the models on the server (``/api/tags``), or ``None`` when it does not answer."""
    try:
        listing = client.list()
    except Exception:  # best effort, only to word the error message
        return None
    names = []
    for model in field(listing, "models") or []:
        name = field(model, "model") or field(model, "name")
        if name:
            names.append(str(name))
    return names


def _response_error(err: BaseException, client: Any, host: str, model: str) -> ScriptWriterError:
    status = getattr(err, "status_code", -1)
    text = str(getattr(err, "error", err))
    lowered = text.lower()
    if status == 404 or ("not found" in lowered and "model" in lowered):
        installed = _installed_models(client)
        if installed is None and status == 404:
            return unreachable_error(
                host, "it answered 404 to /api/chat and /api/tags, so it does not look like an Ollama server"
            )
        listed = ""
        if installed is not None:
            shown = ", ".join(installed[:12]) + (", ..." if len(installed) > 12 else "")
            listed = f" (installed: {shown})" if installed else " (no model is installed there)"
        return ScriptWriterError(
            f"the model '{model}' is not on the Ollama server at {host}{listed}; "
            f"fix: run `ollama pull {model}`, or set the node's model to an installed one",
            code="ollama_model_missing",
        )
    where = f"HTTP {status}" if status and status > 0 else "in the reply"
    return ScriptWriterError(
        f"the Ollama server at {host} refused the request for model '{model}' ({where}): {text}; "
        "fix: check the Ollama server log (structured outputs with a JSON "
        "schema need Ollama 0.5 or newer: `ollama --version`)",
        code="ollama_error",
    )
