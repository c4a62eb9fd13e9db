"""Sending one webhook POST: the HTTP client and the coarse result recorded on the job.

The client resolves names through ``GuardedResolver`` (so the address policy is applied to what
a name resolves to at connect time), checks literal addresses before connecting, never follows
redirects, gives up connecting after a short timeout and keeps at most ``per_host`` connections
to one host:port. What the job's submitter sees of a failure is one of ``connect_failed``,
``timeout``, ``address_refused`` or ``http_<status>``; the exception itself goes only to the
server log (it would tell the submitter which internal ports answer).
"""

from __future__ import annotations

import asyncio
import logging
from typing import NamedTuple

import aiohttp
from aiohttp.abc import AbstractResolver

from .webhook_policy import AddressPolicy, AddressRefused, GuardedResolver

log = logging.getLogger("myspinbot.webhooks")

USER_AGENT = "myspinbot-webhooks/1"
CONNECT_FAILED, TIMEOUT, ADDRESS_REFUSED = "connect_failed", "timeout", "address_refused"
MAX_DETAIL_CHARS = 300


def http_error(status: int) -> str:
    """The coarse error of a non-2xx answer: ``http_<status>``."""
    return f"http_{status}"


class PostResult(NamedTuple):
    code: int | None  # the receiver's HTTP status, None when none came
    error: str | None  # the coarse error (None: delivered)
    detail: str | None  # what went wrong, for the server log only


class WebhookClient:
    """One aiohttp session for every delivery (created on first use, closed by ``close``).

    ``resolver``: the resolver to ask before the policy filters its answers (aiohttp's default
    resolver when None; tests pass a stub)."""

    def __init__(self, policy: AddressPolicy, *, timeout_s: float, connect_timeout_s: float, limit: int,
                 per_host: int, resolver: AbstractResolver | None = None):
        self.policy = policy
        self.timeout = aiohttp.ClientTimeout(total=timeout_s, sock_connect=min(connect_timeout_s, timeout_s))
        self.limit = max(1, limit)
        self.per_host = max(1, per_host)
        self._resolver = resolver
        self._session: aiohttp.ClientSession | None = None

    def session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(resolver=GuardedResolver(self.policy, self._resolver), limit=self.limit,
                                             limit_per_host=self.per_host)
            # trust_env stays off: a proxy from the environment would bypass the address checks.
            self._session = aiohttp.ClientSession(connector=connector, timeout=self.timeout,
                                                  headers={"User-Agent": USER_AGENT})
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def post(self, url: str, body: bytes, headers: dict[str, str]) -> PostResult:
        """POST ``body`` to ``url``; any 2xx answer is success. Never raises but for cancellation."""
        try:
            self.policy.check_url(url)  # aiohttp connects to literal addresses without resolving them
            async with self.session().post(url, data=body, headers=headers, allow_redirects=False) as response:
                code = response.status
            if 200 <= code < 300:
                return PostResult(code, None, None)
            return PostResult(code, http_error(code), f"HTTP {code}")
        except asyncio.CancelledError:
            raise
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError, ValueError) as exc:
            return PostResult(None, coarse_error(exc), _describe(exc))


def coarse_error(exc: BaseException) -> str:
    """``address_refused``, ``timeout`` or ``connect_failed`` for an exception of a POST."""
    seen: BaseException | None = exc
    for _ in range(8):  # the connector wraps the resolver's AddressRefused
        if seen is None:
            break
        if isinstance(seen, AddressRefused) or isinstance(getattr(seen, "os_error", None), AddressRefused):
            return ADDRESS_REFUSED
        seen = seen.__cause__ or seen.__context__
    if isinstance(exc, asyncio.TimeoutError):  # aiohttp's timeouts (connect or total) are TimeoutErrors too
        return TIMEOUT
    return CONNECT_FAILED


def public_error(stored: str | None) -> str | None:
    """A stored attempt error as the job shows it: the coarse codes pass; the exception texts
    recorded before errors were coarse ("HTTP 503", "ClientConnectorError: ... 127.0.0.1:6379")
    are reduced to one."""
    if stored is None or stored in (CONNECT_FAILED, TIMEOUT, ADDRESS_REFUSED) or stored.startswith("http_"):
        return stored
    if stored.startswith("HTTP ") and stored[5:].isdigit():
        return http_error(int(stored[5:]))
    return TIMEOUT if "Timeout" in stored else CONNECT_FAILED


def _describe(exc: BaseException) -> str:
    text = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    return text[:MAX_DETAIL_CHARS]
