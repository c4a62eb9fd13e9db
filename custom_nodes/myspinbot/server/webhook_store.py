"""Webhook subscriptions, deliveries and attempts in SQLite, so deliveries survive a restart."""

from __future__ import annotations

import json
import sqlite3
import threading
from pathlib import Path
from typing import NamedTuple

from .webhook_request import WebhookSpec

PENDING, DELIVERED, FAILED_FOR_GOOD = "pending", "delivered", "failed"
# Outcome of one attempt, as listed on the job and counted in the metrics.
OUTCOME_DELIVERED, OUTCOME_RETRY, OUTCOME_ABANDONED = "delivered", "retry", "abandoned"

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

    def due(self, now: float, limit: int, offset: int = 0) -> list[Delivery]:
        """Pending deliveries due by ``now``, the longest-waiting first (``offset``: skip that many)."""
        with self._lock:
            rows = self._db.execute(f"SELECT {', '.join(_DELIVERY_COLUMNS)} FROM webhook_deliveries "
                                    "WHERE status = ? AND next_attempt_at <= ? ORDER BY next_attempt_at, rowid "
                                    "LIMIT ? OFFSET ?", (PENDING, now, limit, offset)).fetchall()
        return [Delivery(*r) for r in rows]

    def next_due_at(self, after: float | None = None) -> float | None:
        """When the next pending delivery is due (only those due later than ``after``, if given)."""
        with self._lock:
            if after is None:
                row = self._db.execute("SELECT MIN(next_attempt_at) FROM webhook_deliveries WHERE status = ?",
                                       (PENDING,)).fetchone()
            else:
                row = self._db.execute("SELECT MIN(next_attempt_at) FROM webhook_deliveries WHERE status = ? "
                                       "AND next_attempt_at > ?", (PENDING, after)).fetchone()
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
