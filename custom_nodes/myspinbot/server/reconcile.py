"""Keep ``queued`` jobs in step with ComfyUI's queue: a job whose prompt ComfyUI dropped ends ``canceled``.

ComfyUI's own UI can empty its queue ("Clear queue": ``POST /queue {"clear": true}``) or remove
one prompt (``POST /queue {"delete": [id]}``). Without this, the jobs of those prompts would stay
``queued`` forever and count against ``MYSPINBOT_MAX_QUEUED``. Two ways catch them:

- **at once**: the host reports the pending prompts its queue removed (``Host.subscribe_removed``;
  ``comfy_host`` wraps the queue's ``wipe_queue`` / ``delete_queue_item``) and each ``queued``
  job among them is canceled;
- **periodically** (``Settings.reconcile_interval_s``): a ``queued`` job whose prompt ComfyUI
  neither holds (pending or running) nor has in its history is canceled once checks have found
  it so for a grace period (default: one interval), in two checks at least. One check alone
  never cancels: a job is saved ``queued`` a moment before its prompt reaches ComfyUI's queue,
  and a prompt that just started or finished may not have told the service yet; an interval
  later both have settled.

Every change goes through ``JobService.cancel_lost`` (its usual finishing path: events, webhooks,
metrics). Jobs in other statuses are never touched.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING

from .model import QUEUED
from .periodic import Periodic

if TYPE_CHECKING:
    from .jobs import JobService

log = logging.getLogger("myspinbot.reconcile")

REMOVED_MESSAGE = "canceled: its prompt was removed from ComfyUI's queue"
NOT_HELD_MESSAGE = "canceled: ComfyUI's queue no longer holds its prompt"


class QueueReconciler:
    def __init__(self, service: "JobService", interval_s: float | None = None, grace_s: float | None = None):
        self.service = service
        self.interval_s = interval_s if interval_s is not None else service.settings.reconcile_interval_s
        self.grace_s = grace_s if grace_s is not None else self.interval_s
        self._passes = 0
        self._missing: dict[str, tuple[int, float]] = {}
        """Queued jobs found without a prompt in ComfyUI: the pass and (monotonic) time first found so."""
        self._periodic = Periodic("myspinbot-reconcile", self.check, lambda: self.interval_s, first_now=False,
                                  failure="reconciling queued jobs with ComfyUI's queue failed")

    def observe(self) -> None:
        """Cancel the jobs whose prompts the host reports removed from its queue, from now on."""
        subscribe = getattr(self.service.host, "subscribe_removed", None)
        if subscribe is not None:
            subscribe(self.on_removed)

    def on_removed(self, prompt_ids: list[str]) -> list[str]:
        """Cancel the ``queued`` jobs among ``prompt_ids``; returns their ids. Our own cancel of a
        pending job also reports its prompt, but finished it first: nothing happens then."""
        canceled = []
        for job_id in prompt_ids:
            job = self.service.store.get(job_id)
            if job is not None and job.status == QUEUED:
                self.service.cancel_lost(job_id, REMOVED_MESSAGE)
                canceled.append(job_id)
        if canceled:
            log.info("myspinbot: %d queued job(s) canceled: their prompts were removed from ComfyUI's queue", len(canceled))
        return canceled

    def check(self) -> list[str]:
        """One reconciliation pass; returns the ids of the jobs it canceled."""
        host, store = self.service.host, self.service.store
        self._passes += 1
        now = time.monotonic()
        active = host.active_prompts()
        missing = [job.id for job in store.with_status(QUEUED) if job.id not in active and host.history(job.id) is None]
        # A job found held again (or no longer queued) starts over.
        self._missing = {job_id: self._missing.get(job_id, (self._passes, now)) for job_id in missing}
        lost = [job_id for job_id, (first, since) in self._missing.items()
                if first < self._passes and now - since >= self.grace_s]
        for job_id in lost:  # read in this same pass (no await in between): still queued, still not held
            del self._missing[job_id]
            self.service.cancel_lost(job_id, NOT_HELD_MESSAGE)
        if lost:
            log.warning("myspinbot: %d queued job(s) canceled: ComfyUI's queue no longer holds their prompts", len(lost))
        return lost

    # --- the periodic task ---------------------------------------------------------------
    def start(self) -> None:
        """Check every ``interval_s`` on the running loop (the first check one interval from now)."""
        self._periodic.start()

    async def stop(self) -> None:
        await self._periodic.stop()
