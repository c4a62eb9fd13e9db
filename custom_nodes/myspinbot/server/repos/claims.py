"""Claims of jobs by servers sharing one queue (PostgreSQL only: ``pg_migrations._claims``).

A server claims the oldest queued job nobody holds (``claim``: ``SELECT ... FOR UPDATE SKIP
LOCKED``, so two servers never claim the same job and neither waits for the other). The claim
is a lease: it holds until ``lease_until`` (the database's clock, so servers' clocks never have
to agree) unless ``renew`` extends it. Each claim counts one more ``attempt``; the attempt is the
fencing token of the holder's writes (``save_fenced``): a write is applied only while the row
still names the same attempt and worker and the lease has not run out, so a server that stalled
past its lease (or whose job another server reclaimed) can no longer record progress, outputs
or success. ``expired`` hands the jobs whose lease ran out to the reclaimer (``jobs/claiming.py``),
which settles them through the lifecycle and ``drop_lease``.

``lease_until`` NULL means nobody holds the job; ``worker`` keeps the last server that claimed it.
"""

from __future__ import annotations

from typing import NamedTuple

from ..model import CANCELING, QUEUED, RUNNING, TERMINAL, Job
from ..pg_listen import QUEUE_CHANNEL, notify
from .jobs import COLUMNS, _to_job, _to_row

DB_NOW = "EXTRACT(EPOCH FROM clock_timestamp())::double precision"
"""The database's clock in Unix seconds (every lease is measured on it)."""
LIVE = (QUEUED, RUNNING, CANCELING)
_SELECT = ", ".join(f"jobs.{c}" for c in COLUMNS) + ", jobs.attempt, jobs.worker, jobs.lease_until"
_FENCE = f"id = ? AND attempt = ? AND worker = ? AND lease_until >= {DB_NOW}"


class Claim(NamedTuple):
    """A server's hold on a job: ``attempt`` (1 for the first claim) fences its writes."""

    job_id: str
    attempt: int
    worker: str
    lease_until: float  # the database's clock, Unix seconds


