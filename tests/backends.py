"""The job store's two backends for tests that must behave the same on both (``open_store``)."""

from __future__ import annotations

from pathlib import Path


BACKENDS = ("sqlite", "postgresql")


def new_store(backend: str, request, folder: Path):
    """A new, empty ``JobStore`` on ``backend``: a SQLite file in ``folder``, or a fresh database
    on the session's PostgreSQL server (``postgres_server``; skipped loudly without one)."""
    from myspinbot.server.store import JobStore

    if backend == "sqlite":
        return JobStore(folder / "jobs.sqlite3")
    from myspinbot.server.pg_db import PgDatabase

    return JobStore(PgDatabase(request.getfixturevalue("postgres_server").create_database()))
