"""Job retention: finished jobs older than ``MYSPINBOT_JOB_RETENTION_DAYS`` (default 30) expire.

An expired job keeps its record (status ``expired``, with what it had been in its message) but
loses its files: its output folder ``<output>/myspinbot/<id>/`` and its upload folder
``<input>/myspinbot/<id>/``. Shared uploads (``<input>/myspinbot/assets/``) are never removed:
other jobs may use them. Age counts from when the job finished.

``MYSPINBOT_JOB_RETENTION_DAYS``: days (a decimal number is fine); ``0``, a negative number,
``off`` or ``never`` keep jobs forever. The sweep runs when the server starts and every
``MYSPINBOT_JOB_RETENTION_SWEEP_S`` seconds (default 3600) after that.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
from typing import TYPE_CHECKING, Callable

from .events import STATUS
from .model import CANCELED, EXPIRED, FAILED, SUCCEEDED, Job
from .recovery import job_folder

if TYPE_CHECKING:
    from .jobs import JobService

log = logging.getLogger("myspinbot.retention")

DEFAULT_RETENTION_DAYS = 30.0
DEFAULT_SWEEP_INTERVAL_S = 3600.0
EXPIRABLE = (SUCCEEDED, FAILED, CANCELED)
_BATCH = 200


def _env_float(name: str, default: float) -> str | float:
    raw = os.environ.get(name, "").strip()
    return raw if raw else default


def retention_days_from_env() -> float | None:
    """``MYSPINBOT_JOB_RETENTION_DAYS`` in days, None to keep jobs forever; a bad value falls back to 30."""
    raw = _env_float("MYSPINBOT_JOB_RETENTION_DAYS", DEFAULT_RETENTION_DAYS)
    if isinstance(raw, str) and raw.lower() in ("off", "never", "none", "forever"):
        return None
    try:
        days = float(raw)
        if days != days or days == float("inf"):
            raise ValueError(raw)
    except ValueError:
        log.warning("myspinbot: ignoring MYSPINBOT_JOB_RETENTION_DAYS=%r (want a number of days, or 'off'); using %g",
                    raw, DEFAULT_RETENTION_DAYS)
        return DEFAULT_RETENTION_DAYS
    return days if days > 0 else None


def sweep_interval_from_env() -> float:
    raw = _env_float("MYSPINBOT_JOB_RETENTION_SWEEP_S", DEFAULT_SWEEP_INTERVAL_S)
    try:
        value = float(raw)
        if not value > 0 or value == float("inf"):
            raise ValueError(raw)
        return value
    except ValueError:
        log.warning("myspinbot: ignoring MYSPINBOT_JOB_RETENTION_SWEEP_S=%r; using %g", raw, DEFAULT_SWEEP_INTERVAL_S)
        return DEFAULT_SWEEP_INTERVAL_S


class Retention:
    def __init__(self, service: "JobService", days: float | None = DEFAULT_RETENTION_DAYS,
                 interval_s: float = DEFAULT_SWEEP_INTERVAL_S, clock: Callable[[], float] | None = None):
        self.service = service
        self.days = days
        self.interval_s = interval_s
        self.clock = clock or service.clock
        self._task: asyncio.Task | None = None

    @classmethod
    def from_env(cls, service: "JobService") -> "Retention":
        return cls(service, retention_days_from_env(), sweep_interval_from_env())

    def sweep(self) -> list[str]:
        """Expire every finished job older than the retention now; returns their ids."""
        if self.days is None:
            return []
        cutoff = self.clock() - self.days * 86400.0
        expired: list[str] = []
        while True:
            batch = self.service.store.finished_before(EXPIRABLE, cutoff, limit=_BATCH)
            for job in batch:
                self.expire(job)
                expired.append(job.id)
            if len(batch) < _BATCH:
                break
        if expired:
            log.info("myspinbot: %d job(s) older than %g days expired; their files were removed", len(expired), self.days)
        return expired

    def expire(self, job: Job) -> None:
        """Mark ``job`` expired (first, so a crash in between never leaves a job that claims files
        it no longer has), then remove its own input and output folders."""
        was = job.status
        job.status = EXPIRED
        job.outputs = []
        job.message = f"expired: finished {was} more than {self.days:g} days ago; its files were removed"
        self.service.store.expire(job)  # the row and the rows only a live job needs, in one transaction
        host = self.service.host
        for root in (host.output_dir, host.input_dir):
            folder = job_folder(root, job.id)
            if folder is not None:
                shutil.rmtree(folder, ignore_errors=True)
        self.service.events.publish(STATUS, job)

    # --- the periodic task ---------------------------------------------------------------
    def start(self) -> None:
        """Sweep now and then every ``interval_s`` on the running loop (no-op when retention is off)."""
        if self.days is None or self._task is not None:
            return
        self._task = asyncio.get_running_loop().create_task(self._loop(), name="myspinbot-retention")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _loop(self) -> None:
        while True:
            try:
                self.sweep()
            except Exception:  # a failed sweep is retried at the next interval
                log.exception("myspinbot: job retention sweep failed")
            await asyncio.sleep(self.interval_s)
