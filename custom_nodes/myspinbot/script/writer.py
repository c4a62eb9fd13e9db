"""Writes a script with a local LLM served by Ollama (the ``ollama`` Python client).

One chat request asks for structured output: Ollama's ``format`` carries the JSON Schema of
:class:`~.schema.Script`, the reply is validated with pydantic, and an invalid or empty reply
is retried once with a correction message. ``keep_alive`` defaults to 0 so the model leaves
VRAM as soon as the script is written, before the GPU stages of a pipeline run. Every
failure is a :class:`~myspinbot.errors.ScriptWriterError` whose message ends with the fix.

No ComfyUI import; ``ollama`` (and ``httpx``) are imported on first use only.
"""

from __future__ import annotations

import json
import numbers
import os
import re
import time
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Mapping

from pydantic import ValidationError

from ..errors import InvalidInputError, ScriptWriterError
from .prompting import (
    DEFAULT_LANGUAGE,
    DEFAULT_STYLE,
    build_messages,
    correction_messages,
    default_num_predict,
    length_budget,
)
from .schema import Script, json_schema
from .verbatim import clean_script

DEFAULT_HOST = "http://127.0.0.1:11434"
DEFAULT_MODEL = "llama3.2"
DEFAULT_TIMEOUT_S = 300.0
CONNECT_TIMEOUT_S = 10.0
MAX_ATTEMPTS = 2  # the first try and one retry
VERBATIM_HINT = "or set the node's mode to 'verbatim' to run without an LLM"

_DURATION = re.compile(r"^-?(?:(?:\d+(?:\.\d*)?|\.\d+)(?:ns|us|µs|ms|s|m|h))+$")
_FENCE = re.compile(r"^```[a-zA-Z]*\s*\n?(.*?)\n?```$", re.DOTALL)

ClientFactory = Callable[[str, float], Any]
ProgressCallback = Callable[[int, int], None]


@dataclass(frozen=True)
class ScriptSettings:
    """Everything one script depends on. ``host`` ``None`` means ``$OLLAMA_HOST``, else
    :data:`DEFAULT_HOST`. ``keep_alive``: seconds (0 = unload right after, negative = keep)
    or an Ollama duration string (``"5m"``). ``num_predict`` ``None`` = derived from
    ``target_seconds``. ``stream``: read the reply chunk by chunk (lets a caller cancel)."""

    prompt: str
    model: str = DEFAULT_MODEL
    style: str = DEFAULT_STYLE
    target_seconds: float = 30.0
    language: str = DEFAULT_LANGUAGE
    temperature: float = 0.8
    seed: int = 0
    keep_alive: int | float | str = 0
    timeout: float = DEFAULT_TIMEOUT_S
    host: str | None = None
    stream: bool = False
    num_predict: int | None = None
    clean_narration: bool = True


def resolve_host(host: str | None = None) -> str:
    """``host``, else ``$OLLAMA_HOST``, else :data:`DEFAULT_HOST`."""
    for candidate in (host, os.environ.get("OLLAMA_HOST")):
        if candidate and candidate.strip():
            return candidate.strip()
    return DEFAULT_HOST


def parse_keep_alive(value: int | float | str | None) -> int | float | str:
    """Ollama's ``keep_alive``: a number of seconds (``"300"`` → 300) or a duration string
    (``"5m"``, ``"1h30m"``, ``"-1"``); empty or ``None`` → 0."""
    if value is None:
        return 0
    if isinstance(value, bool):
        raise InvalidInputError(f"keep_alive must be seconds or a duration like '5m', not {value!r}")
    if isinstance(value, numbers.Real):
        return int(value) if float(value).is_integer() else float(value)
    text = str(value).strip()
    if not text:
        return 0
    try:
        number = float(text)
    except ValueError:
        if _DURATION.match(text):
            return text
        raise InvalidInputError(
            f"keep_alive {text!r} is neither seconds nor a duration; fix: use seconds "
            "(0 = unload right after the script, -1 = keep loaded) or a duration like '5m' or '1h'"
        ) from None
    return int(number) if number.is_integer() else number


