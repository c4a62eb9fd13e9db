"""Reading a JSON request body safely: bounded in bytes and nesting depth, numbers finite, text
valid Unicode. Every refusal is a 4xx ``ApiError``; nothing here can raise a ``RecursionError``.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

from aiohttp import web

from .api_errors import ApiError
from .settings import Settings, limit_details
from .uploads import raise_if_client_gone

# A JSON string (escapes included) and the brackets outside strings, for the depth scan.
_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_BRACKET = re.compile(rb"[\[\]{}]")
_OPEN = frozenset(b"[{")


async def read_json(request: web.Request, settings: Settings) -> Any:
    """The request's JSON body, checked by ``loads_checked``.

    Raises ``ApiError`` 413 ``body_too_large`` (over ``max_json_bytes``, read no further),
    400 ``client_disconnected`` when the client goes away mid-body, and ``loads_checked``'s errors."""
    limit = settings.max_json_bytes
    too_large = ApiError(413, "body_too_large", f"the JSON body is larger than {limit} bytes",
                         limit_details("max_json_bytes", limit))
    if request.content_length is not None and request.content_length > limit:
        raise too_large
    body = bytearray()
    try:
        async for chunk in request.content.iter_chunked(1 << 16):
            body += chunk
            if len(body) > limit:
                raise too_large
    except OSError as exc:
        raise_if_client_gone(request, exc)
        raise
    return loads_checked(bytes(body), settings.max_json_depth)


def loads_checked(text: bytes | str, max_depth: int) -> Any:
    """Parse JSON text whose arrays/objects nest at most ``max_depth`` deep (checked before parsing).

    Raises ``ApiError``: 400 ``body_too_deep`` (naming ``MYSPINBOT_MAX_JSON_DEPTH``); 400
    ``malformed_body`` for text that is not JSON (NaN and Infinity are not JSON) or holds a string
    that is not valid Unicode (a lone surrogate such as ``"\\ud800"``); 422 ``invalid_parameter``
    for a number too large to be finite (``1e309``). ``details.field`` is the dotted path of the value."""
    check_json_depth(text, max_depth)
    try:
        value = json.loads(text, parse_constant=_reject_constant)
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise ApiError(400, "malformed_body", f"the body is not valid JSON: {exc}") from None
    _check_values(value, "")
    return value


def check_json_depth(text: bytes | str, max_depth: int, field: str | None = None) -> None:
    """Raise 400 ``body_too_deep`` when arrays/objects in ``text`` nest deeper than ``max_depth``.

    A linear scan that stops at the first bracket past the limit: it neither parses nor recurses."""
    data = text.encode("utf-8", "surrogatepass") if isinstance(text, str) else text
    depth = 0
    for match in _BRACKET.finditer(_STRING.sub(b'""', data)):
        if match.group()[0] in _OPEN:
            depth += 1
            if depth > max_depth:
                where = f"'{field}'" if field else "the JSON body"
                raise ApiError(400, "body_too_deep", f"{where} nests deeper than {max_depth} levels",
                               limit_details("max_json_depth", max_depth, **({"field": field} if field else {})))
        else:
            depth = max(depth - 1, 0)


def _check_values(value: Any, path: str) -> None:
    """Refuse non-finite numbers and strings that are not valid Unicode (depth already bounded)."""
    if isinstance(value, float) and not math.isfinite(value):
        raise ApiError(422, "invalid_parameter", f"'{path or 'body'}' must be a finite number", {"field": path})
    if isinstance(value, str):
        _check_text(value, path)
    elif isinstance(value, dict):
        for key, item in value.items():
            _check_text(key, path)
            _check_values(item, f"{path}.{key}" if path else key)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _check_values(item, f"{path}[{index}]")


def _check_text(text: str, path: str) -> None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise ApiError(400, "malformed_body", f"'{path or 'body'}' holds a string that is not valid Unicode "
                       "(a lone surrogate escape such as \\ud800)", {"field": path}) from None


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")
