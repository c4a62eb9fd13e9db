"""The access middleware in front of the pack's routes (and, opted in, ComfyUI's own), the
session-cookie routes the page signs in with, and the wiring ``plugin.attach`` calls.

- ``ApiGuard.middleware`` runs in front of every route of the app whose path is under
  ``/myspinbot`` (or ComfyUI's ``/api/myspinbot`` mirror), whoever registered it: the route is
  decided from the resolved route, not from the raw path. ``/myspinbot/health``, the page's
  static files and the sign-in route are open. It counts every such request in the metrics.
- With ``MYSPINBOT_PROTECT_COMFYUI=1`` the same check runs in front of ComfyUI's own routes
  (``/prompt``, ``/history``, ``/view``, ``/upload/image``, ``/ws``, the frontend, ...). A browser
  that navigates there without the cookie is sent to the page to enter the token.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Awaitable, Callable, Iterable, Mapping, Protocol
from urllib.parse import quote

from aiohttp import web
from pydantic import ValidationError

from .api_errors import ApiError
from .auth import COOKIE, ApiAuth, check_path_params, listen_addresses, load_token
from .contract.endpoints import OPEN_PATHS
from .contract.endpoints_service import HEALTH, SIGN_IN, SIGN_OUT
from .contract.service import SessionSignIn
from .registry import RouteRegistry, as_registry
from .urls import PREFIX, unmirrored

log = logging.getLogger("myspinbot.auth")

HEALTH_PATH = HEALTH.path
SESSION_PATH = SIGN_IN.path
UNMATCHED_ROUTE = "unmatched"
COOKIE_MAX_AGE_S = 30 * 24 * 3600

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class RequestObserver(Protocol):
    def observe_request(self, route: str, method: str, status: int, seconds: float) -> None: ...


def route_template(request: web.Request) -> str | None:
    """The ``/myspinbot`` route a request resolved to (``/myspinbot/jobs/{job_id}``, the ``/api``
    mirror folded in), ``UNMATCHED_ROUTE`` for an unknown path under ``/myspinbot``, or None
    for a request outside the pack's routes."""
    resource = request.match_info.route.resource
    path = unmirrored(resource.canonical if resource is not None else request.path)
    if not (path == PREFIX or path.startswith(PREFIX + "/")):
        return None
    return path if resource is not None else UNMATCHED_ROUTE


class ApiGuard:
    """Auth, path-parameter check and request metrics in front of the pack's routes.

    Install it as an aiohttp middleware (``install(app)``). ``open_routes``: route templates that
    need no token. ``protect_comfyui``: check ComfyUI's own routes too (else they are left alone)."""

    def __init__(self, auth: ApiAuth, metrics: RequestObserver | None = None,
                 open_routes: Iterable[str] = (HEALTH_PATH,), *, protect_comfyui: bool = False):
        self.auth = auth
        self.metrics = metrics
        self.open_routes = frozenset(open_routes)
        self.protect_comfyui = protect_comfyui

    def install(self, app: web.Application) -> None:
        """Append the middleware to ``app``: possible until the app starts (ComfyUI loads
        extensions, and so attaches the job API, before it starts its server)."""
        app.middlewares.append(self.middleware)

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        route = route_template(request)
        if route is not None:
            return await self.guard(request, handler, route)
        if self.protect_comfyui:
            try:
                self.auth.authorize(request)
            except ApiError as err:
                return _sign_in_redirect(request) if _browser_navigation(request) else err.response()
        return await handler(request)

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
        except (asyncio.CancelledError, ConnectionResetError):
            status = 499  # the client went away
            raise
        finally:
            if self.metrics is not None:
                try:
                    self.metrics.observe_request(route, request.method, status, time.perf_counter() - started)
                except Exception:  # metrics must never break a request
                    log.exception("myspinbot: could not record request metrics")


def _browser_navigation(request: web.Request) -> bool:
    return request.method == "GET" and "text/html" in request.headers.get("Accept", "")


def _sign_in_redirect(request: web.Request) -> web.Response:
    return web.Response(status=303, headers={"Location": f"{PREFIX}/?next={quote(request.path_qs, safe='')}",
                                             "Cache-Control": "no-store"})


# --- the session cookie ----------------------------------------------------------------------

