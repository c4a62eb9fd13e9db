"""The only code that changes a job's status.

Every change is one method here: it checks the change against ``TRANSITIONS``, updates the job,
saves it and publishes it (``events.STATUS``; a success also publishes its final ``PROGRESS``
and one ``OUTPUT`` per output). A change the table does not allow raises
``IllegalTransition``: callers read the job first and only ask for changes that apply.

    queue         (new)                        → queued
    start         queued                       → running
    begin_cancel  queued, running              → canceling
    succeed       queued, running, canceling   → succeeded
    fail          queued, running, canceling   → failed
    cancel        queued, running, canceling   → canceled
    lose          queued, running              → failed   (code ``lost_on_restart``)
    abandon       queued, running              → failed   (code ``lost_worker``; the ``lose`` change)
    requeue       queued, running              → queued   (a restart queues it again)
    expire        succeeded, failed, canceled  → expired

``progress`` changes no status (a queued job is started first); it saves the job and publishes
a ``PROGRESS`` event, throttled per job. A new job's ``queue`` publishes nothing: nobody can
have subscribed to it yet, and webhooks report changes from there on.

All methods run on the event loop's thread.
"""

from __future__ import annotations

import logging
from typing import Any, Callable

from ..events import OUTPUT, PROGRESS, STAGE, STATUS, JobEvents
from ..model import CANCELED, CANCELING, EXPIRED, FAILED, QUEUED, RUNNING, STORE_STAGE, SUCCEEDED, TERMINAL, Job, Output
from ..store import JobStore
from .throttle import PROGRESS_INTERVAL_S, ProgressThrottle

log = logging.getLogger("myspinbot.jobs")

NEW = None
"""The "status" of a job that has no record yet."""

TRANSITIONS: dict[str, tuple[frozenset[str | None], str]] = {
    "queue": (frozenset({NEW}), QUEUED),
    "start": (frozenset({QUEUED}), RUNNING),
    "begin_cancel": (frozenset({QUEUED, RUNNING}), CANCELING),
    "succeed": (frozenset({QUEUED, RUNNING, CANCELING}), SUCCEEDED),
    "fail": (frozenset({QUEUED, RUNNING, CANCELING}), FAILED),
    "cancel": (frozenset({QUEUED, RUNNING, CANCELING}), CANCELED),
    "lose": (frozenset({QUEUED, RUNNING}), FAILED),
    "requeue": (frozenset({QUEUED, RUNNING}), QUEUED),
    "expire": (frozenset({SUCCEEDED, FAILED, CANCELED}), EXPIRED),
}
"""Change name → (the statuses it may start from, the status it ends in)."""

LOST = "lost_on_restart"
"""The error code of a job that a ComfyUI restart cut short and that was not run again."""
QUEUED_MESSAGE = "waiting in ComfyUI's queue"
REQUEUED_MESSAGE = "queued again after a ComfyUI restart"
LOST_WORKER = "lost_worker"
"""The error code of a shared-queue job whose server stopped renewing its claim too many times."""
RECLAIMED_MESSAGE = "queued again: the server running it stopped answering"


class IllegalTransition(RuntimeError):
    """A status change ``TRANSITIONS`` does not allow (a bug in the caller, never a client error)."""

    def __init__(self, job: Job | None, change: str, status: str | None):
        super().__init__(f"job {job.id if job else '?'}: cannot {change} a job that is {status or 'new'}")
        self.change, self.status = change, status


