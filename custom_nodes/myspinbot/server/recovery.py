"""Jobs across a ComfyUI restart (or crash): nothing disappears, nothing is reported done falsely.

ComfyUI's own queue and history live in memory, so a restart loses every prompt it had. The
job store (SQLite, WAL) keeps each job's built API prompt (``job_prompts``). When the pack is
attached to a new ComfyUI process, :meth:`JobRecovery.recover` settles what the previous one
left unfinished:

- ``canceling`` → ``canceled`` (it was meant to stop);
- ``queued`` / ``running`` → queued again: if its prompt is stored, at most ``MAX_REQUEUES`` of
  its runs started before (``runs``: a job that keeps crashing ComfyUI stops; one that only
  waited in the queue through any number of restarts is kept) and every input file the prompt
  reads (under ComfyUI's input folder) still exists;
- otherwise → ``failed`` with code ``lost_on_restart`` (``details.reason`` says why).

Upload staging folders that a crash left without a job row are removed first (``leftovers.py``).

Queueing needs ComfyUI's prompt validation (a coroutine) and its node registry complete, so
:meth:`JobRecovery.resume` does it once the server starts (``install`` hooks it into aiohttp's
``on_startup``, which runs before the server accepts requests). Each re-queued job keeps its id
as ComfyUI prompt id (ComfyUI's queue and history are empty after a restart), its progress is
reset, any partial output of the interrupted run is removed, and it is followed to completion
like any job (``JobService.resubmit``); a job still only succeeds when its output file exists
(``jobs/tracking.py``). Every status change goes through ``JobService.lifecycle``.
"""

from __future__ import annotations

import logging
import shutil
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .api_errors import ApiError
from .jobs.layout import job_folder
from .jobs.lifecycle import LOST, REQUEUED_MESSAGE
from .leftovers import remove_orphan_staging
from .model import CANCELING, QUEUED, RUNNING, Job
from .reconcile import QueueReconciler
from .store import PromptRecord

if TYPE_CHECKING:
    from aiohttp import web

    from .jobs import JobService
    from .retention import Retention

log = logging.getLogger("myspinbot.recovery")

MAX_REQUEUES = 1
"""How many started (and interrupted) runs a job may have and still be queued again by a restart:
with 1, a job whose run was cut short runs once more; if that run is cut short too, it is lost."""

__all__ = ["LOST", "REQUEUED_MESSAGE", "JobRecovery", "Recovered", "install", "job_folder"]

# ComfyUI loaders and the inputs that name a file in its input folder.
LOADER_INPUTS: dict[str, tuple[str, ...]] = {
    "LoadImage": ("image",),
    "LoadImageMask": ("image",),
    "LoadImageOutput": ("image",),
    "LoadAudio": ("audio",),
    "LoadVideo": ("file",),
}


@dataclass
class Recovered:
    """What :meth:`JobRecovery.recover` did: job ids kept for re-queueing, lost, canceled."""

    requeue: list[str] = field(default_factory=list)
    lost: list[str] = field(default_factory=list)
    canceled: list[str] = field(default_factory=list)


