"""Per-job webhooks, signed like Standard Webhooks (https://www.standardwebhooks.com/).

A job submitted with ``"webhook": {"url", "events"}`` gets a POST for each event it subscribed to:

- ``job.status``: every status change (queued → running → succeeded, canceling, ...);
- ``job.completed``: once, when the job ends (succeeded, failed or canceled).

The body is ``{"type": <event>, "timestamp": <ISO 8601>, "data": <the job JSON>}``. Headers:
``webhook-id`` (the delivery's id, the same on every retry), ``webhook-timestamp`` (Unix
seconds of this attempt) and ``webhook-signature: v1,<base64 HMAC-SHA256>`` over
``<id>.<timestamp>.<body>``, keyed with the secret ``GET /myspinbot/webhooks/secret`` returns
(``whsec_<base64 key>``, derived from the API token, so it changes when the token does).

Deliveries are rows in SQLite (``webhook_deliveries``, every attempt in ``webhook_attempts``),
so they survive a restart. A worker task sends the due ones; a failed attempt (no 2xx answer
within the timeout) is retried after 5 s, 30 s, 2 min, 10 min, 1 h, then every hour, until
24 h have passed since the event; then the delivery is abandoned. Every attempt is logged and
listed on the job (``webhook.deliveries``).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import logging
import sqlite3
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Awaitable, Callable, Mapping, NamedTuple, Sequence

import aiohttp
from aiohttp import web
from yarl import URL

from .api_errors import ApiError
from .events import STATUS, JobEvent, JobEvents
from .model import CANCELED, EXPIRED, FAILED, SUCCEEDED, iso, job_to_json

log = logging.getLogger("myspinbot.webhooks")

PREFIX = "/myspinbot"
SECRET_PATH = PREFIX + "/webhooks/secret"
JOB_STATUS, JOB_COMPLETED = "job.status", "job.completed"
EVENTS = (JOB_STATUS, JOB_COMPLETED)
COMPLETED_STATUSES = frozenset({SUCCEEDED, FAILED, CANCELED})
SECRET_PREFIX = "whsec_"
_SECRET_CONTEXT = b"myspinbot-webhooks"

DEFAULT_BACKOFF_S = (5.0, 30.0, 120.0, 600.0, 3600.0)
DEFAULT_THEN_S = 3600.0
DEFAULT_RETRY_FOR_S = 24 * 3600.0
DEFAULT_TIMEOUT_S = 10.0
DEFAULT_CONCURRENCY = 4
TIMESTAMP_TOLERANCE_S = 300
MAX_URL_CHARS = 2048
MAX_ERROR_CHARS = 300
USER_AGENT = "myspinbot-webhooks/1"

PENDING, DELIVERED, FAILED_FOR_GOOD = "pending", "delivered", "failed"
# Outcome of one attempt, as listed on the job and counted in the metrics.
OUTCOME_DELIVERED, OUTCOME_RETRY, OUTCOME_ABANDONED = "delivered", "retry", "abandoned"


# --- signing ---------------------------------------------------------------------------------

def webhook_secret(token: str) -> str:
    """The signing secret of an API token: ``whsec_`` + base64(HMAC-SHA256(token, context)).
    Deterministic, so it needs no storage and changes with the token; it does not reveal the token."""
    key = hmac.new(token.encode("utf-8"), _SECRET_CONTEXT, hashlib.sha256).digest()
    return SECRET_PREFIX + base64.b64encode(key).decode("ascii")


def _secret_key(secret: str) -> bytes:
    raw = secret[len(SECRET_PREFIX):] if secret.startswith(SECRET_PREFIX) else secret
    return base64.b64decode(raw)


def sign(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """The ``webhook-signature`` value: ``v1,<base64 HMAC-SHA256(key, "<id>.<timestamp>.<body>")>``."""
    signed = f"{msg_id}.{timestamp}.".encode("utf-8") + body
    digest = hmac.new(_secret_key(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode("ascii")


def verify(secret: str, headers: Mapping[str, str], body: bytes, *, tolerance_s: float = TIMESTAMP_TOLERANCE_S,
           now: float | None = None) -> bool:
    """What a receiver does: check ``webhook-signature`` (any of its space-separated ``v1,``
    signatures) against ``webhook-id``, ``webhook-timestamp`` and the raw body, and that the
    timestamp is within ``tolerance_s`` of ``now``. Constant-time comparison."""
    lowered = {k.lower(): v for k, v in headers.items()}
    msg_id, stamp, signatures = (lowered.get(h) for h in ("webhook-id", "webhook-timestamp", "webhook-signature"))
    if not msg_id or not stamp or not signatures:
        return False
    try:
        timestamp = int(stamp)
    except ValueError:
        return False
    if abs((time.time() if now is None else now) - timestamp) > tolerance_s:
        return False
    expected = sign(secret, msg_id, timestamp, body).split(",", 1)[1].encode("ascii")
    for candidate in signatures.split():
        version, _, value = candidate.partition(",")
        if version == "v1" and hmac.compare_digest(value.encode("utf-8", "replace"), expected):
            return True
    return False


# --- the request field -----------------------------------------------------------------------

@dataclass(frozen=True)
class WebhookSpec:
    url: str
    events: tuple[str, ...] = EVENTS


def parse_webhook(value: Any) -> WebhookSpec:
    """``{"url": "http(s)://...", "events": [...]}`` (events default to both) → ``WebhookSpec``.
    Raises 422 envelopes naming ``webhook.url`` / ``webhook.events``."""
    if not isinstance(value, dict):
        raise ApiError(422, "invalid_webhook", "'webhook' must be an object {\"url\", \"events\"}", {"field": "webhook"})
    unknown = sorted(set(value) - {"url", "events"})
    if unknown:
        raise ApiError(422, "unknown_field", f"unknown field 'webhook.{unknown[0]}'",
                       {"field": f"webhook.{unknown[0]}", "fields": ["url", "events"]})
    url = value.get("url")
    if not isinstance(url, str) or not url.strip():
        raise ApiError(422, "invalid_webhook", "'webhook.url' must be an http or https URL", {"field": "webhook.url"})
    url = url.strip()
    try:
        parsed = URL(url)
    except (ValueError, TypeError):
        parsed = None
    if (parsed is None or len(url) > MAX_URL_CHARS or parsed.scheme not in ("http", "https") or not parsed.host
            or not parsed.is_absolute()):
        raise ApiError(422, "invalid_webhook", f"'webhook.url' must be an absolute http or https URL of at most "
                       f"{MAX_URL_CHARS} characters", {"field": "webhook.url"})
    events = value.get("events", list(EVENTS))
    if not isinstance(events, list) or not events or not all(isinstance(e, str) for e in events):
        raise ApiError(422, "invalid_webhook", "'webhook.events' must be a non-empty list of event names",
                       {"field": "webhook.events", "events": list(EVENTS)})
    unknown = [e for e in events if e not in EVENTS]
    if unknown:
        raise ApiError(422, "invalid_webhook", f"unknown webhook event '{unknown[0]}'",
                       {"field": "webhook.events", "events": list(EVENTS)})
    return WebhookSpec(url, tuple(dict.fromkeys(events)))


def webhook_from_request(webhooks: "WebhookService | None", value: Any, *, form: bool = False) -> WebhookSpec | None:
    """The submission's ``webhook`` field (None when absent); in a multipart form (``form``) it is
    a text part holding the JSON object. 422 ``webhooks_disabled`` when the server runs without webhooks."""
    if value is None:
        return None
    if webhooks is None:
        raise ApiError(422, "webhooks_disabled", "this server does not send webhooks", {"field": "webhook"})
    if form:
        try:
            value = json.loads(value)
        except ValueError:
            raise ApiError(422, "invalid_webhook", "the 'webhook' form field must hold a JSON object {\"url\", \"events\"}",
                           {"field": "webhook"}) from None
    return parse_webhook(value)


# --- storage ---------------------------------------------------------------------------------

_SCHEMA = """
CREATE TABLE IF NOT EXISTS webhooks (
    job_id TEXT PRIMARY KEY,
    url TEXT NOT NULL,
    events TEXT NOT NULL,
    created_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS webhook_deliveries (
    id TEXT PRIMARY KEY,
    job_id TEXT NOT NULL,
    event TEXT NOT NULL,
    url TEXT NOT NULL,
    payload TEXT NOT NULL,
    attempt INTEGER NOT NULL DEFAULT 0,
    next_attempt_at REAL,
    status TEXT NOT NULL,
    response_code INTEGER,
    error TEXT,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS webhook_deliveries_due ON webhook_deliveries(status, next_attempt_at);
CREATE INDEX IF NOT EXISTS webhook_deliveries_job ON webhook_deliveries(job_id);
CREATE TABLE IF NOT EXISTS webhook_attempts (
    delivery_id TEXT NOT NULL,
    attempt INTEGER NOT NULL,
    at REAL NOT NULL,
    outcome TEXT NOT NULL,
    response_code INTEGER,
    error TEXT,
    duration_s REAL,
    next_attempt_at REAL,
    PRIMARY KEY (delivery_id, attempt)
);
"""

_DELIVERY_COLUMNS = ("id", "job_id", "event", "url", "payload", "attempt", "next_attempt_at", "status",
                     "response_code", "error", "created_at", "updated_at")


class Delivery(NamedTuple):
    id: str
    job_id: str
    event: str
    url: str
    payload: str
    attempt: int  # attempts made so far
    next_attempt_at: float | None
    status: str  # pending | delivered | failed
    response_code: int | None
    error: str | None
    created_at: float
    updated_at: float


class Attempt(NamedTuple):
    delivery_id: str
    event: str
    attempt: int
    at: float
    outcome: str  # delivered | retry | abandoned
    response_code: int | None
    error: str | None
    next_attempt_at: float | None


class WebhookStore:
    """Webhook subscriptions, deliveries and attempts in SQLite (WAL); by default in the job
    store's database file, over a connection of its own. Safe to share between threads."""

    def __init__(self, path: Path | str):
        if str(path) != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None, timeout=10.0)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def add_webhook(self, job_id: str, spec: WebhookSpec, created_at: float) -> None:
        with self._lock:
            self._db.execute("INSERT OR REPLACE INTO webhooks (job_id, url, events, created_at) VALUES (?, ?, ?, ?)",
                             (job_id, spec.url, json.dumps(list(spec.events)), created_at))

    def delete_webhook(self, job_id: str) -> None:
        with self._lock:
            self._db.execute("DELETE FROM webhooks WHERE job_id = ?", (job_id,))

    def webhook(self, job_id: str) -> WebhookSpec | None:
        with self._lock:
            row = self._db.execute("SELECT url, events FROM webhooks WHERE job_id = ?", (job_id,)).fetchone()
        return WebhookSpec(row[0], tuple(json.loads(row[1]))) if row else None

    def add_delivery(self, delivery: Delivery) -> None:
        with self._lock:
            self._db.execute(f"INSERT INTO webhook_deliveries ({', '.join(_DELIVERY_COLUMNS)}) "
                             f"VALUES ({', '.join('?' * len(_DELIVERY_COLUMNS))})", tuple(delivery))

    def delivery(self, delivery_id: str) -> Delivery | None:
        with self._lock:
            row = self._db.execute(f"SELECT {', '.join(_DELIVERY_COLUMNS)} FROM webhook_deliveries WHERE id = ?",
                                   (delivery_id,)).fetchone()
        return Delivery(*row) if row else None

    def deliveries(self, job_id: str) -> list[Delivery]:
        with self._lock:
            rows = self._db.execute(f"SELECT {', '.join(_DELIVERY_COLUMNS)} FROM webhook_deliveries WHERE job_id = ? "
                                    "ORDER BY created_at, rowid", (job_id,)).fetchall()
        return [Delivery(*r) for r in rows]

    def due(self, now: float, limit: int) -> list[Delivery]:
        with self._lock:
            rows = self._db.execute(f"SELECT {', '.join(_DELIVERY_COLUMNS)} FROM webhook_deliveries "
                                    "WHERE status = ? AND next_attempt_at <= ? ORDER BY next_attempt_at LIMIT ?",
                                    (PENDING, now, limit)).fetchall()
        return [Delivery(*r) for r in rows]

    def next_due_at(self) -> float | None:
        with self._lock:
            row = self._db.execute("SELECT MIN(next_attempt_at) FROM webhook_deliveries WHERE status = ?",
                                   (PENDING,)).fetchone()
        return row[0] if row else None

    def pending_count(self) -> int:
        with self._lock:
            return self._db.execute("SELECT COUNT(*) FROM webhook_deliveries WHERE status = ?", (PENDING,)).fetchone()[0]

    def prune_finished(self, job_id: str) -> int:
        """Delete the job's delivered and abandoned deliveries and their attempts (pending ones
        stay); returns how many deliveries were deleted."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._db.execute("DELETE FROM webhook_attempts WHERE delivery_id IN "
                                 "(SELECT id FROM webhook_deliveries WHERE job_id = ? AND status != ?)", (job_id, PENDING))
                deleted = self._db.execute("DELETE FROM webhook_deliveries WHERE job_id = ? AND status != ?",
                                           (job_id, PENDING)).rowcount
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        return deleted

    def lease(self, delivery_id: str, until: float) -> None:
        """Push a delivery's next attempt past ``until`` while it is being attempted, so a crash
        mid-attempt retries it after the lease instead of never."""
        with self._lock:
            self._db.execute("UPDATE webhook_deliveries SET next_attempt_at = ? WHERE id = ?", (until, delivery_id))

    def record_attempt(self, delivery: Delivery, attempt: Attempt, duration_s: float) -> None:
        status = {OUTCOME_DELIVERED: DELIVERED, OUTCOME_RETRY: PENDING}.get(attempt.outcome, FAILED_FOR_GOOD)
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._db.execute("INSERT OR REPLACE INTO webhook_attempts (delivery_id, attempt, at, outcome, response_code, "
                                 "error, duration_s, next_attempt_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                                 (delivery.id, attempt.attempt, attempt.at, attempt.outcome, attempt.response_code,
                                  attempt.error, duration_s, attempt.next_attempt_at))
                self._db.execute("UPDATE webhook_deliveries SET attempt = ?, next_attempt_at = ?, status = ?, response_code = ?, "
                                 "error = ?, updated_at = ? WHERE id = ?",
                                 (attempt.attempt, attempt.next_attempt_at, status, attempt.response_code, attempt.error,
                                  attempt.at, delivery.id))
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise

    def attempts(self, job_id: str) -> list[Attempt]:
        with self._lock:
            rows = self._db.execute(
                "SELECT a.delivery_id, d.event, a.attempt, a.at, a.outcome, a.response_code, a.error, a.next_attempt_at "
                "FROM webhook_attempts a JOIN webhook_deliveries d ON d.id = a.delivery_id "
                "WHERE d.job_id = ? ORDER BY a.at, d.created_at, a.attempt", (job_id,)).fetchall()
        return [Attempt(*r) for r in rows]


# --- the service -----------------------------------------------------------------------------

class WebhookService:
    """Records deliveries when a job with a webhook changes status and sends them from a worker
    task (``start``/``close``). ``on_attempt(event, outcome)`` is told about every attempt.

    ``backoff_s``: the waits after the first failed attempts; ``then_s``: the wait after the
    later ones; ``retry_for_s``: how long after the event a failed delivery is still retried."""

    def __init__(self, store: WebhookStore, secret: str, *, backoff_s: Sequence[float] = DEFAULT_BACKOFF_S,
                 then_s: float = DEFAULT_THEN_S, retry_for_s: float = DEFAULT_RETRY_FOR_S,
                 timeout_s: float = DEFAULT_TIMEOUT_S, concurrency: int = DEFAULT_CONCURRENCY,
                 clock: Callable[[], float] = time.time,
                 on_attempt: Callable[[str, str], None] | None = None, settings: Any = None):
        self.settings = settings  # settings.Settings: the address policy and delivery limits
        self.store = store
        self.secret = secret
        self.backoff_s = tuple(backoff_s)
        self.then_s = then_s
        self.retry_for_s = retry_for_s
        self.timeout_s = timeout_s
        self.concurrency = max(1, concurrency)
        self.clock = clock
        self.on_attempt = on_attempt
        self._wake = asyncio.Event()
        self._task: asyncio.Task | None = None
        self._inflight: dict[str, asyncio.Task] = {}
        self._session: aiohttp.ClientSession | None = None
        self._closing = False

    # --- subscriptions -------------------------------------------------------------------
    def listen(self, events: JobEvents) -> None:
        """Follow the job service's events (``service.events``)."""
        events.listen(self.on_job_event)

    def register(self, job_id: str, spec: WebhookSpec) -> None:
        self.store.add_webhook(job_id, spec, self.clock())

    def forget(self, job_id: str) -> None:
        self.store.delete_webhook(job_id)

    def job_webhook(self, job_id: str) -> dict[str, Any] | None:
        """The job JSON's ``webhook``: url, events and every delivery attempt so far."""
        spec = self.store.webhook(job_id)
        if spec is None:
            return None
        return {"url": spec.url, "events": list(spec.events),
                "deliveries": [{"id": a.delivery_id, "event": a.event, "attempt": a.attempt,
                                "status": a.outcome, "response_code": a.response_code, "error": a.error,
                                "at": iso(a.at), "next_attempt_at": iso(a.next_attempt_at)}
                               for a in self.store.attempts(job_id)]}

    def pending_count(self) -> int:
        return self.store.pending_count()

    def on_job_event(self, event: JobEvent) -> None:
        if event.kind != STATUS:
            return
        job = event.job
        spec = self.store.webhook(job.id)
        if spec is None:
            return
        if job.status == EXPIRED:
            # The retention sweep removed the job's files; its delivery history goes with them
            # (only the delivery of this last status change is kept, and only until it is sent).
            pruned = self.store.prune_finished(job.id)
            if pruned:
                log.info("myspinbot: %d finished webhook deliveries of expired job %s removed", pruned, job.id)
        kinds = [e for e in spec.events if e == JOB_STATUS or (e == JOB_COMPLETED and job.status in COMPLETED_STATUSES)]
        if not kinds:
            return
        now = self.clock()
        data = job_to_json(job, PREFIX)
        for kind in kinds:
            payload = json.dumps({"type": kind, "timestamp": iso(now), "data": data}, ensure_ascii=False,
                                 separators=(",", ":"))
            delivery = Delivery(f"msg_{uuid.uuid4().hex}", job.id, kind, spec.url, payload, 0, now, PENDING,
                                None, None, now, now)
            self.store.add_delivery(delivery)
            log.info("myspinbot: webhook %s (%s, job %s → %s) queued", delivery.id, kind, job.status, job.id)
        self._wake.set()

    # --- the worker ----------------------------------------------------------------------
    def start(self) -> None:
        """Start the delivery worker on the running event loop (idempotent)."""
        if self._task is None or self._task.done():
            self._closing = False
            self._task = asyncio.get_running_loop().create_task(self._run(), name="myspinbot-webhooks")

    async def close(self) -> None:
        self._closing = True
        tasks = [t for t in (self._task, *self._inflight.values()) if t is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._task = None
        self._inflight.clear()
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def _run(self) -> None:
        while not self._closing:
            self._wake.clear()
            try:
                self._dispatch_due()
                wait = self._until_next()
            except Exception:  # a database hiccup must not end the worker
                log.exception("myspinbot: the webhook worker failed; retrying in a minute")
                wait = 60.0
            try:
                await asyncio.wait_for(self._wake.wait(), timeout=wait)
            except asyncio.TimeoutError:
                pass

    def _dispatch_due(self) -> None:
        room = self.concurrency - len(self._inflight)
        if room <= 0:
            return
        now = self.clock()
        for delivery in self.store.due(now, room + len(self._inflight)):
            if delivery.id in self._inflight:
                continue
            if room <= 0:
                break
            room -= 1
            self.store.lease(delivery.id, now + self.timeout_s + 30.0)
            task = asyncio.get_running_loop().create_task(self._attempt(delivery))
            self._inflight[delivery.id] = task
            task.add_done_callback(lambda _t, key=delivery.id: self._done(key))

    def _done(self, delivery_id: str) -> None:
        self._inflight.pop(delivery_id, None)
        self._wake.set()

    def _until_next(self) -> float:
        if len(self._inflight) >= self.concurrency:
            return 60.0  # a finishing attempt wakes the worker
        next_at = self.store.next_due_at()
        if next_at is None:
            return 3600.0
        return min(3600.0, max(0.0, next_at - self.clock()))

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self.timeout_s),
                                                  headers={"User-Agent": USER_AGENT})
        return self._session

    async def _attempt(self, delivery: Delivery) -> None:
        number = delivery.attempt + 1
        body = delivery.payload.encode("utf-8")
        timestamp = int(self.clock())
        headers = {"Content-Type": "application/json", "webhook-id": delivery.id,
                   "webhook-timestamp": str(timestamp), "webhook-signature": sign(self.secret, delivery.id, timestamp, body)}
        started = time.monotonic()
        code: int | None = None
        error: str | None = None
        try:
            async with self._http().post(delivery.url, data=body, headers=headers, allow_redirects=False) as response:
                code = response.status
                if not 200 <= code < 300:
                    error = f"HTTP {code}"
        except asyncio.CancelledError:
            raise
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError, ValueError) as exc:
            error = (f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__)[:MAX_ERROR_CHARS]
        duration = time.monotonic() - started
        now = self.clock()
        if error is None:
            outcome, next_at = OUTCOME_DELIVERED, None
        elif now - delivery.created_at >= self.retry_for_s:
            outcome, next_at = OUTCOME_ABANDONED, None
        else:
            outcome, next_at = OUTCOME_RETRY, now + self._backoff(number)
        attempt = Attempt(delivery.id, delivery.event, number, now, outcome, code, error, next_at)
        self.store.record_attempt(delivery, attempt, duration)
        target = _loggable(delivery.url)
        if outcome == OUTCOME_DELIVERED:
            log.info("myspinbot: webhook %s (%s, job %s) attempt %d to %s: delivered (%s)",
                     delivery.id, delivery.event, delivery.job_id, number, target, code)
        elif outcome == OUTCOME_RETRY:
            log.info("myspinbot: webhook %s (%s, job %s) attempt %d to %s failed (%s); retrying in %.0f s",
                     delivery.id, delivery.event, delivery.job_id, number, target, error, next_at - now)
        else:
            log.warning("myspinbot: webhook %s (%s, job %s) attempt %d to %s failed (%s); abandoned after %.0f s",
                        delivery.id, delivery.event, delivery.job_id, number, target, error, now - delivery.created_at)
        if self.on_attempt is not None:
            try:
                self.on_attempt(delivery.event, outcome)
            except Exception:
                log.exception("myspinbot: webhook attempt observer failed")

    def _backoff(self, attempts_made: int) -> float:
        return self.backoff_s[attempts_made - 1] if attempts_made <= len(self.backoff_s) else self.then_s


