"""The JSON error envelope of the job API: ``{"error": {"code", "message", "details"}}``
(``contract.base.Error``)."""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from .contract.base import error_body


class ApiError(Exception):
    """An error the API reports to the client with an HTTP status and a stable ``code``."""

    def __init__(self, status: int, code: str, message: str, details: dict[str, Any] | None = None,
                 headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.details = details or {}
        self.headers = headers or {}

    def envelope(self) -> dict[str, Any]:
        return error_body(self.code, self.message, self.details)

    def response(self) -> web.Response:
        return web.json_response(self.envelope(), status=self.status, headers=self.headers or None, dumps=_dumps)


def _dumps(obj: Any) -> str:
    text = json.dumps(obj, ensure_ascii=False)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate echoed from the request: escape it
        return json.dumps(obj)
    return text