class JobLifecycle:
    """Status changes of jobs: saved in ``store``, published on ``events``; times from ``clock`` (Unix s)."""

    def __init__(self, store: JobStore, events: JobEvents, clock: Callable[[], float],
                 progress_interval_s: float = PROGRESS_INTERVAL_S):
        self.store = store
        self.events = events
        self.clock = clock
        self.throttle = ProgressThrottle(lambda job: self.events.publish(PROGRESS, job), progress_interval_s)

    # --- the changes ---------------------------------------------------------------------
    def queue(self, job: Job) -> Job:
        """Record a new job (no record with its id yet) as ``queued``, with ``QUEUED_MESSAGE``
        unless it has a message."""
        existing = self.store.get(job.id)
        self._check(job, "queue", existing.status if existing else NEW)
        job.status = QUEUED
        job.message = job.message or QUEUED_MESSAGE
        self.store.save(job)
        return job

    def start(self, job: Job, message: str = "started") -> Job:
        """``queued`` → ``running``: ``started_at`` set, the prompt's run counted (recovery limits re-runs by it)."""
        self._change(job, "start", message=message, started_at=self.clock())
        self.store.save(job)
        self.store.count_run(job.id)
        self.events.publish(STATUS, job)
        return job

    def begin_cancel(self, job: Job) -> Job:
        """``canceling``: a cancel was signalled to a running prompt; the job ends when ComfyUI reports it."""
        self._change(job, "begin_cancel", message=CANCELING)  # the message says the status
        return self._publish(job)

    def succeed(self, job: Job, outputs: list[Output]) -> Job:
        """Done with every output recorded: progress 1, the ``store`` stage, one ``OUTPUT`` event per output."""
        self._change(job, "succeed", outputs=outputs, error=None, progress=1.0, stage=STORE_STAGE,
                     message=f"done: {len(outputs)} output{'s' if len(outputs) != 1 else ''} stored")
        return self._finish(job)

    def fail(self, job: Job, error: dict[str, Any], outputs: list[Output] | None = None) -> Job:
        """Failed with ``error`` (``{"code", "message", "details"}``); ``outputs``: what it did write."""
        changes: dict[str, Any] = {"error": error, "message": error.get("message") or FAILED}
        if outputs is not None:
            changes["outputs"] = outputs
        self._change(job, "fail", **changes)
        return self._finish(job)

    def cancel(self, job: Job, message: str | None = None) -> Job:
        """Canceled (``message`` says why; default: the status itself)."""
        self._change(job, "cancel", error=None, message=message or CANCELED)
        return self._finish(job)

    def lose(self, job: Job, why: str, details: dict[str, Any]) -> Job:
        """Failed with ``lost_on_restart``: a restart cut it short and it is not run again (``why``)."""
        error = {"code": LOST, "message": f"ComfyUI restarted before the job finished; it was not run again: {why}",
                 "details": details}
        self._change(job, "lose", error=error, message=error["message"])
        return self._finish(job)

    def abandon(self, job: Job, attempts: int) -> Job:
        """Failed with ``lost_worker``: servers of a shared queue claimed it ``attempts`` times and
        each stopped renewing the claim before the job finished; it is not run again."""
        error = {"code": LOST_WORKER, "message": f"the servers that claimed it stopped answering {attempts} "
                                                 "time(s); it was not run again", "details": {"attempts": attempts}}
        self._change(job, "lose", error=error, message=error["message"])
        return self._finish(job)

    def requeue(self, job: Job, progress_detail: dict[str, Any], message: str = REQUEUED_MESSAGE) -> Job:
        """Back to a fresh ``queued`` after a restart (or a reclaim: ``message``): progress, stage,
        times and outputs cleared."""
        self._change(job, "requeue", started_at=None, completed_at=None, progress=0.0, stage=None, outputs=[],
                     error=None, message=message, progress_detail=progress_detail)
        return self._publish(job)

    def expire(self, job: Job, message: str) -> Job:
        """Past its retention: ``expired``, its outputs forgotten (the caller removes the files after)."""
        self._change(job, "expire", outputs=[], message=message)
        self.store.expire(job)  # the row, and the rows only a live job needs dropped, in one transaction
        self.events.publish(STATUS, job)
        return job

    def progress(self, job: Job, value: float, detail: dict[str, Any], stage: Any = None) -> Job:
        """Record a progress reading (``value`` 0..1, ``detail`` as ``progress.Measure``) of a live
        job; ``stage`` (a ``pipelines.Stage``) when the job just reached it. A queued job is
        started first. Saves; publishes ``PROGRESS`` (throttled) to the job's subscribers."""
        if job.status in TERMINAL:
            raise IllegalTransition(job, "progress", job.status)
        if stage is not None:
            job.stage = stage.name
            if job.status != CANCELING:
                job.message = stage.message
            self.events.notify(STAGE, job)  # listeners (metrics) time the stages
        job.progress, job.progress_detail = value, detail
        if job.status == QUEUED:
            self.start(job, message=job.message if job.stage else "started")
        else:
            self.store.save(job)
        if self.events.has_subscribers(job.id):
            self.throttle.offer(job)
        return job

    # --- helpers -------------------------------------------------------------------------
    def _check(self, job: Job, change: str, status: str | None) -> str:
        sources, target = TRANSITIONS[change]
        if status not in sources:
            raise IllegalTransition(job, change, status)
        return target

    def _change(self, job: Job, change: str, **fields: Any) -> None:
        """Check and apply a change to ``job`` in memory (the caller saves)."""
        job.status = self._check(job, change, job.status)
        for name, value in fields.items():
            setattr(job, name, value)

    def _publish(self, job: Job) -> Job:
        self.store.save(job)
        self.events.publish(STATUS, job)
        return job

    def _finish(self, job: Job) -> Job:
        """A final status: ``completed_at`` set and saved, held-back progress dropped, events out."""
        job.completed_at = self.clock()
        self.store.save(job)
        log.info("myspinbot: job %s %s", job.id, job.status)
        self.throttle.close(job.id)
        if job.status == SUCCEEDED:
            self.events.publish(PROGRESS, job)
            for output in job.outputs:
                self.events.publish(OUTPUT, job, output)
        self.events.publish(STATUS, job)
        return job
