"""Access control of the ``/myspinbot`` routes: a bearer token, required when ComfyUI listens
beyond loopback, and a check that path parameters name nothing outside their folder.

- The token is ``MYSPINBOT_API_TOKEN`` or, when that is unset, one generated on the first start
  into ``<ComfyUI user dir>/myspinbot/api_token`` (mode 0600) and printed once on the console.
  It never goes to the log.
- ``ApiGuard.middleware`` runs in front of every route of the app whose path is under
  ``/myspinbot`` (or ComfyUI's ``/api/myspinbot`` mirror), whoever registered it: the route is
  decided from the resolved route, not from the raw path. ``/myspinbot/health`` is open.
  When the token is required a request without it is 401; when it is optional (loopback) a
  request without it passes but one with a wrong token is still 401.
- It also counts every such request in the metrics (route template, method, status).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import ipaddress
import logging
import os
import secrets
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Awaitable, Callable, Iterable, Mapping, Protocol

from aiohttp import web

from .api_errors import ApiError

log = logging.getLogger("myspinbot.auth")

PREFIX = "/myspinbot"
API_MIRROR = "/api"
HEALTH_PATH = PREFIX + "/health"
TOKEN_ENV = "MYSPINBOT_API_TOKEN"
TOKEN_FILE = ("myspinbot", "api_token")
MIN_TOKEN_CHARS = 16
REALM = "myspinbot"
UNMATCHED_ROUTE = "unmatched"

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


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
    return all(_is_loopback(a) for a in addresses)


def _is_loopback(address: str) -> bool:
    host = address.strip("[]").split("%", 1)[0]  # "[::1]", "fe80::1%eth0"
    if host.lower() in ("localhost", "localhost."):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a host name: it may resolve to anything


# --- the token -------------------------------------------------------------------------------

@dataclass(frozen=True, repr=False)
class ApiToken:
    value: str
    source: str  # "env", "file" or "generated"
    path: Path | None = None  # the token file (None when it came from the environment)

    def __repr__(self) -> str:  # never show the value, not even in a traceback or debugger
        return f"ApiToken(source={self.source!r}, path={self.path!r})"

    __str__ = __repr__


def token_path(user_dir: Path) -> Path:
    return Path(user_dir).joinpath(*TOKEN_FILE)


def load_token(user_dir: Path, env: Mapping[str, str] | None = None,
               announce: Callable[[str], None] | None = None) -> ApiToken:
    """The API token: ``MYSPINBOT_API_TOKEN`` if set, else the token file, else a new token
    (``secrets.token_urlsafe(32)``) written to the token file with mode 0600 and passed to
    ``announce`` once (default: printed on stderr, ComfyUI's console). Nothing here logs it."""
    env = os.environ if env is None else env
    from_env = (env.get(TOKEN_ENV) or "").strip()
    if from_env:
        if len(from_env) < MIN_TOKEN_CHARS:
            log.warning("myspinbot: %s is shorter than %d characters; use a long random token",
                        TOKEN_ENV, MIN_TOKEN_CHARS)
        return ApiToken(from_env, "env")
    path = token_path(user_dir)
    existing = _read_token_file(path)
    if existing:
        return ApiToken(existing, "file", path)
    value = secrets.token_urlsafe(32)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o600)
    except FileExistsError:  # an empty or unreadable file, or another process was first
        existing = _read_token_file(path)
        if existing:
            return ApiToken(existing, "file", path)
        path.unlink(missing_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as out:
        _chmod_owner_only(path)
        out.write(value + "\n")
    log.warning("myspinbot: generated an API token in %s (shown once on the console; set %s to choose your own)",
                path, TOKEN_ENV)
    (announce or _print_once)(
        f"myspinbot: API token (send 'Authorization: Bearer <token>'; also kept in {path}): {value}")
    return ApiToken(value, "generated", path)


def _read_token_file(path: Path) -> str | None:
    try:
        value = path.read_text(encoding="ascii").strip()
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as exc:
        log.warning("myspinbot: cannot read the API token file %s (%s); writing a new one", path, type(exc).__name__)
        return None
    if not value:
        return None
    if os.name == "posix" and path.stat().st_mode & 0o077:
        log.warning("myspinbot: %s was readable by others; restricting it to its owner (0600)", path)
        _chmod_owner_only(path)
    return value


def _chmod_owner_only(path: Path) -> None:
    try:
        os.chmod(path, 0o600)
    except OSError:  # e.g. a file system without POSIX modes
        pass


def _print_once(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _digest(value: str) -> bytes:
    return hashlib.sha256(value.encode("utf-8", "surrogateescape")).digest()


# --- checking requests -----------------------------------------------------------------------

class ApiAuth:
    """Bearer-token check. ``required``: a request without a token is refused; either way a
    request with a wrong token (or a malformed ``Authorization`` header) is refused."""

    def __init__(self, token: ApiToken | str, *, required: bool):
        self.token = token if isinstance(token, ApiToken) else ApiToken(token, "given")
        self.required = required
        self._digest = _digest(self.token.value)

    @classmethod
    def for_listen(cls, token: ApiToken | str, listen: str | Iterable[str] | None) -> "ApiAuth":
        return cls(token, required=not is_loopback_listen(listen))

    def matches(self, presented: str) -> bool:
        """Constant-time: both sides are hashed first, so neither content nor length leaks."""
        return hmac.compare_digest(_digest(presented), self._digest)

    def authorize(self, request: web.Request) -> None:
        """Return if the request may pass; raise ``ApiError`` 401 ``unauthorized`` if not."""
        header = request.headers.get("Authorization")
        if header is None:
            if self.required:
                raise _unauthorized("this server requires a bearer token: send 'Authorization: Bearer <token>'",
                                    "missing_token")
            return
        scheme, _, presented = header.strip().partition(" ")
        presented = presented.strip()
        if scheme.lower() != "bearer" or not presented or not self.matches(presented):
            log.debug("myspinbot: refused %s %s from %s: invalid token", request.method, request.path, request.remote)
            raise _unauthorized("the bearer token is not valid", "invalid_token")


def _unauthorized(message: str, reason: str) -> ApiError:
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


# --- the middleware --------------------------------------------------------------------------

class RequestObserver(Protocol):
    def observe_request(self, route: str, method: str, status: int, seconds: float) -> None: ...


def route_template(request: web.Request) -> str | None:
    """The ``/myspinbot`` route a request resolved to (``/myspinbot/jobs/{job_id}``, the ``/api``
    mirror folded in), ``UNMATCHED_ROUTE`` for an unknown path under ``/myspinbot``, or None
    for a request outside the pack's routes."""
    resource = request.match_info.route.resource
    if resource is not None:
        path = resource.canonical
        if path.startswith(API_MIRROR + PREFIX):
            path = path[len(API_MIRROR):]
        return path if _under_prefix(path) else None
    path = request.path
    if path.startswith(API_MIRROR + PREFIX):
        path = path[len(API_MIRROR):]
    return UNMATCHED_ROUTE if _under_prefix(path) else None


def _under_prefix(path: str) -> bool:
    return path == PREFIX or path.startswith(PREFIX + "/")


class ApiGuard:
    """Auth, path-parameter check and request metrics in front of the pack's routes.

    Install it as an aiohttp middleware (``install(app)``); it leaves every other route of the
    app (ComfyUI's own) alone. ``open_routes``: route templates that need no token."""

    def __init__(self, auth: ApiAuth, metrics: RequestObserver | None = None,
                 open_routes: Iterable[str] = (HEALTH_PATH,)):
        self.auth = auth
        self.metrics = metrics
        self.open_routes = frozenset(open_routes)

    def install(self, app: web.Application) -> None:
        """Append the middleware to ``app``: possible until the app starts (ComfyUI loads
        extensions, and so attaches the job API, before it starts its server)."""
        app.middlewares.append(self.middleware)

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        route = route_template(request)
        if route is None:
            return await handler(request)
        return await self.guard(request, handler, route)

    async def guard(self, request: web.Request, handler: Handler, route: str) -> web.StreamResponse:
        started = time.perf_counter()
        status = 500
        try:
            try:
                if route not in self.open_routes:
                    self.auth.authorize(request)
                check_path_params(request.match_info)
            except ApiError as err:
                response: web.StreamResponse = err.response()
            else:
                response = await handler(request)
            status = response.status
            return response
        except web.HTTPException as exc:
            status = exc.status
            raise
        except asyncio.CancelledError:
            status = 499  # the client went away
            raise
        finally:
            if self.metrics is not None:
                try:
                    self.metrics.observe_request(route, request.method, status, time.perf_counter() - started)
                except Exception:  # metrics must never break a request
                    log.exception("myspinbot: could not record request metrics")


def describe(auth: ApiAuth) -> dict[str, Any]:
    """What the log may say about the token: where it came from and whether it is required."""
    return {"source": auth.token.source, "required": auth.required,
            "path": str(auth.token.path) if auth.token.path else None}


# --- wiring (plugin.attach) ------------------------------------------------------------------

@dataclass
class Access:
    """What ``setup_access`` wired: pass ``webhooks`` and ``metrics`` to ``routes.add_routes``."""

    auth: ApiAuth
    guard: ApiGuard
    webhooks: Any  # webhooks.WebhookService
    metrics: Any  # metrics.Metrics


def setup_access(app: web.Application, service: Any, user_dir: Path, listen: str | Iterable[str] | None, *,
                 env: Mapping[str, str] | None = None) -> Access:
    """Token, metrics, webhooks and the guard middleware for ``service`` on ``app``.

    Call it before anything settles old jobs (their status changes then reach the webhooks and
    metrics) and before the app starts (the middleware list freezes then). The webhook worker
    starts on the running loop, or when the app starts if no loop runs yet."""
    from .metrics import Metrics
    from .webhooks import WebhookService, WebhookStore, webhook_secret

    auth = ApiAuth.for_listen(load_token(user_dir, env), listen)
    metrics = Metrics(service)
    webhooks = WebhookService(WebhookStore(service.store.path), webhook_secret(auth.token.value),
                              on_attempt=metrics.observe_delivery)
    webhooks.listen(service.events)
    metrics.track_webhooks(webhooks.pending_count)
    # The page's static files (no job data) stay open so a browser can load it and then ask for the token.
    from .page import PAGE_ROUTES

    guard = ApiGuard(auth, metrics, open_routes=(HEALTH_PATH, *PAGE_ROUTES))
    guard.install(app)

    async def start_webhooks(_app: web.Application) -> None:
        webhooks.start()

    async def stop_webhooks(_app: web.Application) -> None:
        await webhooks.close()

    try:
        webhooks.start()
    except RuntimeError:  # no running loop: start with the app
        app.on_startup.append(start_webhooks)
    app.on_cleanup.append(stop_webhooks)
    where = ", ".join(listen_addresses(listen)) or "127.0.0.1"
    log.info("myspinbot: API token from %s; %s (ComfyUI listens on %s)", auth.token.source,
             "required on every /myspinbot route but /health" if auth.required else
             "optional (loopback only), a wrong one is refused", where)
    return Access(auth, guard, webhooks, metrics)
