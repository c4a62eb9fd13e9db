"""The servers of a shared queue and what a job requires of them (PostgreSQL only: ``pg_migrations._servers``).

Each server's heartbeat (``jobs/claiming.py``) upserts its row of ``servers``: host, the models
it has on disk, the pipelines it claims, whether its ComfyUI is busy and which jobs it holds,
and ``last_heartbeat`` on the database's clock. A server is *live* while its last heartbeat is
younger than the lease (``live``). ``jobs.requires`` holds the models a job needs
(``set_requires``); ``ClaimsRepo.claim`` only hands a job to a server whose models hold them.
"""

from __future__ import annotations

from dataclasses import dataclass

from .claims import DB_NOW


@dataclass(frozen=True)
class ServerRow:
    """One server of the shared queue as its last heartbeat left it; times: Unix seconds (the database's clock)."""

    id: str
    host: str
    models: tuple[str, ...]
    pipelines: tuple[str, ...]
    busy: bool
    running: tuple[str, ...]
    started_at: float
    last_heartbeat: float
    age_s: float
    """Seconds since the last heartbeat, on the database's clock."""

    def to_dict(self, live_s: float) -> dict:
        return {"id": self.id, "host": self.host, "models": list(self.models), "pipelines": list(self.pipelines),
                "state": "busy" if self.busy else "idle", "running": list(self.running), "started_at": self.started_at,
                "last_heartbeat": self.last_heartbeat, "live": self.age_s <= live_s}


class ServersRepo:
    """The ``servers`` table and ``jobs.requires`` over a ``PgDatabase``."""

    def __init__(self, db):
        self.db = db

    def beat(self, server_id: str, host: str, models: list[str], pipelines: list[str], busy: bool,
             running: list[str], started_at: float) -> None:
        """Record this server's heartbeat (insert or update its row); ``started_at``: when its process started."""
        with self.db.transaction() as conn:
            conn.execute(
                "INSERT INTO servers (id, host, models, pipelines, busy, running, started_at, last_heartbeat) "
                f"VALUES (?, ?, ?, ?, ?, ?, ?, {DB_NOW}) ON CONFLICT (id) DO UPDATE SET host = excluded.host, "
                "models = excluded.models, pipelines = excluded.pipelines, busy = excluded.busy, "
                "running = excluded.running, started_at = excluded.started_at, last_heartbeat = excluded.last_heartbeat",
                (server_id, host, sorted(models), sorted(pipelines), busy, sorted(running), started_at))

    def all(self) -> list[ServerRow]:
        """Every server that ever beat, by id."""
        with self.db.read() as conn:
            rows = conn.execute("SELECT id, host, models, pipelines, busy, running, started_at, last_heartbeat, "
                                f"{DB_NOW} - last_heartbeat FROM servers ORDER BY id").fetchall()
        return [ServerRow(r[0], r[1], tuple(r[2]), tuple(r[3]), bool(r[4]), tuple(r[5]), r[6], r[7], r[8]) for r in rows]

    def any_live_with(self, models: list[str], live_s: float, pipeline: str | None = None) -> bool:
        """True when a server that beat within ``live_s`` seconds has every model of ``models``
        (and claims ``pipeline``, when given)."""
        only = " AND ? = ANY(pipelines)" if pipeline else ""
        with self.db.read() as conn:
            row = conn.execute(f"SELECT 1 FROM servers WHERE last_heartbeat >= {DB_NOW} - ? AND models @> ?::text[]"
                               f"{only} LIMIT 1", (live_s, sorted(models), *((pipeline,) if pipeline else ()))).fetchone()
        return row is not None

    def set_requires(self, job_id: str, models: list[str]) -> None:
        """The models ``job_id`` needs: only a server that has them all claims it."""
        with self.db.transaction() as conn:
            conn.execute("UPDATE jobs SET requires = ? WHERE id = ?", (sorted(models), job_id))

    def requires(self, job_id: str) -> list[str]:
        with self.db.read() as conn:
            row = conn.execute("SELECT requires FROM jobs WHERE id = ?", (job_id,)).fetchone()
        return list(row[0]) if row else []
