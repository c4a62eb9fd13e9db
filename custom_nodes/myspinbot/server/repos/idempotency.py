"""The ``idempotency_keys`` table: which job an ``Idempotency-Key`` created, and from what request."""

from __future__ import annotations

from typing import NamedTuple

from ..db import Database


class IdempotencyRecord(NamedTuple):
    key: str
    request_hash: str  # hex digest of the request that used the key first
    job_id: str
    created_at: float  # Unix seconds


class IdempotencyRepo:
    def __init__(self, db: Database):
        self.db = db

    def get(self, key: str) -> IdempotencyRecord | None:
        with self.db.read() as conn:
            row = conn.execute("SELECT key, request_hash, job_id, created_at FROM idempotency_keys WHERE key = ?",
                               (key,)).fetchone()
        return IdempotencyRecord(*row) if row else None

    def put(self, record: IdempotencyRecord, expire_before: float) -> None:
        """Record a key (replacing an expired one of the same name) and drop keys created before
        ``expire_before`` (Unix seconds)."""
        with self.db.transaction() as conn:
            conn.execute("DELETE FROM idempotency_keys WHERE created_at < ?", (expire_before,))
            conn.execute("INSERT INTO idempotency_keys (key, request_hash, job_id, created_at) VALUES (?, ?, ?, ?) "
                         "ON CONFLICT (key) DO UPDATE SET request_hash = excluded.request_hash, "
                         "job_id = excluded.job_id, created_at = excluded.created_at", tuple(record))

    def delete(self, key: str) -> None:
        with self.db.transaction() as conn:
            conn.execute("DELETE FROM idempotency_keys WHERE key = ?", (key,))

    def delete_job(self, job_id: str) -> None:
        """Drop every key that created ``job_id``."""
        with self.db.transaction() as conn:
            conn.execute("DELETE FROM idempotency_keys WHERE job_id = ?", (job_id,))
