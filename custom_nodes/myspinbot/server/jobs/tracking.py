"""ComfyUI's execution events → the job lifecycle.

``JobTracker`` follows the prompts of the jobs it was told to ``track`` (one ``Run`` each):
``execution_start`` starts the job, ``executing`` / ``execution_cached`` / ``progress`` move its
weighted progress (``progress.py``; a reading is saved only when it is worth it), an
``execution_error`` is remembered, and the end of the prompt (``executing`` with no node, or
``execution_interrupted``) finishes the job: canceled, failed with the error, failed with
``output_missing``, or succeeded with the outputs read from ComfyUI's history.

Every status change goes through ``JobLifecycle``. Events arrive on the event loop's thread;
an event that cannot be applied is logged, never raised into ComfyUI's event flow.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

from ...errors import code_from_message
from ..host import Host
from ..model import QUEUED, TERMINAL, Job, Output
from ..pipelines import Pipeline, Stage
from ..progress import ProgressTracker
from ..store import JobStore, LeaseLost
from .lifecycle import JobLifecycle
from .outputs import collect_outputs
from .quality import score_nodes

log = logging.getLogger("myspinbot.jobs")


@dataclass
class Run:
    """What is tracked about a job's prompt while ComfyUI executes it.

    ``output_nodes``: output name → node id; ``output_types``: output name → type;
    ``score_nodes``: output name → its lip-sync score node (``quality.py``; none when the
    SyncNet model was absent); ``node_stages``: node id → the pipeline stage it belongs to; ``node_fraction``: node id →
    how much of it is done (0..1); ``step``: the running node's ComfyUI progress (value, max)."""

    nodes: int
    output_nodes: dict[str, str]
    output_types: dict[str, str]
    node_stages: dict[str, Stage] = field(default_factory=dict)
    score_nodes: dict[str, str] = field(default_factory=dict)
    node_fraction: dict[str, float] = field(default_factory=dict)
    error: dict[str, Any] | None = None
    interrupted: bool = False
    step: tuple[float, float] | None = None
    tracker: ProgressTracker | None = None

    @classmethod
    def for_prompt(cls, pipeline: Pipeline, prompt: Mapping[str, Any], output_nodes: Mapping[str, str],
                   node_stages: Mapping[str, Stage] | None = None) -> "Run":
        """The run of ``pipeline``'s built ``prompt``; ``node_stages`` default to the pipeline's own reading."""
        stages = dict(node_stages) if node_stages is not None else pipeline.node_stages(prompt)
        return cls(nodes=len(prompt), output_nodes=dict(output_nodes),
                   output_types={o.name: o.type for o in pipeline.outputs}, node_stages=stages,
                   score_nodes=score_nodes(prompt),
                   tracker=ProgressTracker.for_prompt(pipeline.stages, stages))


