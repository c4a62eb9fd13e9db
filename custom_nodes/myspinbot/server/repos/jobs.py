"""The ``jobs`` table: one row per job, and the queries of the job list, recovery and retention.

Listing reads one index range per (status, pipeline) value pair asked for (``page_sql``: each
shape is served by an index of ``migrations._list_indexes`` in list order, so a page costs
``limit`` rows per pair whatever the history holds) and merges them newest first.
"""

from __future__ import annotations

import heapq
import itertools
import json
from dataclasses import asdict

from ..db import Database
from ..model import Job, Output

COLUMNS = ("id", "pipeline", "status", "created_at", "started_at", "completed_at", "progress", "params", "outputs",
           "error", "stage", "message", "progress_detail")
_SELECT = f"SELECT {', '.join(COLUMNS)} FROM jobs"
_CREATED, _ID = COLUMNS.index("created_at"), COLUMNS.index("id")
_UPSERT = (f"INSERT INTO jobs ({', '.join(COLUMNS)}) VALUES ({', '.join('?' * len(COLUMNS))}) ON CONFLICT(id) DO UPDATE SET "
           + ", ".join(f"{c} = excluded.{c}" for c in COLUMNS[1:]))
_FINISHED_AT = "COALESCE(completed_at, created_at)"


def page_sql(*, status: bool, pipeline: bool, cursor: bool) -> str:
    """The statement reading one (status, pipeline) pair of a list page, newest first.

    Parameters, in order: the status (if ``status``), the pipeline (if ``pipeline``), the
    cursor's ``created_at`` and ``id`` (if ``cursor``: rows strictly older), the row limit."""
    where = [c for c, on in (("status = ?", status), ("pipeline = ?", pipeline), ("(created_at, id) < (?, ?)", cursor)) if on]
    return (_SELECT + (" WHERE " + " AND ".join(where) if where else "")
            + " ORDER BY created_at DESC, id DESC LIMIT ?")


def finished_sql() -> str:
    """The statement reading finished jobs of one status that finished before a time, oldest
    first. Parameters: the status, the time (Unix seconds), the row limit."""
    return f"{_SELECT} WHERE status = ? AND {_FINISHED_AT} < ? ORDER BY {_FINISHED_AT} LIMIT ?"


class JobsRepo:
    """Reads and writes :class:`Job` rows."""

    def __init__(self, db: Database):
        self.db = db

    def save(self, job: Job) -> None:
        """Insert the job or replace every column of its row."""
        with self.db.transaction() as conn:
            conn.execute(_UPSERT, _to_row(job))

    def get(self, job_id: str) -> Job | None:
        with self.db.read() as conn:
            row = conn.execute(f"{_SELECT} WHERE id = ?", (job_id,)).fetchone()
        return _to_job(row) if row else None

    def delete(self, job_id: str) -> None:
        """Remove the job's row only (``JobStore.delete`` removes its other rows with it)."""
        with self.db.transaction() as conn:
            conn.execute("DELETE FROM jobs WHERE id = ?", (job_id,))

    def with_status(self, *statuses: str) -> list[Job]:
        """Every job in one of ``statuses``, oldest first."""
        marks = ", ".join("?" * len(statuses))
        with self.db.read() as conn:
            rows = conn.execute(f"{_SELECT} WHERE status IN ({marks}) ORDER BY created_at", statuses).fetchall()
        return [_to_job(r) for r in rows]

    def count_status(self, *statuses: str) -> int:
        marks = ", ".join("?" * len(statuses))
        with self.db.read() as conn:
            return conn.execute(f"SELECT COUNT(*) FROM jobs WHERE status IN ({marks})", statuses).fetchone()[0]

    def page(self, *, statuses: tuple[str, ...] = (), pipelines: tuple[str, ...] = (), limit: int = 20,
             after: tuple[float, str] | None = None) -> list[Job]:
        """Up to ``limit`` jobs, newest first (``created_at`` then ``id``, both descending), in one
        of ``statuses`` and ``pipelines`` (either empty: any), strictly after the ``(created_at,
        id)`` of the last job of the previous page."""
        statuses, pipelines = tuple(dict.fromkeys(statuses)), tuple(dict.fromkeys(pipelines))
        cursor = tuple(after) if after is not None else ()
        sql = page_sql(status=bool(statuses), pipeline=bool(pipelines), cursor=bool(cursor))
        with self.db.read() as conn:
            if pipelines:  # a pipeline no job ran adds nothing: skip its reads (the query may name many)
                pipelines = tuple(p for p in pipelines
                                  if conn.execute("SELECT 1 FROM jobs WHERE pipeline = ? LIMIT 1", (p,)).fetchone())
                if not pipelines:
                    return []
            pairs = itertools.product(*(values for values in (statuses, pipelines) if values))
            arms = [conn.execute(sql, (*pair, *cursor, limit)).fetchall() for pair in pairs]
        newest = heapq.merge(*arms, key=lambda r: (r[_CREATED], r[_ID]), reverse=True)
        return [_to_job(r) for r in itertools.islice(newest, limit)]

    def finished_before(self, statuses: tuple[str, ...], before: float, limit: int = 500) -> list[Job]:
        """Jobs in ``statuses`` that finished (or, lacking ``completed_at``, were created) before
        ``before`` (Unix seconds), oldest first, at most ``limit``."""
        finished = COLUMNS.index("completed_at")
        with self.db.read() as conn:
            arms = [conn.execute(finished_sql(), (status, before, limit)).fetchall() for status in dict.fromkeys(statuses)]
        oldest = heapq.merge(*arms, key=lambda r: r[finished] if r[finished] is not None else r[_CREATED])
        return [_to_job(r) for r in itertools.islice(oldest, limit)]


def _to_row(job: Job) -> tuple:
    return (job.id, job.pipeline, job.status, job.created_at, job.started_at, job.completed_at, job.progress,
            json.dumps(job.params), json.dumps([asdict(o) for o in job.outputs]),
            json.dumps(job.error) if job.error is not None else None, job.stage, job.message,
            json.dumps(job.progress_detail) if job.progress_detail else None)


def _to_job(row: tuple) -> Job:
    values = dict(zip(COLUMNS, row))
    return Job(
        id=values["id"], pipeline=values["pipeline"], status=values["status"], created_at=values["created_at"],
        started_at=values["started_at"], completed_at=values["completed_at"], progress=values["progress"],
        params=json.loads(values["params"]),
        outputs=[Output(**o) for o in json.loads(values["outputs"])],
        error=json.loads(values["error"]) if values["error"] else None,
        stage=values["stage"], message=values["message"],
        progress_detail=json.loads(values["progress_detail"]) if values["progress_detail"] else {},
    )
