"""Durable job records, uploaded assets and idempotency keys in SQLite (WAL) in ComfyUI's user directory."""

from __future__ import annotations

import json
import sqlite3
import threading
from dataclasses import asdict
from pathlib import Path
from typing import NamedTuple

from .model import Asset, Job, Output

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
CREATE TABLE IF NOT EXISTS assets (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    content_type TEXT NOT NULL,
    size_bytes INTEGER NOT NULL,
    path TEXT NOT NULL,
    created_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS idempotency_keys (
    key TEXT PRIMARY KEY,
    request_hash TEXT NOT NULL,
    job_id TEXT NOT NULL,
    created_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS idempotency_created ON idempotency_keys(created_at);
"""

_PROMPTS_SCHEMA = """
CREATE TABLE IF NOT EXISTS job_prompts (
    job_id TEXT PRIMARY KEY,
    prompt TEXT NOT NULL,
    output_nodes TEXT NOT NULL DEFAULT '{}',
    node_stages TEXT NOT NULL DEFAULT '{}',
    requeue_count INTEGER NOT NULL DEFAULT 0
);
"""

_UPLOADS_SCHEMA = """
CREATE TABLE IF NOT EXISTS output_uploads (
    job_id TEXT NOT NULL,
    name TEXT NOT NULL,
    record TEXT NOT NULL,
    PRIMARY KEY (job_id, name)
);
"""

# Columns added after the first release: (name, SQL type); added to older databases on open.
_ADDED_COLUMNS = (("stage", "TEXT"), ("message", "TEXT"), ("progress_detail", "TEXT"))
_ADDED_PROMPT_COLUMNS = (("runs", "INTEGER NOT NULL DEFAULT 0"),)

_COLUMNS = ("id", "pipeline", "status", "created_at", "started_at", "completed_at", "progress", "params", "outputs",
            "error", "stage", "message", "progress_detail")
_ASSET_COLUMNS = ("id", "kind", "content_type", "size_bytes", "path", "created_at")


class PromptRecord(NamedTuple):
    """The API prompt a job was queued with, kept so a restarted ComfyUI can queue it again.

    ``output_nodes``: output name → node id; ``node_stages``: node id → stage name;
    ``requeue_count``: how often a restart queued it again; ``runs``: how often its prompt started
    executing (``count_run``; ``save_prompt`` never changes it)."""

    job_id: str
    prompt: dict
    output_nodes: dict
    node_stages: dict
    requeue_count: int = 0
    runs: int = 0


class IdempotencyRecord(NamedTuple):
    key: str
    request_hash: str
    job_id: str
    created_at: float


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
        self._db.executescript(_PROMPTS_SCHEMA)
        self._db.executescript(_UPLOADS_SCHEMA)
        for table, added in (("jobs", _ADDED_COLUMNS), ("job_prompts", _ADDED_PROMPT_COLUMNS)):
            present = {row[1] for row in self._db.execute(f"PRAGMA table_info({table})")}
            for name, sql_type in added:
                if name not in present:
                    self._db.execute(f"ALTER TABLE {table} ADD COLUMN {name} {sql_type}")

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # --- jobs ----------------------------------------------------------------------------
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
            job.stage,
            job.message,
            json.dumps(job.progress_detail) if job.progress_detail else None,
        )
        with self._lock:
            self._db.execute(f"INSERT OR REPLACE INTO jobs ({', '.join(_COLUMNS)}) VALUES ({', '.join('?' * len(_COLUMNS))})", row)

    def delete(self, job_id: str) -> None:
        with self._lock:
            self._db.execute("DELETE FROM jobs WHERE id = ?", (job_id,))
            self._db.execute("DELETE FROM job_prompts WHERE job_id = ?", (job_id,))
            self._db.execute("DELETE FROM output_uploads WHERE job_id = ?", (job_id,))

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

    def count_status(self, *statuses: str) -> int:
        marks = ", ".join("?" * len(statuses))
        with self._lock:
            return self._db.execute(f"SELECT COUNT(*) FROM jobs WHERE status IN ({marks})", statuses).fetchone()[0]

    def page(self, *, statuses: tuple[str, ...] = (), pipelines: tuple[str, ...] = (), limit: int = 20,
             after: tuple[float, str] | None = None) -> list[Job]:
        """Jobs newest first (``created_at`` then ``id``, both descending), optionally filtered,
        starting strictly after the ``(created_at, id)`` of the last job of the previous page."""
        where, args = [], []
        if statuses:
            where.append(f"status IN ({', '.join('?' * len(statuses))})")
            args.extend(statuses)
        if pipelines:
            where.append(f"pipeline IN ({', '.join('?' * len(pipelines))})")
            args.extend(pipelines)
        if after is not None:
            where.append("(created_at < ? OR (created_at = ? AND id < ?))")
            args.extend((after[0], after[0], after[1]))
        sql = f"SELECT {', '.join(_COLUMNS)} FROM jobs"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY created_at DESC, id DESC LIMIT ?"
        args.append(limit)
        with self._lock:
            rows = self._db.execute(sql, args).fetchall()
        return [_to_job(r) for r in rows]

    # --- assets --------------------------------------------------------------------------
    def add_asset(self, asset: Asset) -> Asset:
        """Record an asset unless one with its id exists; returns the stored record."""
        row = tuple(getattr(asset, c) for c in _ASSET_COLUMNS)
        with self._lock:
            self._db.execute(f"INSERT OR IGNORE INTO assets ({', '.join(_ASSET_COLUMNS)}) "
                             f"VALUES ({', '.join('?' * len(_ASSET_COLUMNS))})", row)
        return self.asset(asset.id)  # type: ignore[return-value]

    def asset(self, asset_id: str) -> Asset | None:
        with self._lock:
            row = self._db.execute(f"SELECT {', '.join(_ASSET_COLUMNS)} FROM assets WHERE id = ?", (asset_id,)).fetchone()
        return Asset(**dict(zip(_ASSET_COLUMNS, row))) if row else None

    # --- idempotency keys ----------------------------------------------------------------
    def idempotency(self, key: str) -> IdempotencyRecord | None:
        with self._lock:
            row = self._db.execute("SELECT key, request_hash, job_id, created_at FROM idempotency_keys WHERE key = ?",
                                   (key,)).fetchone()
        return IdempotencyRecord(*row) if row else None

    def put_idempotency(self, record: IdempotencyRecord, expire_before: float) -> None:
        """Record a key (replacing an expired one of the same name) and drop keys older than ``expire_before``."""
        with self._lock:
            self._db.execute("DELETE FROM idempotency_keys WHERE created_at < ?", (expire_before,))
            self._db.execute("INSERT OR REPLACE INTO idempotency_keys (key, request_hash, job_id, created_at) "
                             "VALUES (?, ?, ?, ?)", tuple(record))

    def delete_idempotency(self, key: str) -> None:
        with self._lock:
            self._db.execute("DELETE FROM idempotency_keys WHERE key = ?", (key,))

    # --- job prompts (what a restart re-queues) and retention ------------------------------
    def save_prompt(self, record: PromptRecord) -> None:
        """Record (or replace) the built prompt of a job; its run count is kept (``count_run`` owns it)."""
        with self._lock:
            self._db.execute("INSERT INTO job_prompts (job_id, prompt, output_nodes, node_stages, requeue_count) "
                             "VALUES (?, ?, ?, ?, ?) ON CONFLICT(job_id) DO UPDATE SET prompt = excluded.prompt, "
                             "output_nodes = excluded.output_nodes, node_stages = excluded.node_stages, "
                             "requeue_count = excluded.requeue_count",
                             (record.job_id, json.dumps(record.prompt), json.dumps(record.output_nodes),
                              json.dumps(record.node_stages), record.requeue_count))

    def count_run(self, job_id: str) -> None:
        """Count one more run of the job's prompt that started executing (recovery.py limits re-runs by it)."""
        with self._lock:
            self._db.execute("UPDATE job_prompts SET runs = runs + 1 WHERE job_id = ?", (job_id,))

    def prompt(self, job_id: str) -> PromptRecord | None:
        with self._lock:
            row = self._db.execute("SELECT job_id, prompt, output_nodes, node_stages, requeue_count, runs FROM job_prompts "
                                   "WHERE job_id = ?", (job_id,)).fetchone()
        if row is None:
            return None
        return PromptRecord(row[0], json.loads(row[1]), json.loads(row[2]), json.loads(row[3]), row[4], row[5])

    def delete_prompt(self, job_id: str) -> None:
        with self._lock:
            self._db.execute("DELETE FROM job_prompts WHERE job_id = ?", (job_id,))

    # --- pending uploads of outputs (server-side only: local paths, the retry record) ------
    def put_pending_upload(self, job_id: str, name: str, record: dict) -> None:
        """Keep the ``PendingUpload`` record (as a dict) of a job's output until it is stored."""
        with self._lock:
            self._db.execute("INSERT OR REPLACE INTO output_uploads (job_id, name, record) VALUES (?, ?, ?)",
                             (job_id, name, json.dumps(record)))

    def pending_upload(self, job_id: str, name: str) -> dict | None:
        with self._lock:
            row = self._db.execute("SELECT record FROM output_uploads WHERE job_id = ? AND name = ?",
                                   (job_id, name)).fetchone()
        return json.loads(row[0]) if row else None

    def delete_pending_upload(self, job_id: str, name: str) -> None:
        with self._lock:
            self._db.execute("DELETE FROM output_uploads WHERE job_id = ? AND name = ?", (job_id, name))

    def finished_before(self, statuses: tuple[str, ...], before: float, limit: int = 500) -> list[Job]:
        """Jobs in ``statuses`` that finished (or, lacking ``completed_at``, were created) before ``before``, oldest first."""
        marks = ", ".join("?" * len(statuses))
        with self._lock:
            rows = self._db.execute(
                f"SELECT {', '.join(_COLUMNS)} FROM jobs WHERE status IN ({marks}) AND COALESCE(completed_at, created_at) < ? "
                "ORDER BY COALESCE(completed_at, created_at) LIMIT ?", (*statuses, before, limit)).fetchall()
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
        stage=values["stage"],
        message=values["message"],
        progress_detail=json.loads(values["progress_detail"]) if values["progress_detail"] else {},
    )
