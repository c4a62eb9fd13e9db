"""Job retention: finished jobs older than ``Settings.job_retention_days`` (default 30) expire.

An expired job keeps its record (status ``expired``, with what it had been in its message) but
loses its files: its output folder ``<output>/myspinbot/<id>/`` and its upload folder
``<input>/myspinbot/<id>/``. Shared uploads (``<input>/myspinbot/assets/``) are never removed:
other jobs may use them. Age counts from when the job finished.

``MYSPINBOT_JOB_RETENTION_DAYS`` (read into ``Settings``): days (a decimal number is fine);
``0``, a negative number, ``off`` or ``never`` keep jobs forever. The sweep runs when the
server starts and every ``MYSPINBOT_JOB_RETENTION_SWEEP_S`` seconds (default 3600) after that.
The status change goes through ``JobService.lifecycle`` (``expire``), which saves and publishes it.
"""

from __future__ import annotations

import logging
import shutil
from typing import TYPE_CHECKING, Callable

from .jobs.layout import INPUT_SUBDIR, JOB_ID, job_folder
from .periodic import Periodic
from .model import CANCELED, EXPIRED, FAILED, SUCCEEDED, Job
from .settings import DEFAULT_RETENTION_DAYS, DEFAULT_RETENTION_SWEEP_S, Settings

if TYPE_CHECKING:
    from .jobs import JobService

log = logging.getLogger("myspinbot.retention")

DEFAULT_SWEEP_INTERVAL_S = DEFAULT_RETENTION_SWEEP_S
EXPIRABLE = (SUCCEEDED, FAILED, CANCELED)
_BATCH = 200


class Retention:
    def __init__(self, service: "JobService", days: float | None = DEFAULT_RETENTION_DAYS,
                 interval_s: float = DEFAULT_SWEEP_INTERVAL_S, clock: Callable[[], float] | None = None):
        self.service = service
        self.days = days
        self.interval_s = interval_s
        self.clock = clock or service.clock
        self._periodic = Periodic("myspinbot-retention", self.sweep, lambda: self.interval_s, first_now=True,
                                  failure="job retention sweep failed")

    @classmethod
    def from_settings(cls, service: "JobService", settings: Settings) -> "Retention":
        """Days and sweep interval from ``settings`` (``job_retention_days`` None: keep forever)."""
        return cls(service, settings.job_retention_days, settings.job_retention_sweep_s)

    def sweep(self) -> list[str]:
        """Expire every finished job older than the retention now; returns their ids."""
        if self.days is None:
            return []
        cutoff = self.clock() - self.days * 86400.0
        expired: list[str] = []
        while True:
            batch = self.service.store.finished_before(EXPIRABLE, cutoff, limit=_BATCH)
            for job in batch:
                if self.expire(job):
                    expired.append(job.id)
            if len(batch) < _BATCH:
                break
        if expired:
            log.info("myspinbot: %d job(s) older than %g days expired; their files were removed", len(expired), self.days)
        if self.service.files is not None:
            self.drop_copies()
        return expired

    def drop_copies(self) -> list[str]:
        """A shared queue: remove this server's folders of jobs expired by any server (the inputs
        it fetched, the outputs it ran or downloaded); returns those job ids."""
        host, dropped = self.service.host, set()
        for root in (host.output_dir, host.input_dir):
            base = root / INPUT_SUBDIR
            names = [p.name for p in base.iterdir() if p.is_dir() and JOB_ID.match(p.name)] if base.is_dir() else []
            for job_id in names:
                job = self.service.store.get(job_id)
                folder = job_folder(root, job_id)
                if job is not None and job.status == EXPIRED and folder is not None:
                    shutil.rmtree(folder, ignore_errors=True)
                    dropped.add(job_id)
        return sorted(dropped)

    def expire(self, job: Job) -> bool:
        """Mark ``job`` expired (first, so a crash in between never leaves a job that claims files
        it no longer has), then remove its own input and output folders. With a shared queue
        (PostgreSQL) the row is locked and read again first: a job another server's sweep expired
        meanwhile is left alone (returns False)."""
        store = self.service.store
        if store.claims is None:
            self.service.lifecycle.expire(job, self._message(job))  # saves through store.expire: one transaction
        else:
            with store.db.transaction():
                job = store.claims.lock(job.id)
                if job is None or job.status not in EXPIRABLE:
                    return False
                self.service.lifecycle.expire(job, self._message(job))
        host = self.service.host
        for root in (host.output_dir, host.input_dir):
            folder = job_folder(root, job.id)
            if folder is not None:
                shutil.rmtree(folder, ignore_errors=True)
        if self.service.files is not None:  # a shared queue: its objects too (jobs/<id>/, its uploads)
            self.service.files.forget_job(job.id)
        return True

    def _message(self, job: Job) -> str:
        return f"expired: finished {job.status} more than {self.days:g} days ago; its files were removed"

    # --- the periodic task ---------------------------------------------------------------
    def start(self) -> None:
        """Sweep now and then every ``interval_s`` on the running loop (no-op when retention is off)."""
        if self.days is not None:
            self._periodic.start()

    async def stop(self) -> None:
        await self._periodic.stop()