class ClaimsRepo:
    """The claim columns of ``jobs`` (``attempt``, ``worker``, ``lease_until``) over a ``PgDatabase``."""

    def __init__(self, db):
        self.db = db

    def claim(self, worker: str, lease_s: float, pipelines: tuple[str, ...] | None = None,
              models: list[str] | None = None) -> tuple[Job, Claim] | None:
        """Claim the oldest queued job that nobody holds (of ``pipelines`` only, when given; only
        one whose required models, ``jobs.requires``, are all in ``models``, when given) for
        ``worker``, for ``lease_s`` seconds; None when there is none (or every one is being
        claimed by another server right now)."""
        if pipelines is not None and not pipelines:
            return None
        only = f" AND pipeline IN ({', '.join('?' * len(pipelines))})" if pipelines else ""
        if models is not None:
            only += " AND requires <@ ?::text[]"
        sql = (f"UPDATE jobs SET attempt = attempt + 1, worker = ?, lease_until = {DB_NOW} + ? "
               f"WHERE id = (SELECT id FROM jobs WHERE status = ? AND lease_until IS NULL{only} "
               "AND EXISTS (SELECT 1 FROM job_prompts WHERE job_prompts.job_id = jobs.id) "
               "ORDER BY created_at, id LIMIT 1 FOR UPDATE SKIP LOCKED) "
               f"RETURNING {_SELECT}")
        with self.db.transaction() as conn:
            row = conn.execute(sql, (worker, lease_s, QUEUED, *(pipelines or ()),
                                     *((sorted(models),) if models is not None else ()))).fetchone()
        return _split(row) if row else None

    def renew(self, claim: Claim, lease_s: float) -> tuple[Claim, str] | None:
        """Extend a live claim to ``lease_s`` seconds from now; returns it renewed and the job's
        status (another server may have asked to cancel it), or None when the claim is lost
        (reclaimed, or its lease ran out first)."""
        with self.db.transaction() as conn:
            row = conn.execute(f"UPDATE jobs SET lease_until = {DB_NOW} + ? WHERE {_FENCE} RETURNING lease_until, status",
                               (lease_s, claim.job_id, claim.attempt, claim.worker)).fetchone()
        return (claim._replace(lease_until=row[0]), row[1]) if row else None

    def save_fenced(self, job: Job, claim: Claim) -> bool:
        """Write every column of ``job`` only if ``claim`` still holds it; a finished job's lease
        is released in the same statement. False (nothing written) when the claim is lost.

        A ``running`` job stays ``canceling`` when another server asked to cancel it since the
        holder read it (the holder sees it at its next heartbeat and interrupts the prompt)."""
        row = dict(zip(COLUMNS, _to_row(job)))
        sets = ", ".join("status = CASE WHEN jobs.status = ? AND ? = ? THEN jobs.status ELSE ? END" if c == "status"
                         else f"{c} = ?" for c in COLUMNS[1:])
        values = [v for c in COLUMNS[1:] for v in ((CANCELING, row[c], RUNNING, row[c]) if c == "status" else (row[c],))]
        release = ", lease_until = NULL" if job.status in TERMINAL else ""
        with self.db.transaction() as conn:
            done = conn.execute(f"UPDATE jobs SET {sets}{release} WHERE {_FENCE}",
                                (*values, claim.job_id, claim.attempt, claim.worker)).rowcount
        return done == 1

    def lock(self, job_id: str) -> Job | None:
        """The job, its row locked (``FOR UPDATE``) until the enclosing transaction ends: a change
        decided on it cannot race another server's (call it inside ``db.transaction()``)."""
        with self.db.read() as conn:
            if not conn.in_transaction:
                raise RuntimeError("ClaimsRepo.lock locks a row: call it inside db.transaction()")
            row = conn.execute(f"SELECT {_SELECT} FROM jobs WHERE id = ? FOR UPDATE", (job_id,)).fetchone()
        return _split(row)[0] if row else None

    def current(self, job_id: str) -> Claim | None:
        """Who holds the job now (None: nobody, or no such job)."""
        with self.db.read() as conn:
            row = conn.execute("SELECT id, attempt, worker, lease_until FROM jobs WHERE id = ? AND lease_until IS NOT NULL",
                               (job_id,)).fetchone()
        return Claim(*row) if row else None

    def expired(self, limit: int = 50) -> list[tuple[Job, Claim]]:
        """Live jobs whose lease ran out, longest expired first, locked (``FOR UPDATE SKIP
        LOCKED``) until the enclosing transaction ends: call it inside ``db.transaction()`` and
        settle each job there (another server's reclaimer skips them meanwhile)."""
        marks = ", ".join("?" * len(LIVE))
        with self.db.read() as conn:
            if not conn.in_transaction:
                raise RuntimeError("ClaimsRepo.expired locks rows: call it inside db.transaction()")
            rows = conn.execute(f"SELECT {_SELECT} FROM jobs WHERE lease_until < {DB_NOW} AND status IN ({marks}) "
                                "ORDER BY lease_until LIMIT ? FOR UPDATE SKIP LOCKED", (*LIVE, limit)).fetchall()
        return [_split(r) for r in rows]

    def announce(self, job_id: str) -> None:
        """Tell the listening servers a job can be claimed (``pg_listen.QUEUE_CHANNEL``; sent when
        the enclosing transaction, if any, commits)."""
        with self.db.transaction() as conn:
            notify(conn, QUEUE_CHANNEL, job_id)

    def expire_now(self, claim: Claim) -> bool:
        """End ``claim``'s lease now (its holder gives the job up): the next reclaim settles it."""
        with self.db.transaction() as conn:
            return conn.execute(f"UPDATE jobs SET lease_until = {DB_NOW} - 1 WHERE id = ? AND attempt = ? AND worker = ? "
                                "AND lease_until IS NOT NULL", (claim.job_id, claim.attempt, claim.worker)).rowcount == 1

    def drop_lease(self, job_id: str) -> None:
        """Nobody holds the job any more (a queued one can be claimed again)."""
        with self.db.transaction() as conn:
            conn.execute("UPDATE jobs SET lease_until = NULL WHERE id = ?", (job_id,))


def _split(row: tuple) -> tuple[Job, Claim]:
    n = len(COLUMNS)
    job = _to_job(row[:n])
    return job, Claim(job.id, row[n], row[n + 1], row[n + 2])