def _loggable(url: str) -> str:
    """The URL without credentials, query or fragment (they may hold secrets)."""
    try:
        parsed = URL(url)
        return str(parsed.with_user(None).with_query(None).with_fragment(None))
    except (ValueError, TypeError):
        return "<invalid url>"


# --- routes ----------------------------------------------------------------------------------

def add_webhook_routes(routes: web.RouteTableDef, webhooks: WebhookService | None) -> None:
    """``GET /myspinbot/webhooks/secret``: the signing secret (behind the token, like every route)."""

    @routes.get(SECRET_PATH)
    async def webhook_secret_route(request: web.Request) -> web.StreamResponse:
        if webhooks is None:
            return ApiError(404, "webhooks_disabled", "this server does not send webhooks").response()
        return web.json_response({
            "secret": webhooks.secret,
            "scheme": "standard-webhooks",
            "signature": "webhook-signature: v1,base64(HMAC-SHA256(base64decode(secret without 'whsec_'), "
                         "webhook-id + '.' + webhook-timestamp + '.' + body))",
            "events": list(EVENTS),
        })


def with_webhook(webhooks: WebhookService | None, spec: WebhookSpec | None, job_id: str,
                 create: Callable[[], Awaitable[Any]]) -> Callable[[], Awaitable[Any]]:
    """``create`` (the job submission) with the webhook registered first, so no status change of
    the new job can go unseen; dropped again if the submission fails. A replay never calls it."""
    if spec is None or webhooks is None:
        return create

    async def create_with_webhook() -> Any:
        webhooks.register(job_id, spec)
        try:
            return await create()
        except BaseException:
            webhooks.forget(job_id)
            raise

    return create_with_webhook
