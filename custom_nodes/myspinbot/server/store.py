"""Durable job records in SQLite (WAL) in ComfyUI's user directory."""

from __future__ import annotations

import json
import sqlite3
import threading
from dataclasses import asdict
from pathlib import Path

from .model import Job, Output

_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY,
    pipeline TEXT NOT NULL,
    status TEXT NOT NULL,
    created_at REAL NOT NULL,
    started_at REAL,
    completed_at REAL,
    progress REAL NOT NULL DEFAULT 0,
    params TEXT NOT NULL DEFAULT '{}',
    outputs TEXT NOT NULL DEFAULT '[]',
    error TEXT
);
CREATE INDEX IF NOT EXISTS jobs_status ON jobs(status);
CREATE INDEX IF NOT EXISTS jobs_created ON jobs(created_at);
"""

_COLUMNS = ("id", "pipeline", "status", "created_at", "started_at", "completed_at", "progress", "params", "outputs", "error")


class JobStore:
    """Reads and writes :class:`Job` rows. Safe to share between threads (one connection, one lock)."""

    def __init__(self, path: Path | str):
        self.path = Path(path)
        if str(path) != ":memory:":
            self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def save(self, job: Job) -> None:
        """Insert or replace the whole row."""
        row = (
            job.id,
            job.pipeline,
            job.status,
            job.created_at,
            job.started_at,
            job.completed_at,
            job.progress,
            json.dumps(job.params),
            json.dumps([asdict(o) for o in job.outputs]),
            json.dumps(job.error) if job.error is not None else None,
        )
        with self._lock:
            self._db.execute(f"INSERT OR REPLACE INTO jobs ({', '.join(_COLUMNS)}) VALUES ({', '.join('?' * len(_COLUMNS))})", row)

    def delete(self, job_id: str) -> None:
        with self._lock:
            self._db.execute("DELETE FROM jobs WHERE id = ?", (job_id,))

    def get(self, job_id: str) -> Job | None:
        with self._lock:
            row = self._db.execute(f"SELECT {', '.join(_COLUMNS)} FROM jobs WHERE id = ?", (job_id,)).fetchone()
        return _to_job(row) if row else None

    def with_status(self, *statuses: str) -> list[Job]:
        marks = ", ".join("?" * len(statuses))
        with self._lock:
            rows = self._db.execute(
                f"SELECT {', '.join(_COLUMNS)} FROM jobs WHERE status IN ({marks}) ORDER BY created_at", statuses
            ).fetchall()
        return [_to_job(r) for r in rows]


def _to_job(row: tuple) -> Job:
    values = dict(zip(_COLUMNS, row))
    return Job(
        id=values["id"],
        pipeline=values["pipeline"],
        status=values["status"],
        created_at=values["created_at"],
        started_at=values["started_at"],
        completed_at=values["completed_at"],
        progress=values["progress"],
        params=json.loads(values["params"]),
        outputs=[Output(**o) for o in json.loads(values["outputs"])],
        error=json.loads(values["error"]) if values["error"] else None,
    )
