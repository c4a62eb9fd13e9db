"""The route prefix of every ``/myspinbot`` route, defined here once (a leaf: imports nothing of the pack).

ComfyUI serves every route a pack registers a second time under ``/api`` (``API_MIRROR``);
``api_base`` gives the prefix a client used, so the URLs in a response point where it asked.
"""

from __future__ import annotations

PREFIX = "/myspinbot"
"""Every route of the pack starts with this."""
API_MIRROR = "/api"
"""ComfyUI's mirror of every route: ``/api/myspinbot/...`` serves what ``/myspinbot/...`` does."""


def api_base(path: str) -> str:
    """``/api/myspinbot`` for a request path under ComfyUI's ``/api`` mirror, else ``/myspinbot``."""
    return API_MIRROR + PREFIX if path.startswith(API_MIRROR + "/") else PREFIX


def unmirrored(path: str) -> str:
    """``path`` without ComfyUI's ``/api`` mirror prefix (``/api/myspinbot/jobs`` → ``/myspinbot/jobs``)."""
    return path[len(API_MIRROR):] if path.startswith(API_MIRROR + PREFIX) else path
