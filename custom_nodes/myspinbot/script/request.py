"""What one script depends on (:class:`ScriptSettings`) and the chat request built from it.

Pure: no network, no ``ollama`` import. The messages come from :mod:`.prompting`, the
structured-output schema from :mod:`.schema`.
"""

from __future__ import annotations

import numbers
import os
import re
from dataclasses import dataclass
from typing import Any

from ..errors import InvalidInputError
from .prompting import DEFAULT_LANGUAGE, DEFAULT_STYLE, KINDS, build_messages, default_num_predict, length_budget
from .schema import json_schema

DEFAULT_HOST = "http://127.0.0.1:11434"
DEFAULT_MODEL = "llama3.2"
DEFAULT_TIMEOUT_S = 300.0

_DURATION = re.compile(r"^-?(?:(?:\d+(?:\.\d*)?|\.\d+)(?:ns|us|µs|ms|s|m|h))+$")


@dataclass(frozen=True)
class ScriptSettings:
    """Everything one script depends on. ``host`` ``None`` means ``$OLLAMA_HOST``, else
    :data:`DEFAULT_HOST`. ``keep_alive``: seconds (0 = unload right after, negative = keep)
    or an Ollama duration string (``"5m"``). ``num_predict`` ``None`` = derived from
    ``target_seconds``. ``stream``: read the reply chunk by chunk (lets a caller cancel).
    ``kind``: what the stage description is for (:data:`~.prompting.KINDS`): ``talking_head``
    (the speaker in words) or ``scene`` (a text-to-image prompt for the scene pipeline)."""

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
    kind: str = "talking_head"


def resolve_host(host: str | None = None) -> str:
    """``host``, else ``$OLLAMA_HOST``, else :data:`DEFAULT_HOST`."""
    for candidate in (host, os.environ.get("OLLAMA_HOST")):
        if candidate and candidate.strip():
            return candidate.strip()
    return DEFAULT_HOST


def parse_keep_alive(value: int | float | str | None) -> int | float | str:
    """Ollama's ``keep_alive``: a number of seconds (``"300"`` → 300) or a duration string
    (``"5m"``, ``"1h30m"``, ``"-1"``); empty or ``None`` → 0. Raises ``InvalidInputError``
    for anything else."""
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


def check_settings(settings: ScriptSettings) -> None:
    """Raises ``InvalidInputError`` naming the first unusable setting (empty prompt or model,
    non-positive length or timeout, negative temperature, non-integer seed, unknown kind,
    num_predict < 1)."""
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
    if settings.kind not in KINDS:
        raise InvalidInputError(f"kind must be one of {', '.join(KINDS)}, got {settings.kind!r}")
    if settings.num_predict is not None and settings.num_predict < 1:
        raise InvalidInputError(f"num_predict must be at least 1, got {settings.num_predict}")


def chat_request(settings: ScriptSettings) -> dict[str, Any]:
    """The keyword arguments of the first ``Client.chat`` call for ``settings`` (``model``,
    ``messages``, ``format`` = the script's JSON Schema, ``options``, ``keep_alive``, ``stream``).
    Raises ``InvalidInputError`` for unusable settings."""
    check_settings(settings)
    budget = length_budget(settings.target_seconds, settings.language)
    num_predict = settings.num_predict or default_num_predict(budget)
    return {
        "model": settings.model.strip(),
        "messages": build_messages(settings.prompt, settings.style, settings.language, budget, settings.kind),
        "format": json_schema(),
        "options": {
            "temperature": float(settings.temperature),
            "seed": int(settings.seed),
            "num_predict": int(num_predict),
        },
        "keep_alive": parse_keep_alive(settings.keep_alive),
        "stream": bool(settings.stream),
    }