class JobRecovery:
    def __init__(self, service: "JobService", max_requeues: int = MAX_REQUEUES):
        self.service = service
        self.max_requeues = max_requeues
        self.pending: list[str] = []
        """Job ids ``recover`` kept for ``resume``, oldest first."""

    # --- at attach (synchronous) ---------------------------------------------------------
    def recover(self) -> Recovered:
        """Settle the unfinished jobs of the previous process; keep the re-runnable ones in ``pending``."""
        service, store = self.service, self.service.store
        result = Recovered()
        remove_orphan_staging(service)  # uploads a crash cut short (leftovers.py)
        for job in store.with_status(CANCELING):
            service.lifecycle.cancel(job)
            result.canceled.append(job.id)
        for job in store.with_status(QUEUED, RUNNING):
            why = self.why_not(job)
            if why is None:
                result.requeue.append(job.id)
            else:
                self._lose(job, *why)
                result.lost.append(job.id)
        self.pending = list(result.requeue)
        if result.requeue or result.lost or result.canceled:
            log.warning("myspinbot: after the restart: %d job(s) to queue again, %d lost (%s), %d canceled",
                        len(result.requeue), len(result.lost), LOST, len(result.canceled))
        return result

    def why_not(self, job: Job) -> tuple[str, dict[str, Any]] | None:
        """Why ``job`` cannot be queued again, as ``(message, details)``; None when it can."""
        record = self.service.store.prompt(job.id)
        if record is None:
            return "its workflow was not stored", {"reason": "no_prompt"}
        if record.runs > self.max_requeues:
            return (f"it started {record.runs} times and ComfyUI stopped during each run",
                    {"reason": "runs_interrupted", "runs": record.runs})
        if job.pipeline not in self.service.pipelines:
            return f"pipeline '{job.pipeline}' no longer exists", {"reason": "unknown_pipeline"}
        missing = self.missing_inputs(job, record)
        if missing:
            return "its input files are gone", {"reason": "inputs_missing", "missing": missing}
        return None

    def input_files(self, job: Job, record: PromptRecord) -> list[str]:
        """The files (relative to ComfyUI's input folder) the job reads: its file parameters and
        every loader input of its prompt."""
        names: list[str] = []
        pipeline = self.service.pipelines.get(job.pipeline)
        if pipeline is not None:
            for param in pipeline.file_params():
                value = job.params.get(param.name)
                if isinstance(value, str) and value:
                    names.append(value)
        for node in record.prompt.values():
            for input_name in LOADER_INPUTS.get(node.get("class_type", ""), ()):
                value = (node.get("inputs") or {}).get(input_name)
                if isinstance(value, str) and value:
                    names.append(value)
        return list(dict.fromkeys(_strip_annotation(n) for n in names))

    def missing_inputs(self, job: Job, record: PromptRecord) -> list[str]:
        root = self.service.host.input_dir.resolve()
        missing = []
        for name in self.input_files(job, record):
            path = (root / name).resolve()
            if not path.is_relative_to(root) or not path.is_file():
                missing.append(name)
        return missing

    # --- once the server runs (asynchronous) ---------------------------------------------
    async def resume(self) -> list[str]:
        """Queue the jobs ``recover`` kept, oldest first; returns the ids queued. A job canceled
        in between is skipped; one whose inputs vanished or that ComfyUI rejects is lost."""
        service, store = self.service, self.service.store
        queued: list[str] = []
        pending, self.pending = self.pending, []
        for job_id in pending:
            job = store.get(job_id)
            if job is None or job.status not in (QUEUED, RUNNING):
                continue
            why = self.why_not(job)
            record = store.prompt(job_id)
            if why is not None or record is None:
                self._lose(job, *(why or ("its workflow was not stored", {"reason": "no_prompt"})))
                continue
            # Informational; the limit counts started runs (the lifecycle counts them as they start).
            store.save_prompt(record._replace(requeue_count=record.requeue_count + 1))
            partial = job_folder(service.host.output_dir, job_id)  # what the interrupted run wrote
            if partial is not None:
                shutil.rmtree(partial, ignore_errors=True)
            try:
                await service.resubmit(job, record)
            except Exception as err:  # ComfyUI rejected it (a node gone, an input invalid now)
                details: dict[str, Any] = {"reason": "rejected"}
                if isinstance(err, ApiError):
                    details["error"] = err.details
                else:
                    log.exception("myspinbot: could not queue job %s again", job_id)
                current = store.get(job_id)
                if current is not None and current.status == QUEUED:
                    self._lose(current, "ComfyUI rejected its workflow", details)
                continue
            queued.append(job_id)
            log.info("myspinbot: job %s queued again after the restart", job_id)
        return queued

    def _lose(self, job: Job, why: str, details: dict[str, Any]) -> None:
        self.service.lifecycle.lose(job, why, details)


def install(app: "web.Application", recovery: JobRecovery, retention: "Retention | None" = None) -> QueueReconciler:
    """Run ``recovery.resume()`` and start ``retention`` when ``app`` starts (before it serves),
    and stop ``retention`` when it shuts down. Also keeps queued jobs in step with ComfyUI's
    queue (``reconcile.py``): removals observed from now on, the periodic check started once the
    re-queued jobs are back in ComfyUI's queue. Returns that reconciler."""
    reconciler = QueueReconciler(recovery.service)
    reconciler.observe()

    async def on_startup(_app: Any) -> None:
        try:
            queued = await recovery.resume()
            if queued:
                log.warning("myspinbot: %d job(s) unfinished when ComfyUI stopped were queued again", len(queued))
        except Exception:  # never keep ComfyUI from starting
            log.exception("myspinbot: re-queueing the jobs of the previous ComfyUI process failed")
        if retention is not None:
            retention.start()
        reconciler.start()

    async def on_cleanup(_app: Any) -> None:
        await reconciler.stop()
        if retention is not None:
            await retention.stop()

    app.on_startup.append(on_startup)
    app.on_cleanup.append(on_cleanup)
    return reconciler


def _strip_annotation(name: str) -> str:
    """``"a.png [input]"`` → ``"a.png"`` (ComfyUI's annotated file names)."""
    return name[: -len(" [input]")] if name.endswith(" [input]") else name
