"""The ``output_uploads`` table: an output's object-storage upload still to retry.

Server-side only: the record (``PendingUpload.to_dict()``) holds local paths and the retry state."""

from __future__ import annotations

import json
from typing import Any

from ..db import Database


class PendingUploadsRepo:
    def __init__(self, db: Database):
        self.db = db

    def put(self, job_id: str, name: str, record: dict[str, Any]) -> None:
        """Keep the record of output ``name`` of the job until it is stored (replaces an older one)."""
        with self.db.transaction() as conn:
            conn.execute("INSERT INTO output_uploads (job_id, name, record) VALUES (?, ?, ?) "
                         "ON CONFLICT (job_id, name) DO UPDATE SET record = excluded.record",
                         (job_id, name, json.dumps(record)))

    def get(self, job_id: str, name: str) -> dict[str, Any] | None:
        with self.db.read() as conn:
            row = conn.execute("SELECT record FROM output_uploads WHERE job_id = ? AND name = ?", (job_id, name)).fetchone()
        return json.loads(row[0]) if row else None

    def delete(self, job_id: str, name: str) -> None:
        with self.db.transaction() as conn:
            conn.execute("DELETE FROM output_uploads WHERE job_id = ? AND name = ?", (job_id, name))

    def delete_job(self, job_id: str) -> None:
        """Drop the records of every output of the job."""
        with self.db.transaction() as conn:
            conn.execute("DELETE FROM output_uploads WHERE job_id = ?", (job_id,))
