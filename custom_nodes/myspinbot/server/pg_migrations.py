"""Versioned schema of the job database on PostgreSQL: the table ``myspinbot_schema`` holds the
number of migrations applied (SQLite keeps it in ``PRAGMA user_version``, ``migrations.py``).

``PG_MIGRATIONS[i]`` brings a database from version ``i`` to ``i + 1``; released migrations are
never edited. Versions 1 and 2 give the tables and indexes of SQLite's versions 1 and 2 (the same
columns in the same order, PostgreSQL's types; the index statements are SQLite's own); version 3
adds what only a shared queue needs: the claim of a job by a server (``repos/claims.py``);
version 4 the servers' heartbeat rows and a job's required models (``repos/servers.py``).

Several servers may start at once on one database: ``migrate`` takes a transaction-scoped
advisory lock first, so one of them migrates and the others then find the schema current.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .migrations import LIST_INDEXES, SchemaTooNew

PgMigration = Callable[[Any], None]
"""A migration: called with a ``pg_db.PgConnection`` inside the migrating transaction."""

ADVISORY_LOCK = 0x6D7973706E62  # "myspnb": the key every myspinbot server migrates under


def migrate(conn: Any, migrations: tuple[PgMigration, ...]) -> int:
    """Apply the migrations the database lacks, in order, under the advisory lock; returns its
    version afterwards. Call it inside a transaction (``PgDatabase`` does): a failing migration
    leaves the database as it was (PostgreSQL's DDL is transactional). Raises ``SchemaTooNew``."""
    conn.execute("SELECT pg_advisory_xact_lock(?)", (ADVISORY_LOCK,))
    conn.execute("CREATE TABLE IF NOT EXISTS myspinbot_schema (version INTEGER NOT NULL)")
    row = conn.execute("SELECT version FROM myspinbot_schema").fetchone()
    if row is None:
        conn.execute("INSERT INTO myspinbot_schema (version) VALUES (0)")
    version = row[0] if row else 0
    if version > len(migrations):
        raise SchemaTooNew(f"the job database is at schema version {version}, newer than this myspinbot "
                           f"knows ({len(migrations)}); update myspinbot on every server")
    for step in migrations[version:]:
        step(conn)
    if version != len(migrations):
        conn.execute("UPDATE myspinbot_schema SET version = ?", (len(migrations),))
    return len(migrations)


def _run(conn: Any, statements: tuple[str, ...]) -> None:
    for sql in statements:
        conn.execute(sql)


# --- 0 → 1: SQLite's version 1 ----------------------------------------------------------------
# REAL → DOUBLE PRECISION; ids compare byte-wise as in SQLite (COLLATE "C": the job list pages
# by (created_at, id) and merges its reads in Python's order). ``webhook_deliveries.rowid``
# stands in for SQLite's implicit rowid (deliveries are listed in insertion order).
_TABLES = (
    """CREATE TABLE jobs (
        id TEXT COLLATE "C" PRIMARY KEY, pipeline TEXT NOT NULL, status TEXT NOT NULL,
        created_at DOUBLE PRECISION NOT NULL, started_at DOUBLE PRECISION, completed_at DOUBLE PRECISION,
        progress DOUBLE PRECISION NOT NULL DEFAULT 0, params TEXT NOT NULL DEFAULT '{}',
        outputs TEXT NOT NULL DEFAULT '[]', error TEXT, stage TEXT, message TEXT, progress_detail TEXT)""",
    "CREATE INDEX jobs_status ON jobs(status)",
    "CREATE INDEX jobs_created ON jobs(created_at)",
    """CREATE TABLE assets (
        id TEXT PRIMARY KEY, kind TEXT NOT NULL, content_type TEXT NOT NULL, size_bytes BIGINT NOT NULL,
        path TEXT NOT NULL, created_at DOUBLE PRECISION NOT NULL)""",
    """CREATE TABLE idempotency_keys (
        key TEXT PRIMARY KEY, request_hash TEXT NOT NULL, job_id TEXT NOT NULL, created_at DOUBLE PRECISION NOT NULL)""",
    "CREATE INDEX idempotency_created ON idempotency_keys(created_at)",
    """CREATE TABLE job_prompts (
        job_id TEXT PRIMARY KEY, prompt TEXT NOT NULL, output_nodes TEXT NOT NULL DEFAULT '{}',
        node_stages TEXT NOT NULL DEFAULT '{}', requeue_count INTEGER NOT NULL DEFAULT 0,
        runs INTEGER NOT NULL DEFAULT 0)""",
    """CREATE TABLE output_uploads (
        job_id TEXT NOT NULL, name TEXT NOT NULL, record TEXT NOT NULL, PRIMARY KEY (job_id, name))""",
    """CREATE TABLE webhooks (
        job_id TEXT PRIMARY KEY, url TEXT NOT NULL, events TEXT NOT NULL, created_at DOUBLE PRECISION NOT NULL)""",
    """CREATE TABLE webhook_deliveries (
        id TEXT PRIMARY KEY, job_id TEXT NOT NULL, event TEXT NOT NULL, url TEXT NOT NULL, payload TEXT NOT NULL,
        attempt INTEGER NOT NULL DEFAULT 0, next_attempt_at DOUBLE PRECISION, status TEXT NOT NULL,
        response_code INTEGER, error TEXT, created_at DOUBLE PRECISION NOT NULL,
        updated_at DOUBLE PRECISION NOT NULL, rowid BIGINT GENERATED ALWAYS AS IDENTITY UNIQUE)""",
    "CREATE INDEX webhook_deliveries_due ON webhook_deliveries(status, next_attempt_at)",
    "CREATE INDEX webhook_deliveries_job ON webhook_deliveries(job_id)",
    """CREATE TABLE webhook_attempts (
        delivery_id TEXT NOT NULL, attempt INTEGER NOT NULL, at DOUBLE PRECISION NOT NULL, outcome TEXT NOT NULL,
        response_code INTEGER, error TEXT, duration_s DOUBLE PRECISION, next_attempt_at DOUBLE PRECISION,
        PRIMARY KEY (delivery_id, attempt))""",
)


def _tables(conn: Any) -> None:
    _run(conn, _TABLES)


# --- 1 → 2: SQLite's version 2, the same statements ----------------------------------------
def _list_indexes(conn: Any) -> None:
    _run(conn, LIST_INDEXES)


# --- 2 → 3: claims of a shared queue (repos/claims.py) -------------------------------------
# ``attempt``: how often a server claimed the job (the fencing token of its writes); ``worker``:
# the server that claimed it last; ``lease_until``: the database clock (Unix s) until which that
# claim holds unless renewed (NULL: nobody holds the job).
_CLAIMS = (
    "ALTER TABLE jobs ADD COLUMN attempt INTEGER NOT NULL DEFAULT 0, ADD COLUMN worker TEXT, "
    "ADD COLUMN lease_until DOUBLE PRECISION",
    "CREATE INDEX jobs_by_lease ON jobs(lease_until) WHERE lease_until IS NOT NULL",
)


def _claims(conn: Any) -> None:
    _run(conn, _CLAIMS)


# --- 3 → 4: character profiles (repos/profiles.py; SQLite's migration 3) ----------------------
_PROFILES = (
    """CREATE TABLE profiles (
        id TEXT COLLATE "C" PRIMARY KEY, name TEXT NOT NULL, status TEXT NOT NULL, trigger_word TEXT NOT NULL,
        lora_name TEXT, voice_path TEXT, voice_transcript TEXT, reference_photo TEXT, photos TEXT NOT NULL,
        options TEXT NOT NULL, training_job_id TEXT, error TEXT, storage TEXT, created_at DOUBLE PRECISION NOT NULL,
        updated_at DOUBLE PRECISION NOT NULL)""",
    "CREATE INDEX profiles_by_created ON profiles(created_at, id)",
    "CREATE INDEX profiles_by_job ON profiles(training_job_id)",
)


def _profiles(conn: Any) -> None:
    _run(conn, _PROFILES)


# --- 4 → 5: the servers of a shared queue and what a job requires of them (repos/servers.py) --
# ``servers``: one row per server, written by its heartbeat (``last_heartbeat``: the database's
# clock, Unix s); ``models``: the model names it has on disk; ``busy``: its ComfyUI runs something.
# ``jobs.requires``: the models a job needs; only a server whose ``models`` hold them claims it.
_SERVERS = (
    """CREATE TABLE servers (
        id TEXT PRIMARY KEY, host TEXT NOT NULL, models TEXT[] NOT NULL DEFAULT '{}',
        pipelines TEXT[] NOT NULL DEFAULT '{}', busy BOOLEAN NOT NULL DEFAULT FALSE, running TEXT[] NOT NULL DEFAULT '{}',
        started_at DOUBLE PRECISION NOT NULL, last_heartbeat DOUBLE PRECISION NOT NULL)""",
    "ALTER TABLE jobs ADD COLUMN requires TEXT[] NOT NULL DEFAULT '{}'",
)


def _servers(conn: Any) -> None:
    _run(conn, _SERVERS)


# --- 5 → 6: a profile's fine-tuned F5-TTS voice (SQLite's migration 4) -------------------------
def _profile_voice_model(conn: Any) -> None:
    _run(conn, ("ALTER TABLE profiles ADD COLUMN voice_model TEXT",))


PG_MIGRATIONS: tuple[PgMigration, ...] = (_tables, _list_indexes, _claims, _profiles, _servers, _profile_voice_model)