def _check(settings: ScriptSettings) -> None:
    if not (settings.prompt or "").strip():
        raise InvalidInputError("the prompt is empty; fix: say what the video should be about")
    if not (settings.model or "").strip():
        raise InvalidInputError(f"no model given; fix: name an Ollama model, e.g. '{DEFAULT_MODEL}'")
    if not settings.target_seconds > 0:
        raise InvalidInputError(f"target_seconds must be above 0, got {settings.target_seconds}")
    if not settings.temperature >= 0:
        raise InvalidInputError(f"temperature must be 0 or more, got {settings.temperature}")
    if not settings.timeout > 0:
        raise InvalidInputError(f"timeout must be above 0 seconds, got {settings.timeout}")
    if isinstance(settings.seed, bool) or not isinstance(settings.seed, numbers.Integral):
        raise InvalidInputError(f"seed must be an integer, got {settings.seed!r}")
    if settings.num_predict is not None and settings.num_predict < 1:
        raise InvalidInputError(f"num_predict must be at least 1, got {settings.num_predict}")


def chat_request(settings: ScriptSettings) -> dict[str, Any]:
    """The keyword arguments of the first ``Client.chat`` call for ``settings``."""
    _check(settings)
    budget = length_budget(settings.target_seconds, settings.language)
    num_predict = settings.num_predict or default_num_predict(budget)
    return {
        "model": settings.model.strip(),
        "messages": build_messages(settings.prompt, settings.style, settings.language, budget),
        "format": json_schema(),
        "options": {
            "temperature": float(settings.temperature),
            "seed": int(settings.seed),
            "num_predict": int(num_predict),
        },
        "keep_alive": parse_keep_alive(settings.keep_alive),
        "stream": bool(settings.stream),
    }


def ollama_client(host: str, timeout: float) -> Any:
    """The default client factory: ``ollama.Client`` for ``host``, waiting at most
    ``timeout`` seconds for a reply (and at most 10 s to connect)."""
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


# --- reading replies --------------------------------------------------------------------

def _field(obj: Any, name: str) -> Any:
    if obj is None:
        return None
    if isinstance(obj, Mapping):
        return obj.get(name)
    return getattr(obj, name, None)


class _BadReply(Exception):
    def __init__(self, kind: str, problem: str):
        super().__init__(problem)
        self.kind = kind  # "empty" or "invalid"
        self.problem = problem


def parse_reply(content: str, *, clean: bool = True) -> Script:
    """Validate one reply's text as a :class:`Script` (a markdown code fence around the JSON
    is tolerated). Raises ``ScriptWriterError`` ``script_empty`` / ``script_invalid_output``."""
    try:
        return _parse(content, clean)
    except _BadReply as bad:
        code = "script_empty" if bad.kind == "empty" else "script_invalid_output"
        raise ScriptWriterError(bad.problem, code=code) from None


def _parse(content: str, clean: bool) -> Script:
    text = (content or "").strip()
    if not text:
        raise _BadReply("empty", "the reply was empty")
    fenced = _FENCE.match(text)
    if fenced:
        text = fenced.group(1).strip()
    try:
        data = json.loads(text)
    except json.JSONDecodeError as err:
        raise _BadReply("invalid", f"not valid JSON ({err.msg} at line {err.lineno} column {err.colno})") from None
    if not isinstance(data, dict):
        raise _BadReply("invalid", f"a JSON {type(data).__name__} instead of an object")
    try:
        script = Script.model_validate(data)
    except ValidationError as err:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'object'}: {e['msg']}" for e in err.errors()
        )
        raise _BadReply("invalid", f"the JSON does not match the script schema ({problems})") from None
    if clean:
        script = script.model_copy(update={"narration": clean_script(script.narration)})
    if not script.narration:
        raise _BadReply("empty", "the narration was empty")
    return script


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
    for model in _field(listing, "models") or []:
        name = _field(model, "model") or _field(model, "name")
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
        "fix: check the model name and the Ollama server log (structured outputs with a JSON "
        "schema need Ollama 0.5 or newer: `ollama --version`)",
        code="ollama_error",
    )


