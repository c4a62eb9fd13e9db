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
listed on the job (``webhook.deliveries``) with a coarse error only (``connect_failed``,
``timeout``, ``http_<status>``, ``address_refused``).

Webhooks never reach loopback, private, link-local or reserved addresses unless the setting
``webhook_allow`` opts them in (``webhook_policy``); a refused target is abandoned at once. At
most ``webhook_per_host`` deliveries to one host:port are in flight, so a slow receiver keeps
only its own slots busy (``webhook_concurrency`` in all).

The parts live in ``webhook_signing`` (secret, sign), ``webhook_request`` (the request
field), ``webhook_store`` (SQLite), ``webhook_policy`` (addresses), ``webhook_client`` (the
POST) and ``webhook_routes`` (the secret's route); the first five's public names are importable
from here too.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from collections import Counter
from typing import Any, Callable, Sequence

from aiohttp.abc import AbstractResolver
from yarl import URL

from .contract.endpoints_service import GET_WEBHOOK_SECRET  # its route: webhook_routes.py
from .events import STATUS, JobEvent, JobEvents
from .model import EXPIRED, iso
from .urls import PREFIX
from .views import webhook_event_json
# The webhook modules' public names, importable from here as before the split (hence the noqa).
from .webhook_client import (ADDRESS_REFUSED, CONNECT_FAILED, TIMEOUT, USER_AGENT, WebhookClient,  # noqa: F401
                             http_error, public_error)
from .webhook_policy import AddressPolicy, AddressRefused, GuardedResolver  # noqa: F401
from .webhook_request import (COMPLETED_STATUSES, EVENTS, JOB_COMPLETED, JOB_STATUS, MAX_URL_CHARS,  # noqa: F401
                              WebhookSpec, parse_webhook, webhook_from_request, with_webhook)
from .webhook_signing import SECRET_PREFIX, TIMESTAMP_TOLERANCE_S, sign, webhook_secret  # noqa: F401
from .webhook_store import (DELIVERED, FAILED_FOR_GOOD, OUTCOME_ABANDONED, OUTCOME_DELIVERED,  # noqa: F401
                            OUTCOME_RETRY, PENDING, Attempt, Delivery, WebhookStore)

log = logging.getLogger("myspinbot.webhooks")

SECRET_PATH = GET_WEBHOOK_SECRET.path

DEFAULT_BACKOFF_S = (5.0, 30.0, 120.0, 600.0, 3600.0)
DEFAULT_THEN_S = 3600.0
DEFAULT_RETRY_FOR_S = 24 * 3600.0
_DUE_PAGE = 256  # due deliveries read at a time while looking for hosts with a free slot


class WebhookService:
    """Records deliveries when a job with a webhook changes status and sends them from a worker
    task (``start``/``close``). ``on_attempt(event, outcome)`` is told about every attempt.

    ``backoff_s``: the waits after the first failed attempts; ``then_s``: the wait after the
    later ones; ``retry_for_s``: how long after the event a failed delivery is still retried.
    ``settings`` (``settings.Settings``; its defaults when None) gives the address allow-list,
    the timeouts and the concurrency limits; ``timeout_s`` / ``concurrency`` override its values.
    ``resolver``: the DNS resolver the address policy wraps (aiohttp's default when None)."""

    def __init__(self, store: WebhookStore, secret: str, *, backoff_s: Sequence[float] = DEFAULT_BACKOFF_S,
                 then_s: float = DEFAULT_THEN_S, retry_for_s: float = DEFAULT_RETRY_FOR_S,
                 timeout_s: float | None = None, concurrency: int | None = None,
                 clock: Callable[[], float] = time.time,
                 on_attempt: Callable[[str, str], None] | None = None, settings: Any = None,
                 resolver: AbstractResolver | None = None):
        if settings is None:
            from .settings import Settings
            settings = Settings.defaults()
        self.settings = settings
        self.store = store
        self.secret = secret
        self.backoff_s = tuple(backoff_s)
        self.then_s = then_s
        self.retry_for_s = retry_for_s
        self.timeout_s = timeout_s if timeout_s is not None else settings.webhook_timeout_s
        self.concurrency = max(1, concurrency if concurrency is not None else settings.webhook_concurrency)
        self.per_host = max(1, settings.webhook_per_host)
        self.policy = AddressPolicy.from_settings(settings)
        self.client = WebhookClient(self.policy, timeout_s=self.timeout_s,
                                    connect_timeout_s=settings.webhook_connect_timeout_s,
                                    limit=self.concurrency, per_host=self.per_host, resolver=resolver)
        self.clock = clock
        self.on_attempt = on_attempt
        self._wake = asyncio.Event()
        self._task: asyncio.Task | None = None
        self._inflight: dict[str, asyncio.Task] = {}
        self._hosts: Counter[str] = Counter()  # deliveries in flight per host:port
        self._blocked = False  # a due delivery waits for its host's slot
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
                                "status": a.outcome, "response_code": a.response_code, "error": public_error(a.error),
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
        for kind in kinds:
            payload = json.dumps(webhook_event_json(kind, now, job, PREFIX), ensure_ascii=False, separators=(",", ":"))
            delivery = Delivery(f"msg_{uuid.uuid4().hex}", job.id, kind, spec.url, payload, 0, now, PENDING,
                                None, None, now, now)
            self.store.add_delivery(delivery)
            log.info("myspinbot: webhook %s (%s, job %s → %s) queued", delivery.id, kind, job.id, job.status)
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
        self._hosts.clear()
        await self.client.close()

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
        """Start due deliveries, oldest first, while slots are free; one whose host already has
        ``per_host`` in flight waits, and the ones behind it to other hosts go ahead."""
        self._blocked = False
        room = self.concurrency - len(self._inflight)
        now = self.clock()
        offset = 0
        while room > 0:
            batch = self.store.due(now, _DUE_PAGE, offset)
            started = 0
            for delivery in batch:
                if room <= 0:
                    break
                host = _host_key(delivery.url)
                if delivery.id in self._inflight or self._hosts[host] >= self.per_host:
                    self._blocked = True
                    continue
                started += 1  # out of the next page either way: leased here, or by another server
                if not self.store.lease(delivery.id, now + self.timeout_s + 30.0, due_by=now):
                    continue  # another server sharing the database took it a moment ago
                room -= 1
                task = asyncio.get_running_loop().create_task(self._attempt(delivery))
                self._inflight[delivery.id] = task
                self._hosts[host] += 1
                task.add_done_callback(lambda _t, key=delivery.id, host=host: self._done(key, host))
            if len(batch) < _DUE_PAGE:
                break
            offset += len(batch) - started

    def _done(self, delivery_id: str, host: str) -> None:
        if self._inflight.pop(delivery_id, None) is not None:
            self._hosts[host] -= 1
            if self._hosts[host] <= 0:
                del self._hosts[host]
        self._wake.set()

    def _until_next(self) -> float:
        if len(self._inflight) >= self.concurrency:
            return 60.0  # a finishing attempt wakes the worker
        # Deliveries waiting for their host's slot are due already; a finishing attempt wakes the worker for them.
        next_at = self.store.next_due_at(after=self.clock() if self._blocked else None)
        if next_at is None:
            return 3600.0
        return min(3600.0, max(0.0, next_at - self.clock()))

    async def _attempt(self, delivery: Delivery) -> None:
        number = delivery.attempt + 1
        body = delivery.payload.encode("utf-8")
        timestamp = int(self.clock())
        headers = {"Content-Type": "application/json", "webhook-id": delivery.id,
                   "webhook-timestamp": str(timestamp), "webhook-signature": sign(self.secret, delivery.id, timestamp, body)}
        started = time.monotonic()
        code, error, detail = await self.client.post(delivery.url, body, headers)
        duration = time.monotonic() - started
        now = self.clock()
        if error is None:
            outcome, next_at = OUTCOME_DELIVERED, None
        elif error == ADDRESS_REFUSED or now - delivery.created_at >= self.retry_for_s:
            outcome, next_at = OUTCOME_ABANDONED, None
        else:
            outcome, next_at = OUTCOME_RETRY, now + self._backoff(number)
        attempt = Attempt(delivery.id, delivery.event, number, now, outcome, code, error, next_at)
        self.store.record_attempt(delivery, attempt, duration)
        target = _loggable(delivery.url)  # the detail of a failure goes to this log only, never to the job
        if outcome == OUTCOME_DELIVERED:
            log.info("myspinbot: webhook %s (%s, job %s) attempt %d to %s: delivered (%s)",
                     delivery.id, delivery.event, delivery.job_id, number, target, code)
        elif outcome == OUTCOME_RETRY:
            log.info("myspinbot: webhook %s (%s, job %s) attempt %d to %s failed (%s); retrying in %.0f s",
                     delivery.id, delivery.event, delivery.job_id, number, target, detail or error, next_at - now)
        else:
            log.warning("myspinbot: webhook %s (%s, job %s) attempt %d to %s failed (%s); abandoned after %.0f s",
                        delivery.id, delivery.event, delivery.job_id, number, target, detail or error, now - delivery.created_at)
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


def _host_key(url: str) -> str:
    """host:port of a delivery's URL: deliveries with the same key share the per-host limit."""
    try:
        parsed = URL(url)
        return f"{(parsed.raw_host or '').lower().rstrip('.')}:{parsed.port}"
    except (ValueError, TypeError):
        return url
