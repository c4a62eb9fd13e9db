"""Versioned schema of the job database: ``PRAGMA user_version`` counts the migrations applied.

``MIGRATIONS[i]`` brings a database from version ``i`` to ``i + 1``. A released migration is
never edited: a schema change is a new function appended to the tuple. Version 0 is a new file
or one written before versioning (the releases up to this one, which created their tables with
``CREATE TABLE IF NOT EXISTS`` and added late columns on open); ``_adopt_unversioned`` brings
every such shape to version 1.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable

Migration = Callable[[sqlite3.Connection], None]


class SchemaTooNew(RuntimeError):
    """The database was written by a newer release (its ``user_version`` is past this code's last migration)."""


def migrate(conn: sqlite3.Connection, migrations: tuple[Migration, ...]) -> int:
    """Apply the migrations ``conn``'s database lacks, in order; returns its version afterwards.

    Call it inside a transaction (``Database`` does): a failing migration leaves the file as it
    was. Raises ``SchemaTooNew``."""
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    if version > len(migrations):
        raise SchemaTooNew(f"the job database is at schema version {version}, newer than this myspinbot "
                           f"knows ({len(migrations)}); update myspinbot or move the file aside")
    for step in migrations[version:]:
        step(conn)
    if version != len(migrations):
        conn.execute(f"PRAGMA user_version = {len(migrations):d}")
    return len(migrations)


def _run(conn: sqlite3.Connection, statements: tuple[str, ...]) -> None:
    for sql in statements:
        conn.execute(sql)  # never executescript: it would commit the open transaction


# --- 0 → 1: the schema of the unversioned releases ----------------------------------------------
_RELEASE_0_TABLES = (
    """CREATE TABLE IF NOT EXISTS jobs (
        id TEXT PRIMARY KEY, pipeline TEXT NOT NULL, status TEXT NOT NULL, created_at REAL NOT NULL,
        started_at REAL, completed_at REAL, progress REAL NOT NULL DEFAULT 0,
        params TEXT NOT NULL DEFAULT '{}', outputs TEXT NOT NULL DEFAULT '[]', error TEXT)""",
    "CREATE INDEX IF NOT EXISTS jobs_status ON jobs(status)",
    "CREATE INDEX IF NOT EXISTS jobs_created ON jobs(created_at)",
    """CREATE TABLE IF NOT EXISTS assets (
        id TEXT PRIMARY KEY, kind TEXT NOT NULL, content_type TEXT NOT NULL, size_bytes INTEGER NOT NULL,
        path TEXT NOT NULL, created_at REAL NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS idempotency_keys (
        key TEXT PRIMARY KEY, request_hash TEXT NOT NULL, job_id TEXT NOT NULL, created_at REAL NOT NULL)""",
    "CREATE INDEX IF NOT EXISTS idempotency_created ON idempotency_keys(created_at)",
    """CREATE TABLE IF NOT EXISTS job_prompts (
        job_id TEXT PRIMARY KEY, prompt TEXT NOT NULL, output_nodes TEXT NOT NULL DEFAULT '{}',
        node_stages TEXT NOT NULL DEFAULT '{}', requeue_count INTEGER NOT NULL DEFAULT 0)""",
    """CREATE TABLE IF NOT EXISTS output_uploads (
        job_id TEXT NOT NULL, name TEXT NOT NULL, record TEXT NOT NULL, PRIMARY KEY (job_id, name))""",
    """CREATE TABLE IF NOT EXISTS webhooks (
        job_id TEXT PRIMARY KEY, url TEXT NOT NULL, events TEXT NOT NULL, created_at REAL NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS webhook_deliveries (
        id TEXT PRIMARY KEY, job_id TEXT NOT NULL, event TEXT NOT NULL, url TEXT NOT NULL, payload TEXT NOT NULL,
        attempt INTEGER NOT NULL DEFAULT 0, next_attempt_at REAL, status TEXT NOT NULL, response_code INTEGER,
        error TEXT, created_at REAL NOT NULL, updated_at REAL NOT NULL)""",
    "CREATE INDEX IF NOT EXISTS webhook_deliveries_due ON webhook_deliveries(status, next_attempt_at)",
    "CREATE INDEX IF NOT EXISTS webhook_deliveries_job ON webhook_deliveries(job_id)",
    """CREATE TABLE IF NOT EXISTS webhook_attempts (
        delivery_id TEXT NOT NULL, attempt INTEGER NOT NULL, at REAL NOT NULL, outcome TEXT NOT NULL,
        response_code INTEGER, error TEXT, duration_s REAL, next_attempt_at REAL,
        PRIMARY KEY (delivery_id, attempt))""",
)
# Columns the unversioned releases added to existing tables on open: table → ((name, SQL type), ...).
_RELEASE_0_LATE_COLUMNS = {
    "jobs": (("stage", "TEXT"), ("message", "TEXT"), ("progress_detail", "TEXT")),
    "job_prompts": (("runs", "INTEGER NOT NULL DEFAULT 0"),),
}


def _adopt_unversioned(conn: sqlite3.Connection) -> None:
    """Create what is missing of the last unversioned schema: tables, indexes, late columns."""
    _run(conn, _RELEASE_0_TABLES)
    for table, columns in _RELEASE_0_LATE_COLUMNS.items():
        present = {row[1] for row in conn.execute(f"PRAGMA table_info({table})")}
        for name, sql_type in columns:
            if name not in present:
                conn.execute(f"ALTER TABLE {table} ADD COLUMN {name} {sql_type}")


# --- 1 → 2: indexes for the job list, expiry and deleting a job's rows ------------------------
LIST_INDEXES = (
    # Newest first (created_at DESC, id DESC), unfiltered or filtered by status, pipeline or both:
    # each filtered list reads one of these per (status, pipeline) value (repos/jobs.py).
    "CREATE INDEX jobs_by_created ON jobs(created_at, id)",
    "CREATE INDEX jobs_by_status ON jobs(status, created_at, id)",
    "CREATE INDEX jobs_by_pipeline ON jobs(pipeline, created_at, id)",
    "CREATE INDEX jobs_by_status_pipeline ON jobs(status, pipeline, created_at, id)",
    # Retention: finished jobs by status, oldest finish first.
    "CREATE INDEX jobs_by_finish ON jobs(status, COALESCE(completed_at, created_at))",
    "CREATE INDEX idempotency_by_job ON idempotency_keys(job_id)",
    # Prefixes of the new indexes.
    "DROP INDEX IF EXISTS jobs_status",
    "DROP INDEX IF EXISTS jobs_created",
)


def _list_indexes(conn: sqlite3.Connection) -> None:
    """Index the job list's filters and order, retention's scan and a job's idempotency keys."""
    _run(conn, LIST_INDEXES)


# --- 2 → 3: character profiles (repos/profiles.py) ------------------------------------------------
_PROFILES = (
    """CREATE TABLE profiles (
        id TEXT PRIMARY KEY, name TEXT NOT NULL, status TEXT NOT NULL, trigger_word TEXT NOT NULL,
        lora_name TEXT, voice_path TEXT, voice_transcript TEXT, reference_photo TEXT, photos TEXT NOT NULL,
        options TEXT NOT NULL, training_job_id TEXT, error TEXT, storage TEXT, created_at REAL NOT NULL,
        updated_at REAL NOT NULL)""",
    "CREATE INDEX profiles_by_created ON profiles(created_at, id)",
    "CREATE INDEX profiles_by_job ON profiles(training_job_id)",
)


def _profiles(conn: sqlite3.Connection) -> None:
    """The ``profiles`` table: one character (photos, LoRA, voice) per row."""
    _run(conn, _PROFILES)


# --- 3 → 4: a profile's fine-tuned F5-TTS voice (models/f5_tts/myspinbot/<name>) ------------------
def _profile_voice_model(conn: sqlite3.Connection) -> None:
    """``profiles.voice_model``: the fine-tuned voice f5 jobs with the profile use (NULL: zero-shot)."""
    _run(conn, ("ALTER TABLE profiles ADD COLUMN voice_model TEXT",))


MIGRATIONS: tuple[Migration, ...] = (_adopt_unversioned, _list_indexes, _profiles, _profile_voice_model)