class JobTracker:
    """Applies ComfyUI's events of tracked prompts (prompt id = job id) to their jobs."""

    def __init__(self, host: Host, store: JobStore, lifecycle: JobLifecycle, pipelines: Mapping[str, Pipeline],
                 clock: Callable[[], float]):
        self.host = host
        self.store = store
        self.lifecycle = lifecycle
        self.pipelines = pipelines
        self.clock = clock
        self._runs: dict[str, Run] = {}
        self._publishing: set[str] = set()
        self.publish: Callable[[str, list[Output]], list[Output]] | None = None
        """A shared queue's ``fn(job id, outputs)``: stores them where every server finds them
        (``SharedQueue._publish``; blocking, run in a worker thread) before the job succeeds."""
        self.published: Callable[[str], None] | None = None
        """Called (in a worker thread) once a published job's success is recorded: orphans are removed."""
        self.discard: Callable[[str, int], None] | None = None
        """Called (in a worker thread) with the job id and attempt when the success of outputs
        already published was refused (the claim was lost): that attempt's objects are removed."""
        host.subscribe(self.on_event)

    # --- what is tracked -----------------------------------------------------------------
    def track(self, job_id: str, run: Run) -> None:
        """Follow the prompt of ``job_id`` from now on (replacing an earlier run)."""
        self._runs[job_id] = run

    def forget(self, job_id: str) -> None:
        """Stop following ``job_id`` (its prompt left the queue, or never got there)."""
        self._runs.pop(job_id, None)

    def tracks(self, job_id: str) -> bool:
        """True while the prompt runs, and while its outputs are being published."""
        return job_id in self._runs or job_id in self._publishing

    # --- events --------------------------------------------------------------------------
    def on_event(self, event: str, data: dict[str, Any]) -> None:
        """``Host.subscribe``'s callback: one ComfyUI execution event."""
        prompt_id = data.get("prompt_id")
        run = self._runs.get(prompt_id) if prompt_id else None
        if run is None:
            return
        try:
            self._apply(prompt_id, run, event, data)
        except LeaseLost as lost:  # a shared queue's claim ran out: the job is no longer this server's
            log.warning("myspinbot: %s; stopping its prompt here", lost)
            self.forget(prompt_id)
            self.host.cancel(prompt_id)
        except Exception:  # an observer must never break ComfyUI's event flow
            log.exception("myspinbot: failed to apply %s for job %s", event, prompt_id)

    def _apply(self, job_id: str, run: Run, event: str, data: dict[str, Any]) -> None:
        if event == "execution_start":
            job = self.store.get(job_id)
            if job and job.status == QUEUED:
                self.lifecycle.start(job)
        elif event == "execution_cached":
            for node in data.get("nodes") or []:
                run.node_fraction[str(node)] = 1.0
        elif event == "executing" and data.get("node") is not None:
            for node, frac in list(run.node_fraction.items()):
                if frac < 1.0:
                    run.node_fraction[node] = 1.0
            node = str(data["node"])
            run.node_fraction.setdefault(node, 0.0)
            run.step = None
            self._progress(job_id, run, stage=run.node_stages.get(node))
        elif event == "progress" and data.get("node") is not None:
            total = float(data.get("max") or 0)
            if total > 0:
                run.node_fraction[str(data["node"])] = min(1.0, float(data.get("value", 0)) / total)
                run.step = (float(data.get("value", 0)), total)
                self._progress(job_id, run)
        elif event == "execution_error":
            run.error = execution_error(data)
        elif event == "execution_interrupted":
            run.interrupted = True
            self._finalize(job_id, run)  # nothing more to learn from ComfyUI: canceled now
        elif event == "executing" and data.get("node") is None:
            self._finalize(job_id, run)

    def _progress(self, job_id: str, run: Run, stage: Stage | None = None) -> None:
        """Measure the job's weighted progress and record it when it is worth a write."""
        job = self.store.get(job_id)
        if job is None or job.status in TERMINAL:
            return
        reached = stage if stage is not None and stage.name != job.stage else None
        if run.tracker is None:
            pipeline = self.pipelines.get(job.pipeline)
            run.tracker = ProgressTracker.for_prompt(pipeline.stages if pipeline else (), run.node_stages)
        # Weighted by stage, never lower than what was reported, < 1 until succeeded (progress.py).
        now = self.clock()
        measure = run.tracker.measure(run.node_fraction, reached.name if reached else job.stage, run.step, now,
                                      floor=job.progress)
        if not run.tracker.worth_saving(job.progress, job.progress_detail, measure, now, stage_changed=reached is not None):
            return
        self.lifecycle.progress(job, measure.value, measure.detail, stage=reached)

    def _finalize(self, job_id: str, run: Run) -> None:
        """The prompt ended: finish the job from what the run saw and what ComfyUI's history holds."""
        self.forget(job_id)
        job = self.store.get(job_id)
        if job is None or job.status in TERMINAL:
            return
        if run.interrupted:
            self.lifecycle.cancel(job)
        elif run.error is not None:
            self.lifecycle.fail(job, run.error)
        else:
            self._finish_from_history(job, run)

    def _finish_from_history(self, job: Job, run: Run) -> None:
        history = self.host.history(job.id) or {}

        def keep_pending(name: str, record: dict[str, Any]) -> None:
            self.store.put_pending_upload(job.id, name, record)

        outputs, missing = collect_outputs(self.host.output_dir, history.get("outputs") or {}, run.output_nodes,
                                           run.output_types, keep_pending, run.score_nodes)
        if missing:
            self.lifecycle.fail(job, {"code": "output_missing",
                                      "message": f"the workflow finished without writing: {', '.join(missing)}",
                                      "details": {"outputs": missing}}, outputs=outputs)
        elif self.publish is not None:
            self._publishing.add(job.id)
            asyncio.get_running_loop().create_task(self._publish_then_succeed(job.id, outputs))
        else:
            self.lifecycle.succeed(job, outputs)

    async def _publish_then_succeed(self, job_id: str, outputs: list[Output]) -> None:
        """Publish the outputs off the event loop, then record them (one fenced write): succeeded,
        or failed ``storage_unavailable`` when object storage did not take them."""
        from ...errors import StorageError

        try:
            error = None
            try:
                outputs = await asyncio.to_thread(self.publish, job_id, outputs)
            except StorageError as err:
                log.warning("myspinbot: job %s: its outputs could not be stored: %s", job_id, err)
                error = {"code": "storage_unavailable", "message": f"the outputs could not be stored: {err.message}",
                         "details": {"storage_code": err.code}}
            job = self.store.get(job_id)
            if job is None or job.status in TERMINAL:
                return
            if error is None:
                self.lifecycle.succeed(job, outputs)
                if self.published is not None:
                    await asyncio.to_thread(self.published, job_id)
            else:
                self.lifecycle.fail(job, error, outputs=outputs)
        except LeaseLost as lost:
            log.warning("myspinbot: %s; its outputs are not recorded", lost)
            if self.discard is not None and lost.claim.attempt > 0:
                await asyncio.to_thread(self.discard, job_id, lost.claim.attempt)
        except Exception:
            log.exception("myspinbot: failed to record the outputs of job %s", job_id)
        finally:
            self._publishing.discard(job_id)


def execution_error(data: dict[str, Any]) -> dict[str, Any]:
    """A job's ``error`` from ComfyUI's ``execution_error`` event: the pack's own ``[code]`` when
    one of its error classes raised it, else ``execution_error``; the message without the code."""
    message = str(data.get("exception_message") or "").strip()
    code = code_from_message(message, exception_type=data.get("exception_type") or None)
    return {
        "code": code,
        "message": message.split("] ", 1)[1] if message.startswith(f"[{code}] ") else message,
        "details": {"node_type": data.get("node_type"), "exception_type": data.get("exception_type")},
    }
