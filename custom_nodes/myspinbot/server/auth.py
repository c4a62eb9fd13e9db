"""Who may call the job API: a bearer token (or the session cookie the page sets from it), and
the checks that keep a browser page elsewhere from driving a loopback ComfyUI.

- Off loopback (``--listen 0.0.0.0``, a LAN address, ...) every request needs the token.
- On loopback the token is optional, but a request without one must name a loopback host in
  ``Host`` (``127.0.0.0/8``, ``[::1]``, ``localhost``, with a port): a web page whose name was
  rebound to 127.0.0.1 (DNS rebinding) sends its own name there and is refused. It also needs
  the token when ComfyUI runs with ``--enable-cors-header`` (core then skips its origin check)
  and when it comes from an opaque origin (``Origin: null``) without Fetch-Metadata headers.
- A wrong token in ``Authorization`` is refused everywhere; a stale cookie is ignored.

The token itself (generation, file) is ``api_token.py``; the middleware is ``guard.py``.
"""

from __future__ import annotations

import hmac
import ipaddress
import logging
from typing import Iterable, Mapping

from aiohttp import web

from .api_errors import ApiError
from .api_token import TOKEN_ENV, ApiToken, digest, load_token, token_path  # noqa: F401 (re-exported)

log = logging.getLogger("myspinbot.auth")

REALM = "myspinbot"
COOKIE = "myspinbot_token"
"""The session cookie ``POST /myspinbot/session`` sets (HttpOnly, SameSite=Strict, Path=/)."""


# --- where ComfyUI listens -------------------------------------------------------------------

def listen_addresses(listen: str | Iterable[str] | None) -> list[str]:
    """``--listen`` as ComfyUI takes it (one address or a comma-separated list) → the addresses."""
    if listen is None:
        return []
    parts = listen.split(",") if isinstance(listen, str) else [p for item in listen for p in str(item).split(",")]
    return [p.strip() for p in parts if p.strip()]


def is_loopback_listen(listen: str | Iterable[str] | None) -> bool:
    """True when every address ComfyUI listens on is a loopback address (``127.0.0.0/8``, ``::1``,
    ``localhost``). No address at all means ComfyUI's default, 127.0.0.1. Anything else (a LAN
    address, ``0.0.0.0``, ``::``, a host name) counts as reachable from outside."""
    addresses = listen_addresses(listen)
    if not addresses:
        return True
    return all(is_loopback_name(a) for a in addresses)


def is_loopback_name(address: str) -> bool:
    """A loopback address written as an IP address or ``localhost`` (no port). Short or numeric
    forms such as ``127.1`` or ``2130706433`` are not addresses here: they count as names."""
    host = address.strip("[]").split("%", 1)[0]  # "[::1]", "fe80::1%eth0"
    if host.lower() in ("localhost", "localhost."):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a host name: it may resolve to anything


def host_without_port(host: str) -> str:
    """``Host`` header → the name or address alone: ``[::1]:8188`` → ``::1``, ``a.b:80`` → ``a.b``."""
    host = host.strip()
    if host.startswith("["):
        return host[1:host.find("]")] if "]" in host else host
    name, sep, port = host.rpartition(":")
    if sep and name and ":" not in name and port.isdigit():
        return name
    return host


def loopback_host(request: web.Request) -> bool:
    """True when the request's ``Host`` header names a loopback address or ``localhost``."""
    raw = request.headers.get("Host")
    return bool(raw) and is_loopback_name(host_without_port(raw))


# --- checking requests -----------------------------------------------------------------------

class ApiAuth:
    """The token check. ``required``: every request needs the token (ComfyUI listens beyond
    loopback). ``cors``: ComfyUI sends CORS headers (``--enable-cors-header``), so a browser page
    anywhere may read responses: the token is required then too."""

    def __init__(self, token: ApiToken | str, *, required: bool, cors: bool = False):
        self.token = token if isinstance(token, ApiToken) else ApiToken(token, "given")
        self.required = required
        self.cors = cors
        self._digest = digest(self.token.value)

    @classmethod
    def for_listen(cls, token: ApiToken | str, listen: str | Iterable[str] | None, *, cors: bool = False) -> "ApiAuth":
        return cls(token, required=not is_loopback_listen(listen), cors=cors)

    def matches(self, presented: str) -> bool:
        """Constant-time: both sides are hashed first, so neither content nor length leaks."""
        return hmac.compare_digest(digest(presented), self._digest)

    def authenticated(self, request: web.Request) -> bool:
        """True when the request carries the right token (header or cookie). Raises 401 for an
        ``Authorization`` header that is present but wrong or malformed."""
        header = request.headers.get("Authorization")
        if header is not None:
            scheme, _, presented = header.strip().partition(" ")
            presented = presented.strip()
            if scheme.lower() != "bearer" or not presented or not self.matches(presented):
                log.debug("myspinbot: refused %s %s from %s: invalid token", request.method, request.path, request.remote)
                raise unauthorized("the bearer token is not valid", "invalid_token")
            return True
        cookie = request.cookies.get(COOKIE)
        return bool(cookie) and self.matches(cookie)

    def authorize(self, request: web.Request) -> None:
        """Return if the request may pass; raise ``ApiError`` 401 ``unauthorized`` if not
        (``details.reason`` says why: ``missing_token``, ``invalid_token``, ``host_not_loopback``,
        ``cors_enabled``, ``opaque_origin``)."""
        if self.authenticated(request):
            return
        why = self.why_token_needed(request)
        if why is not None:
            raise unauthorized(*why)

    def why_token_needed(self, request: web.Request) -> tuple[str, str] | None:
        """(message, reason) when a request without a token must be refused, else None."""
        if self.required:
            return "this server requires a bearer token: send 'Authorization: Bearer <token>'", "missing_token"
        if not loopback_host(request):
            return ("a request without the token must name a loopback host (127.0.0.1, [::1], localhost); "
                    "send 'Authorization: Bearer <token>'", "host_not_loopback")
        if self.cors:
            return "ComfyUI sends CORS headers (--enable-cors-header): send the bearer token", "cors_enabled"
        if opaque_origin(request.headers):
            return "a request from an opaque origin needs the bearer token", "opaque_origin"
        return None


def opaque_origin(headers: Mapping[str, str]) -> bool:
    """``Origin: null`` (a sandboxed frame, a file, a redirect chain) from a client that sends no
    Fetch-Metadata headers, so nothing says the request is the page's own."""
    return headers.get("Origin", "").strip().lower() == "null" and "Sec-Fetch-Site" not in headers


def unauthorized(message: str, reason: str) -> ApiError:
    challenge = f'Bearer realm="{REALM}"' + (', error="invalid_token"' if reason == "invalid_token" else "")
    return ApiError(401, "unauthorized", message, {"reason": reason}, headers={"WWW-Authenticate": challenge})


# --- path parameters -------------------------------------------------------------------------

def check_path_params(match_info: Mapping[str, str]) -> None:
    """Refuse (400 ``invalid_path_parameter``) a path parameter that could name a file elsewhere:
    separators (``/``, ``\\``, also when they arrived percent-encoded), ``..``, a drive or
    scheme colon, control characters. Handlers check their own formats on top of this."""
    for name, value in match_info.items():
        if not _safe_segment(value):
            raise ApiError(400, "invalid_path_parameter", f"path parameter '{name}' is not a plain name",
                           {"parameter": name})


def _safe_segment(value: str) -> bool:
    if not value or value in (".", "..") or ".." in value:
        return False
    if any(c in value for c in "/\\:") or any(ord(c) < 0x20 or ord(c) == 0x7f for c in value):
        return False
    return True
