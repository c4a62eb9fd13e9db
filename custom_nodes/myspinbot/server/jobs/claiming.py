"""This server's side of a job queue shared by several servers through PostgreSQL.

With ``MYSPINBOT_DATABASE_URL`` a submitted job is only recorded (``queued``, with its prompt);
no server's ComfyUI gets it until a server claims it. ``SharedQueue.tick`` (every
``claim_poll_s``, ``run``) does, in order:

1. ``heartbeat``: renew the lease of every job this server holds; a claim found lost (reclaimed
   by another server, or the lease ran out while this one stalled) is dropped and its prompt
   stopped here (that prompt only); a held job another server asked to cancel (``canceling``)
   has its prompt interrupted here, and the tracker then ends it ``canceled``.
2. ``reclaim``: a held job whose run ended here without its outcome recorded (the database was
   down when it finished) is given up first; then jobs of any server whose lease ran out go back
   to ``queued`` (a fresh attempt),
   or, after ``max_attempts`` claims, end ``failed`` with ``lost_worker``; a ``canceling`` one
   ends ``canceled``.
3. ``claim``: when this server's ComfyUI queue is idle, claim the oldest queued job (of the
   pipelines this server has) and queue its stored prompt here, followed by the tracker like any
   job. Every write for it is fenced by the claim (``JobStore.save``, ``repos/claims.py``).

A round also runs at once when a job becomes claimable anywhere (``LISTEN``: ``pg_listen.py``;
submit and reclaim notify) and when a job ends here.

Status changes go through ``JobLifecycle``; the claim columns through ``ClaimsRepo``. Runs on
the event loop's thread, except the heartbeat and the claim (database only: in a worker thread).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import socket
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable

from ..events import STATUS
from ..host import INTERRUPTED
from ..model import CANCELING, TERMINAL, Job
from ..pg_listen import QUEUE_CHANNEL, Listener
from ..progress import initial_detail
from ..store import Claim, LeaseLost
from .lifecycle import RECLAIMED_MESSAGE
from .shared_files import fetch_job_inputs
from .tracking import Run

if TYPE_CHECKING:
    from ..settings import Settings
    from .service import JobService

log = logging.getLogger("myspinbot.jobs")


@dataclass
class Reclaimed:
    """What one ``reclaim`` did: job ids queued again, failed ``lost_worker``, canceled."""

    requeued: list[str] = field(default_factory=list)
    abandoned: list[str] = field(default_factory=list)
    canceled: list[str] = field(default_factory=list)


class SharedQueue:
    """Claims, leases and reclaims for ``service`` as server ``worker`` (a name unique among the servers).

    ``lease_s``: how long a claim holds without a heartbeat; ``poll_s``: how often ``tick`` runs
    (heartbeats included: keep it well under ``lease_s``); ``max_attempts``: claims a job may
    get before it fails ``lost_worker``; ``pipelines``: the ones this server claims (None: all
    of ``service.pipelines``)."""

    def __init__(self, service: "JobService", worker: str, *, lease_s: float = 30.0, poll_s: float = 2.0,
                 max_attempts: int = 3, pipelines: tuple[str, ...] | None = None,
                 models: Callable[[], list[str]] | None = None):
        # ``service.files`` (object storage): inputs fetched before a claimed job runs, outputs
        # published under the claim's attempt before its success (``shared_files.py``).
        if service.store.claims is None:
            raise ValueError("a shared queue needs the PostgreSQL job store (MYSPINBOT_DATABASE_URL)")
        self.service, self.store, self.claims = service, service.store, service.store.claims
        self.worker, self.lease_s, self.poll_s, self.max_attempts = worker, lease_s, poll_s, max_attempts
        self.pipelines = pipelines if pipelines is not None else tuple(sorted(service.pipelines))
        self._task: asyncio.Task | None = None
        self._wake: asyncio.Event | None = None
        self._listener: Listener | None = None
        self._observing = False
        self.models = models
        """``fn()``: the model names this server has on disk; it only claims jobs that require
        no others (None: any job). Reported by each heartbeat in ``servers`` (``repos/servers.py``)."""
        self.started_at = time.time()
        self._present: list[str] | None = None
        self.files = service.files
        if self.files is not None:
            service.tracking.publish = functools.partial(self.files.publish, self.store)
            service.tracking.published = functools.partial(self.files.clean_after, self.store)
            service.tracking.discard = self.files.drop_attempt

    @classmethod
    def from_settings(cls, service: "JobService", settings: "Settings",
                      models: Callable[[], list[str]] | None = None) -> "SharedQueue":
        """``MYSPINBOT_SERVER_ID`` (default: host name and process id), ``_LEASE_S``, ``_CLAIM_POLL_S``, ``_MAX_ATTEMPTS``."""
        worker = settings.server_id or f"{socket.gethostname()}-{os.getpid()}"
        return cls(service, worker, lease_s=settings.lease_s, poll_s=settings.claim_poll_s,
                   max_attempts=settings.max_attempts, models=models)

    # --- the three steps (synchronous: database only) ------------------------------------
    def beat(self, busy: bool) -> None:
        """Record this server in ``servers``: host, the models it has now, busy or idle, the jobs it holds."""
        if self.store.servers is None:
            return
        self._present = sorted(self.models()) if self.models is not None else []
        self.store.servers.beat(self.worker, socket.gethostname(), self._present, list(self.pipelines), busy,
                                [c.job_id for c in self.store.held()], self.started_at)

    def servers(self) -> list[dict]:
        """Every server of the queue (``repos/servers.py``), live or not (``/capabilities``)."""
        return [row.to_dict(self.lease_s) for row in self.store.servers.all()]

    def claim(self) -> tuple[Job, Claim] | None:
        """Claim the oldest queued job nobody holds (one whose required models this server has);
        this server's writes of it are fenced from now on."""
        present = (self._present if self._present is not None else sorted(self.models())) if self.models else None
        got = self.claims.claim(self.worker, self.lease_s, self.pipelines, present)
        if got is not None:
            self.store.hold(got[1])
        return got

    def heartbeat(self) -> tuple[list[str], list[str]]:
        """Renew every held claim; returns ``(lost, canceling)``: ids whose claim is gone (no
        longer held here: reclaimed, expired, or the job was ended by another server, e.g.
        canceled while it was being claimed) and held ids another server asked to cancel."""
        lost, canceling = [], []
        for claim in self.store.held():
            renewed = self.claims.renew(claim, self.lease_s)
            if renewed is None or renewed[1] in TERMINAL:
                if renewed is not None:
                    self.claims.drop_lease(claim.job_id)
                self.store.unhold(claim.job_id)
                lost.append(claim.job_id)
                continue
            self.store.rehold(renewed[0])
            if renewed[1] == CANCELING:
                canceling.append(claim.job_id)
        return lost, canceling

    def reclaim(self, limit: int = 50) -> Reclaimed:
        """Settle the live jobs whose lease ran out (any server's), in one transaction."""
        done = Reclaimed()
        lifecycle = self.service.lifecycle
        with self.store.db.transaction():
            for job, claim in self.claims.expired(limit):
                self.store.unhold(job.id)  # ours, if this server stalled past its own lease
                if job.status == CANCELING:
                    lifecycle.cancel(job, message="canceled (its server stopped before the cancel finished)")
                    done.canceled.append(job.id)
                elif claim.attempt >= self.max_attempts:
                    lifecycle.abandon(job, claim.attempt)
                    done.abandoned.append(job.id)
                else:
                    lifecycle.requeue(job, self._fresh_detail(job), message=RECLAIMED_MESSAGE)
                    self.claims.announce(job.id)
                    done.requeued.append(job.id)
                self.claims.drop_lease(job.id)
        if done.requeued or done.abandoned or done.canceled:
            log.warning("myspinbot: reclaimed expired leases: %d queued again, %d failed (lost_worker), %d canceled",
                        len(done.requeued), len(done.abandoned), len(done.canceled))
        return done

    def _fresh_detail(self, job: Job) -> dict:
        run = self._run_for(job)
        return initial_detail(run.tracker.plan) if run is not None and run.tracker is not None else {}

    def _run_for(self, job: Job) -> Run | None:
        pipeline = self.service.pipelines.get(job.pipeline)
        record = self.store.prompt(job.id)
        if pipeline is None or record is None:
            return None
        by_name = {stage.name: stage for stage in pipeline.stages}
        stages = {node: by_name[name] for node, name in record.node_stages.items() if name in by_name}
        return Run.for_prompt(pipeline, record.prompt, record.output_nodes, stages or None)

    # --- one round, and the loop ----------------------------------------------------------
    async def tick(self) -> Job | None:
        """Heartbeat, reclaim, and claim one job if this server's ComfyUI is idle; returns the job queued here."""
        host, tracking = self.service.host, self.service.tracking
        # Off the event loop: a database that is slow or down must not stall ComfyUI's loop here.
        lost, canceling = await asyncio.to_thread(self.heartbeat)
        for job_id in lost:
            log.warning("myspinbot: job %s: this server's claim was lost; stopping its prompt here", job_id)
            tracking.forget(job_id)
            host.cancel(job_id)
        for job_id in canceling:
            if host.cancel(job_id) != INTERRUPTED:  # still pending here (or gone): canceled now
                tracking.forget(job_id)
                job = self.store.get(job_id)
                if job is not None and job.status == CANCELING:
                    with contextlib.suppress(LeaseLost):
                        self.service.lifecycle.cancel(job)
            # interrupted: the tracker ends it canceled when ComfyUI reports the interruption
        self._give_up_orphans()
        self.reclaim()
        busy = bool(host.active_prompts() or self.store.held())
        await asyncio.to_thread(self.beat, busy)
        if busy:
            return None
        got = await asyncio.to_thread(self.claim)
        if got is None:
            return None
        job, claim = got
        return await self._start(job, claim)

    def _give_up_orphans(self) -> None:
        """A held job that ComfyUI no longer runs and the tracker no longer follows ended without
        its outcome recorded (the database was down when it finished): give it up, so the
        reclaim queues it again (another attempt) instead of holding it forever."""
        active, tracking = self.service.host.active_prompts(), self.service.tracking
        for claim in self.store.held():
            if not tracking.tracks(claim.job_id) and claim.job_id not in active:
                log.warning("myspinbot: job %s ended here without its outcome recorded; giving it up to run again",
                            claim.job_id)
                self.store.unhold(claim.job_id)
                self.claims.expire_now(claim)

    async def _start(self, job: Job, claim: Claim) -> Job | None:
        run = self._run_for(job)
        if run is None:
            self.service.lifecycle.fail(job, {"code": "workflow_missing", "message": "the job's workflow or pipeline "
                                              "is not known to the server that claimed it", "details": {}})
            return None
        record = self.store.prompt(job.id)
        if self.files is not None and not await fetch_job_inputs(self.service, self.files, job):
            return None
        tracking = self.service.tracking
        tracking.track(job.id, run)
        try:
            await self.service.host.enqueue(job.id, record.prompt)
        except LeaseLost:
            tracking.forget(job.id)
            return None
        except Exception as err:  # ComfyUI here rejected it: the job fails (fenced by the claim)
            tracking.forget(job.id)
            details = getattr(err, "details", {}) or {}
            with contextlib.suppress(LeaseLost):
                self.service.lifecycle.fail(job, {"code": getattr(err, "code", "invalid_workflow"),
                                                  "message": str(getattr(err, "message", err)), "details": details})
            return None
        log.info("myspinbot: job %s claimed by %s (attempt %d)", job.id, self.worker, claim.attempt)
        return job

    def start(self) -> None:
        """Run ``tick`` every ``poll_s``, and at once when a job becomes claimable (``LISTEN``),
        on the running loop until ``stop``."""
        if self._task is None:
            loop = asyncio.get_running_loop()
            self._wake = asyncio.Event()
            self._listener = Listener(self.store.db.url, QUEUE_CHANNEL,
                                      lambda _payload: loop.call_soon_threadsafe(self._wake.set))
            self._listener.start()
            self.service.events.listen(self._on_event)
            self.observe()
            self._task = loop.create_task(self._loop(), name="myspinbot-shared-queue")

    def observe(self) -> None:
        """Cancel a held job whose prompt is removed from this ComfyUI's queue (core's Clear queue
        or delete), as a single server does (``reconcile.py``); removals of jobs not held here
        (a lost claim's prompt this server stopped itself) change nothing."""
        subscribe = getattr(self.service.host, "subscribe_removed", None)
        if subscribe is not None and not self._observing:
            self._observing = True
            subscribe(self._on_removed)

    def _on_removed(self, prompt_ids: list[str]) -> None:
        from ..reconcile import REMOVED_MESSAGE

        held = {claim.job_id for claim in self.store.held()}
        for job_id in prompt_ids:
            if job_id in held:
                with contextlib.suppress(LeaseLost):
                    self.service.cancel_lost(job_id, REMOVED_MESSAGE)

    def _on_event(self, event) -> None:
        if event.kind == STATUS and event.job.status in TERMINAL and self._wake is not None:
            self._wake.set()  # a job ended here: this ComfyUI may be idle now

    async def stop(self) -> None:
        task, self._task = self._task, None
        listener, self._listener = self._listener, None
        self.service.events.unlisten(self._on_event)
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if listener is not None:
            await asyncio.to_thread(listener.stop)

    async def _loop(self) -> None:
        while True:
            self._wake.clear()
            try:
                await self.tick()
            except Exception:  # the database may be down for a while: try again next round
                log.exception("myspinbot: the shared job queue round failed")
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.poll_s)