# --- the chat loop ----------------------------------------------------------------------

def _read(reply: Any, stream: bool, on_chunk: Callable[[int], None], deadline: float) -> tuple[str, str | None]:
    """The reply's text and ``done_reason``, from one response or from streamed chunks."""
    if not stream:
        message = _field(reply, "message")
        return _field(message, "content") or "", _field(reply, "done_reason")
    parts: list[str] = []
    done_reason = None
    chunks: Iterable[Any] = reply
    try:
        for count, chunk in enumerate(chunks, start=1):
            parts.append(_field(_field(chunk, "message"), "content") or "")
            if _field(chunk, "done"):
                done_reason = _field(chunk, "done_reason")
            on_chunk(count)
            if time.monotonic() > deadline:
                raise TimeoutError
    finally:
        close = getattr(chunks, "close", None)
        if callable(close):
            close()  # stops the HTTP stream, so Ollama stops generating
    return "".join(parts), done_reason


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
    progress = on_progress or (lambda done, total_now: None)
    ResponseError = _ollama_response_error()
    cannot_connect, timed_out, broken = _httpx_errors()

    client = (client_factory or ollama_client)(host, float(settings.timeout))
    try:
        messages = list(request["messages"])
        last: _BadReply | None = None
        last_reply = ""
        for _attempt in range(MAX_ATTEMPTS):
            progress(0, total)
            deadline = time.monotonic() + float(settings.timeout)
            try:
                reply = client.chat(**{**request, "messages": messages})
                content, done_reason = _read(
                    reply, request["stream"], lambda n: progress(min(n, total), total), deadline
                )
            except ResponseError as err:
                raise _response_error(err, client, host, model) from None
            except cannot_connect as err:
                raise unreachable_error(host, f"{type(err).__name__}: {err}") from None
            except (TimeoutError, *timed_out):
                raise _timeout_error(host, float(settings.timeout)) from None
            except ConnectionError:  # how the ollama client reports httpx.ConnectError
                raise unreachable_error(host, "connection refused or host unknown") from None
            except broken as err:
                raise ScriptWriterError(
                    f"the connection to the Ollama server at {host} broke during the request "
                    f"({type(err).__name__}: {err}); fix: check the Ollama server log (it may have run "
                    "out of memory or crashed) and run again",
                    code="ollama_error",
                ) from None

            if done_reason == "length":
                raise ScriptWriterError(
                    f"the model '{model}' stopped at the token limit (done_reason 'length', "
                    f"num_predict={total}) before the script was complete; fix: lower target_seconds "
                    f"(now {settings.target_seconds:g}), or use a model that keeps to the requested length",
                    code="script_truncated",
                )
            try:
                return _parse(content, settings.clean_narration)
            except _BadReply as bad:
                last, last_reply = bad, content
                messages = messages + correction_messages(content, bad.problem)

        assert last is not None
        if last.kind == "empty":
            raise ScriptWriterError(
                f"the model '{model}' returned an empty narration {MAX_ATTEMPTS} times ({last.problem}); "
                "fix: make the prompt say what the video is about, change the seed or the model, "
                f"{VERBATIM_HINT}",
                code="script_empty",
            )
        snippet = " ".join(last_reply.split())[:160]
        raise ScriptWriterError(
            f"the model '{model}' gave no valid script JSON in {MAX_ATTEMPTS} attempts (last problem: "
            f"{last.problem}; the reply began {snippet!r}); fix: use a model that follows structured "
            "outputs (Ollama 0.5 or newer is needed for a JSON-schema `format`), lower the temperature, "
            f"change the seed, {VERBATIM_HINT}",
            code="script_invalid_output",
        )
    finally:
        close = getattr(client, "close", None)
        if callable(close):
            close()
