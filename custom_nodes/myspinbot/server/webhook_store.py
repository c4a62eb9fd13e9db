"""The webhook tables (``webhooks``, ``webhook_deliveries``, ``webhook_attempts``): subscriptions,
deliveries and attempts, in the job database so deliveries survive a restart."""

from __future__ import annotations

import json
from pathlib import Path
from typing import NamedTuple

from .db import Database
from .webhook_request import WebhookSpec

PENDING, DELIVERED, FAILED_FOR_GOOD = "pending", "delivered", "failed"
# Outcome of one attempt, as listed on the job and counted in the metrics.
OUTCOME_DELIVERED, OUTCOME_RETRY, OUTCOME_ABANDONED = "delivered", "retry", "abandoned"

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
    """Repository of the webhook tables. ``source``: the job service's ``db.Database`` (production:
    one connection for every table), or a file path to open a connection of its own. Safe to
    share between threads."""

    def __init__(self, source: Database | Path | str):
        self._owned = isinstance(source, (Path, str))  # else an open db.Database or pg_db.PgDatabase
        self.db = Database(source) if self._owned else source

    def close(self) -> None:
        """Close the connection if this store opened it (a shared ``Database`` is its owner's to close)."""
        if self._owned:
            self.db.close()

    def add_webhook(self, job_id: str, spec: WebhookSpec, created_at: float) -> None:
        with self.db.transaction() as conn:
            conn.execute("INSERT INTO webhooks (job_id, url, events, created_at) VALUES (?, ?, ?, ?) ON CONFLICT (job_id) "
                         "DO UPDATE SET url = excluded.url, events = excluded.events, created_at = excluded.created_at",
                         (job_id, spec.url, json.dumps(list(spec.events)), created_at))

    def delete_webhook(self, job_id: str) -> None:
        with self.db.transaction() as conn:
            conn.execute("DELETE FROM webhooks WHERE job_id = ?", (job_id,))

    def webhook(self, job_id: str) -> WebhookSpec | None:
        with self.db.read() as conn:
            row = conn.execute("SELECT url, events FROM webhooks WHERE job_id = ?", (job_id,)).fetchone()
        return WebhookSpec(row[0], tuple(json.loads(row[1]))) if row else None

    def add_delivery(self, delivery: Delivery) -> None:
        with self.db.transaction() as conn:
            conn.execute(f"INSERT INTO webhook_deliveries ({', '.join(_DELIVERY_COLUMNS)}) "
                         f"VALUES ({', '.join('?' * len(_DELIVERY_COLUMNS))})", tuple(delivery))

    def delivery(self, delivery_id: str) -> Delivery | None:
        with self.db.read() as conn:
            row = conn.execute(f"SELECT {', '.join(_DELIVERY_COLUMNS)} FROM webhook_deliveries WHERE id = ?",
                               (delivery_id,)).fetchone()
        return Delivery(*row) if row else None

    def deliveries(self, job_id: str) -> list[Delivery]:
        with self.db.read() as conn:
            rows = conn.execute(f"SELECT {', '.join(_DELIVERY_COLUMNS)} FROM webhook_deliveries WHERE job_id = ? "
                                "ORDER BY created_at, rowid", (job_id,)).fetchall()
        return [Delivery(*r) for r in rows]

    def due(self, now: float, limit: int, offset: int = 0) -> list[Delivery]:
        """Pending deliveries due by ``now``, the longest-waiting first (``offset``: skip that many)."""
        with self.db.read() as conn:
            rows = conn.execute(f"SELECT {', '.join(_DELIVERY_COLUMNS)} FROM webhook_deliveries "
                                "WHERE status = ? AND next_attempt_at <= ? ORDER BY next_attempt_at, rowid "
                                "LIMIT ? OFFSET ?", (PENDING, now, limit, offset)).fetchall()
        return [Delivery(*r) for r in rows]

    def next_due_at(self, after: float | None = None) -> float | None:
        """When the next pending delivery is due (only those due later than ``after``, if given)."""
        with self.db.read() as conn:
            if after is None:
                row = conn.execute("SELECT MIN(next_attempt_at) FROM webhook_deliveries WHERE status = ?",
                                   (PENDING,)).fetchone()
            else:
                row = conn.execute("SELECT MIN(next_attempt_at) FROM webhook_deliveries WHERE status = ? "
                                   "AND next_attempt_at > ?", (PENDING, after)).fetchone()
        return row[0] if row else None

    def pending_count(self) -> int:
        with self.db.read() as conn:
            return conn.execute("SELECT COUNT(*) FROM webhook_deliveries WHERE status = ?", (PENDING,)).fetchone()[0]

    def prune_finished(self, job_id: str) -> int:
        """Delete the job's delivered and abandoned deliveries and their attempts (pending ones
        stay); returns how many deliveries were deleted."""
        with self.db.transaction() as conn:
            conn.execute("DELETE FROM webhook_attempts WHERE delivery_id IN "
                         "(SELECT id FROM webhook_deliveries WHERE job_id = ? AND status != ?)", (job_id, PENDING))
            deleted = conn.execute("DELETE FROM webhook_deliveries WHERE job_id = ? AND status != ?",
                                   (job_id, PENDING)).rowcount
        return deleted

    def delete_job(self, job_id: str) -> None:
        """Delete the job's subscription, deliveries (pending ones too) and attempts."""
        with self.db.transaction() as conn:
            conn.execute("DELETE FROM webhook_attempts WHERE delivery_id IN "
                         "(SELECT id FROM webhook_deliveries WHERE job_id = ?)", (job_id,))
            conn.execute("DELETE FROM webhook_deliveries WHERE job_id = ?", (job_id,))
            conn.execute("DELETE FROM webhooks WHERE job_id = ?", (job_id,))

    def lease(self, delivery_id: str, until: float, due_by: float | None = None) -> bool:
        """Push a delivery's next attempt past ``until`` while it is being attempted, so a crash
        mid-attempt retries it after the lease instead of never. With ``due_by``: only if it is
        still pending and due by then, so of several servers sharing the database exactly one
        takes it; returns whether this call leased it."""
        with self.db.transaction() as conn:
            if due_by is None:
                return conn.execute("UPDATE webhook_deliveries SET next_attempt_at = ? WHERE id = ?",
                                    (until, delivery_id)).rowcount == 1
            return conn.execute("UPDATE webhook_deliveries SET next_attempt_at = ? WHERE id = ? AND status = ? "
                                "AND next_attempt_at <= ?", (until, delivery_id, PENDING, due_by)).rowcount == 1

    def record_attempt(self, delivery: Delivery, attempt: Attempt, duration_s: float) -> None:
        status = {OUTCOME_DELIVERED: DELIVERED, OUTCOME_RETRY: PENDING}.get(attempt.outcome, FAILED_FOR_GOOD)
        with self.db.transaction() as conn:
            conn.execute("INSERT INTO webhook_attempts (delivery_id, attempt, at, outcome, response_code, error, duration_s, "
                         "next_attempt_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (delivery_id, attempt) DO UPDATE SET "
                         "at = excluded.at, outcome = excluded.outcome, response_code = excluded.response_code, "
                         "error = excluded.error, duration_s = excluded.duration_s, "
                         "next_attempt_at = excluded.next_attempt_at",
                         (delivery.id, attempt.attempt, attempt.at, attempt.outcome, attempt.response_code,
                          attempt.error, duration_s, attempt.next_attempt_at))
            conn.execute("UPDATE webhook_deliveries SET attempt = ?, next_attempt_at = ?, status = ?, response_code = ?, "
                         "error = ?, updated_at = ? WHERE id = ?",
                         (attempt.attempt, attempt.next_attempt_at, status, attempt.response_code, attempt.error,
                          attempt.at, delivery.id))

    def attempts(self, job_id: str) -> list[Attempt]:
        with self.db.read() as conn:
            rows = conn.execute(
                "SELECT a.delivery_id, d.event, a.attempt, a.at, a.outcome, a.response_code, a.error, a.next_attempt_at "
                "FROM webhook_attempts a JOIN webhook_deliveries d ON d.id = a.delivery_id "
                "WHERE d.job_id = ? ORDER BY a.at, d.created_at, a.attempt", (job_id,)).fetchall()
        return [Attempt(*r) for r in rows]
