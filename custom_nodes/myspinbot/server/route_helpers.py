"""What every handler module of the pack shares: the JSON error wrapper and the API prefix a
request came in under."""

from __future__ import annotations

import functools
import logging
from typing import Awaitable, Callable

from aiohttp import web

from ..errors import DatabaseUnavailableError
from .api_errors import ApiError
from .urls import api_base as _base

log = logging.getLogger("myspinbot.routes")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
DB_RETRY_AFTER_S = 5
"""``Retry-After`` of a 503 ``database_unavailable``, seconds."""


def json_errors(handler: Handler) -> Handler:
    """Turn ``ApiError`` into its JSON envelope, an unreachable shared database into a 503
    ``database_unavailable`` (with ``Retry-After``) and any other exception into a 500 envelope
    (the traceback goes to the server log, never to the client)."""

    @functools.wraps(handler)
    async def wrapped(request: web.Request) -> web.StreamResponse:
        try:
            return await handler(request)
        except ApiError as err:
            return err.response()
        except DatabaseUnavailableError as err:
            return ApiError(503, err.code, err.message, headers={"Retry-After": str(DB_RETRY_AFTER_S)}).response()
        except web.HTTPException:
            raise
        except Exception:
            log.exception("myspinbot: %s %s failed", request.method, request.path)
            return ApiError(500, "internal_error", "the server failed to handle the request; see the ComfyUI log").response()

    return wrapped


def api_base(request: web.Request) -> str:
    """The API prefix the client used: ``/myspinbot``, or ``/api/myspinbot`` through ComfyUI's mirror."""
    return _base(request.path)