def add_session_routes(routes: RouteRegistry | web.RouteTableDef, auth: ApiAuth) -> None:
    """``POST /myspinbot/session`` ``{"token"}`` → 204 and the ``myspinbot_token`` cookie
    (HttpOnly, SameSite=Strict), so the page's ``<video>``, ``EventSource`` and ComfyUI's own
    frontend carry the token; 401 for a wrong token. ``DELETE`` clears the cookie."""
    registry = as_registry(routes)

    @registry.route(SIGN_IN)
    async def sign_in(request: web.Request) -> web.StreamResponse:
        try:
            body = await request.json() if request.content_length and request.content_length <= 4096 else None
            token = SessionSignIn.model_validate(body).token
        except (ValueError, ValidationError):  # not JSON, or no token in it
            token = None
        if token is None or not auth.matches(token):
            return ApiError(401, "unauthorized", "the token is not valid", {"reason": "invalid_token"}).response()
        response = web.Response(status=204)
        response.set_cookie(COOKIE, token, max_age=COOKIE_MAX_AGE_S, path="/", httponly=True,
                            samesite="Strict", secure=request.secure)
        return response

    @registry.route(SIGN_OUT)
    async def sign_out(request: web.Request) -> web.StreamResponse:
        response = web.Response(status=204)
        response.del_cookie(COOKIE, path="/")
        return response


# --- wiring (plugin.attach) ------------------------------------------------------------------

@dataclass
class Access:
    """What ``setup_access`` wired: pass ``webhooks`` and ``metrics`` to ``routes.add_routes``."""

    auth: ApiAuth
    guard: ApiGuard
    webhooks: Any  # webhooks.WebhookService
    metrics: Any  # metrics.Metrics


def setup_access(app: web.Application, service: Any, user_dir: Path, listen: str | Iterable[str] | None, *,
                 settings: Any = None, cors: bool = False, webhook_options: Mapping[str, Any] | None = None,
                 deliver_webhooks: bool = True) -> Access:
    """Token, metrics, webhooks and the guard middleware for ``service`` on ``app``.

    ``settings``: ``settings.Settings`` (default: the service's). ``cors``: ComfyUI runs with
    ``--enable-cors-header``. ``webhook_options``: more ``WebhookService`` keyword arguments
    (backoff, timeouts); ``deliver_webhooks``: False records deliveries but never starts the worker
    that sends them. Call it before anything settles old jobs (their status changes then
    reach the webhooks and metrics) and before the app starts (the middleware list freezes then).
    The webhook worker starts on the running loop, or when the app starts if no loop runs yet."""
    from .metrics import Metrics
    from .webhooks import WebhookService, WebhookStore, webhook_secret

    settings = settings if settings is not None else service.settings
    auth = ApiAuth.for_listen(load_token(user_dir, settings.api_token), listen, cors=cors)
    metrics = Metrics(service)
    webhooks = WebhookService(WebhookStore(service.store.db), webhook_secret(auth.token.value),
                              on_attempt=metrics.observe_delivery, settings=settings, **dict(webhook_options or {}))
    webhooks.listen(service.events)
    metrics.track_webhooks(webhooks.pending_count)
    # Health, sign-in and the page's static files (no job data) stay open so a browser can load
    # the page and then sign in: the contract's open endpoints.
    guard = ApiGuard(auth, metrics, open_routes=OPEN_PATHS,
                     protect_comfyui=settings.protect_comfyui)
    guard.install(app)

    async def start_webhooks(_app: web.Application) -> None:
        webhooks.start()

    async def stop_webhooks(_app: web.Application) -> None:
        await webhooks.close()

    if deliver_webhooks:
        try:
            webhooks.start()
        except RuntimeError:  # no running loop: start with the app
            app.on_startup.append(start_webhooks)
    app.on_cleanup.append(stop_webhooks)
    where = ", ".join(listen_addresses(listen)) or "127.0.0.1"
    log.info("myspinbot: API token from %s; %s (ComfyUI listens on %s)%s", auth.token.source,
             f"required on every {PREFIX} route but /health" if auth.required else
             "optional from loopback hosts only, a wrong one is refused", where,
             "; ComfyUI's own routes need it too" if settings.protect_comfyui else "")
    return Access(auth, guard, webhooks, metrics)


def describe(auth: ApiAuth) -> dict[str, Any]:
    """What the log may say about the token: where it came from and whether it is required."""
    return {"source": auth.token.source, "required": auth.required,
            "path": str(auth.token.path) if auth.token.path else None}
