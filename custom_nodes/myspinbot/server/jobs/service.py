"""The job service: a small facade over the parts of ``server/jobs/``.

It turns a validated request into a ComfyUI prompt (``submit``), cancels (``cancel``) and reads
jobs (``get``, ``list_jobs``); every status change goes through ``lifecycle.JobLifecycle``, the
following of ComfyUI's events through ``tracking.JobTracker``. Uploads and assets are
``assets.Assets``, idempotency keys ``idempotency.Idempotency``. Its other methods are the
names the routes call, each handing over to one of those parts.

All methods run on the event loop's thread (the host delivers events there).
"""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Awaitable, Callable

from ..api_errors import ApiError
from ..events import JobEvents
from ..host import DEQUEUED, INTERRUPTED, Host
from ..model import CANCELING, QUEUED, TERMINAL, Asset, Job
from ..pipelines import Param, Pipeline
from ..pipelines.common import ProfileInputs, apply_profile
from ..progress import initial_detail
from ..settings import Settings
from ..store import IdempotencyRecord, JobStore, PromptRecord
from ..uploads import Sniffed
from . import layout, outputs
from .assets import Assets
from .idempotency import Idempotency
from .lifecycle import JobLifecycle
from .listing import DEFAULT_PAGE, list_page
from .outputs_storage import upload_output
from .quality import add_score_nodes
from .tracking import JobTracker, Run

if TYPE_CHECKING:
    from .shared_files import SharedFiles

log = logging.getLogger("myspinbot.jobs")

DEFAULT_RETRY_AFTER_S = 30
HEARTBEAT_S = 15.0


class JobService:
    """The jobs of one ComfyUI (``host``), recorded in ``store``.

    ``pipelines``: name → ``Pipeline``; ``settings``: the pack's settings (defaults when None:
    the environment is read once, by ``plugin.attach``); ``clock``: Unix seconds;
    ``require_models(names)``: raises ``ApiError`` 409 when a model a job needs is not on disk;
    ``score_model()``: the SyncNet file to score every video output with (``quality.py``), None
    while it is not installed."""

    retry_after_s: int = DEFAULT_RETRY_AFTER_S
    """``Retry-After`` of a 429 ``queue_full``, seconds."""
    heartbeat_s: float = HEARTBEAT_S
    """How often an idle event stream sends a comment line, seconds."""
    profile_inputs: Callable[[Any], ProfileInputs] | None = None
    """A ready profile's parts by id (``profiles.ProfileService.inputs_for``; raises ``ApiError``),
    set by ``app.compose``; None: jobs cannot name a profile."""

    def __init__(self, host: Host, store: JobStore, pipelines: dict[str, Pipeline], settings: Settings | None = None,
                 *, clock: Callable[[], float] = time.time, require_models: Callable[[list[str]], None] | None = None,
                 score_model: Callable[[], str | None] | None = None, files: "SharedFiles | None" = None):
        self.host = host
        self.store = store
        self.pipelines = pipelines
        self.settings = settings if settings is not None else Settings()
        self.clock = clock
        self.require_models = require_models
        self.score_model = score_model
        self.max_queued = self.settings.max_queued
        self.max_upload_bytes = self.settings.max_upload_bytes
        self.events = JobEvents()
        self.lifecycle = JobLifecycle(store, self.events, clock)
        self.tracking = JobTracker(host, store, self.lifecycle, pipelines, clock)
        self.assets = Assets(store, host.input_dir, self.settings, clock)
        self.idempotency = Idempotency(store, clock)
        self.shared = store.claims is not None
        """Several servers share the queue (PostgreSQL): jobs wait in the database, not in this ComfyUI."""
        self.files = files
        """A shared queue's inputs and outputs in object storage (``shared_files.py``); None: local folders only."""
        self.assets.files = files

    @property
    def progress_interval_s(self) -> float:
        """At most one progress event per job this often, seconds (``throttle.py``)."""
        return self.lifecycle.throttle.interval_s

    # --- submitting ----------------------------------------------------------------------
    def pipeline(self, name: Any) -> Pipeline:
        """The pipeline a request names; 422 ``missing_pipeline`` / ``invalid_parameter`` / ``unknown_pipeline``."""
        if not name:
            raise ApiError(422, "missing_pipeline", "field 'pipeline' is required", {"field": "pipeline", "pipelines": sorted(self.pipelines)})
        if not isinstance(name, str):
            raise ApiError(422, "invalid_parameter", "field 'pipeline' must be a string", {"field": "pipeline"})
        pipeline = self.pipelines.get(name)
        if pipeline is None:
            raise ApiError(422, "unknown_pipeline", f"unknown pipeline '{name}'", {"field": "pipeline", "pipelines": sorted(self.pipelines)})
        return pipeline

    def staging_dir(self, job_id: str) -> Path:
        """Where a job's uploads live: ``<ComfyUI input>/myspinbot/<job id>/``."""
        return layout.staging_dir(self.host.input_dir, job_id)

    def check_capacity(self) -> None:
        """Raise 429 ``queue_full`` (with ``Retry-After``) when ``max_queued`` jobs are already waiting."""
        queued = self.store.count_status(QUEUED)
        if queued >= self.max_queued:
            raise ApiError(429, "queue_full", f"{queued} jobs are already waiting (at most {self.max_queued}); retry later",
                           {"queued": queued, "max_queued": self.max_queued, "retry_after_s": self.retry_after_s},
                           headers={"Retry-After": str(self.retry_after_s)})

    async def submit(self, job_id: str, pipeline: Pipeline, raw_values: dict[str, Any]) -> Job:
        """Validate the values, bind them into the pipeline's workflow and queue it in ComfyUI.

        File values are paths relative to ComfyUI's input folder; a ``profile`` (id) fills in what
        the pipeline takes from a profile (``pipelines.common.apply_profile``). Raises
        ``ApiError``; on error no job is recorded."""
        if "profile" in raw_values and pipeline.profile_uses:
            if self.profile_inputs is None:
                raise ApiError(422, "profile_not_found", "this server keeps no profiles", {"field": "profile"})
            raw_values = apply_profile(pipeline, raw_values, self.profile_inputs(raw_values["profile"]))
        values = pipeline.coerce(raw_values)
        needed = pipeline.models(values)
        if needed and self.require_models is not None:
            self.require_models(needed)  # preflight: ApiError 409 models_missing before anything is queued
        built = pipeline.build(values, save_prefix=layout.save_prefix(job_id))
        self.add_quality(pipeline, built.prompt, built.output_nodes)
        if self.shared and self.files is not None:  # the server that claims it fetches them from the bucket
            await self.put_inputs(pipeline, values)
        # No await between this check and the save: concurrent submissions cannot overshoot the limit.
        self.check_capacity()
        run = Run.for_prompt(pipeline, built.prompt, built.output_nodes)
        job = Job(id=job_id, pipeline=pipeline.name, created_at=self.clock(), params=dict(values),
                  progress_detail=initial_detail(run.tracker.plan))
        self.tracking.track(job_id, run)
        self.lifecycle.queue(job)
        if self.shared and needed and self.store.servers is not None:  # before the prompt: claimable only then
            self.store.servers.set_requires(job_id, needed)
        # The prompt is kept so that a restarted ComfyUI can queue the job again (recovery.py).
        self.store.save_prompt(PromptRecord(job_id, built.prompt, built.output_nodes,
                                            {n: s.name for n, s in run.node_stages.items()}))
        if self.shared:  # a server of the shared queue claims it when its ComfyUI is idle (claiming.py)
            self.tracking.forget(job_id)
            self.store.claims.announce(job_id)
            return job
        try:
            await self.host.enqueue(job_id, built.prompt)
        except BaseException:
            self.tracking.forget(job_id)
            self.store.delete(job_id)
            raise
        return job

    async def put_inputs(self, pipeline: Pipeline, values: dict[str, Any]) -> None:
        """Upload a job's input files to the shared queue's bucket (off the event loop). Raises
        ``ApiError`` 503 ``storage_unavailable`` when object storage does not take them."""
        from ...errors import StorageError

        files = self.files
        paths = [values[p.name] for p in pipeline.file_params() if isinstance(values.get(p.name), str)]
        try:
            await asyncio.to_thread(lambda: [files.put_input(rel) for rel in paths])
        except StorageError as err:
            raise ApiError(503, "storage_unavailable", f"object storage did not take the job's inputs: {err.message}",
                           {"storage_code": err.code}, headers={"Retry-After": "5"}) from None

    def add_quality(self, pipeline: Pipeline, prompt: dict[str, Any], output_nodes: dict[str, str]) -> dict[str, str]:
        """With the SyncNet model installed, a lip-sync score node for each video output
        (``quality.add_score_nodes``; ``prompt`` edited in place); returns output name → score node."""
        model_file = self.score_model() if self.score_model is not None else None
        if model_file is None:
            return {}
        return add_score_nodes(prompt, output_nodes, {o.name: o.type for o in pipeline.outputs}, model_file)

    async def resubmit(self, job: Job, record: PromptRecord) -> None:
        """Queue a job a restart cut short again, under its own id, with its stored prompt: back to
        a fresh ``queued`` (``lifecycle.requeue``), followed to completion like any job. Raises
        what ``Host.enqueue`` raises (the job is then left ``queued`` and no longer followed)."""
        pipeline = self.pipelines[job.pipeline]
        by_name = {stage.name: stage for stage in pipeline.stages}
        node_stages = {node: by_name[name] for node, name in record.node_stages.items()
                       if name in by_name and node in record.prompt}
        run = Run.for_prompt(pipeline, record.prompt, record.output_nodes, node_stages or None)
        self.lifecycle.requeue(job, initial_detail(run.tracker.plan))
        self.tracking.track(job.id, run)
        try:
            await self.host.enqueue(job.id, record.prompt)
        except BaseException:
            self.tracking.forget(job.id)
            raise

    # --- idempotency ---------------------------------------------------------------------
    def idempotent_job(self, key: str) -> tuple[IdempotencyRecord, Job] | None:
        """The live (younger than the TTL) record of ``key`` and its job, if any."""
        return self.idempotency.live(key)

    async def submit_once(self, key: str | None, request_hash: str,
                          create: Callable[[], Awaitable[Job]]) -> tuple[Job, bool]:
        """``create`` unless ``key`` already created a job; returns ``(job, replayed)`` (``idempotency.py``)."""
        return await self.idempotency.once(key, request_hash, create)

    # --- assets --------------------------------------------------------------------------
    def assets_dir(self) -> Path:
        """``<ComfyUI input>/myspinbot/assets/``: uploaded inputs, named by their sha256."""
        return self.assets.folder()

    def asset(self, asset_id: str) -> Asset | None:
        return self.assets.get(asset_id)

    def store_asset(self, staged: Path, sha256: str, size: int, sniffed: Sniffed) -> tuple[Asset, bool]:
        """Move a checked upload to its content address (blocking; ``accept_asset`` runs it off the loop)."""
        return self.assets.store_asset(staged, sha256, size, sniffed)

    async def accept_asset(self, staged: Path, sha256: str, size: int) -> tuple[Asset, bool]:
        """Check and store an uploaded asset off the event loop; returns ``(asset, created)``."""
        return await self.assets.accept_asset(staged, sha256, size)

    async def accept_job_file(self, pipeline: Pipeline, param: Param, staged: Path, client_name: str) -> str:
        """Check a job's uploaded file off the event loop; returns its path relative to the input folder."""
        return await self.assets.accept_job_file(pipeline, param, staged, client_name)

    def resolve_inputs(self, pipeline: Pipeline, inputs: dict[str, Any], *, bare_asset_ids: bool = False) -> dict[str, Any]:
        """File parameters given as asset ids → their paths (``assets.Assets.resolve_inputs``)."""
        return self.assets.resolve_inputs(pipeline, inputs, bare_asset_ids=bare_asset_ids)

    # --- reading -------------------------------------------------------------------------
    def get(self, job_id: str) -> Job | None:
        return self.store.get(job_id)

    def queue_position(self, job: Job) -> int | None:
        """Where a queued job's prompt stands in ComfyUI's queue (1 = next), else None."""
        if job.status != QUEUED:
            return None
        try:
            return self.host.queue_position(job.id)
        except Exception:  # a queue we cannot read must not break reading the job
            log.exception("myspinbot: could not read the queue position of job %s", job.id)
            return None

    def list_jobs(self, *, statuses: tuple[str, ...] = (), pipelines: tuple[str, ...] = (), limit: int = DEFAULT_PAGE,
                  cursor: str | None = None) -> tuple[list[Job], str | None]:
        """A page of jobs, newest first, and the cursor of the next page (None on the last; ``listing.py``)."""
        return list_page(self.store, statuses=statuses, pipelines=pipelines, limit=limit, cursor=cursor)

    def output_path(self, job: Job, name: str) -> Path | None:
        """The file behind a recorded output, if it is still inside ComfyUI's output folder."""
        return outputs.output_path(self.host.output_dir, job, name)

    async def fetch_output(self, job: Job, name: str) -> Path | None:
        """The file behind a recorded output: here, or (shared queue) fetched from the bucket into
        this server's output folder first. Raises ``ApiError`` 503 ``storage_unavailable``."""
        from ...errors import StorageError

        path = self.output_path(job, name)
        output = job.output(name)
        if path is not None or self.files is None or output is None:
            return path
        try:
            return await asyncio.to_thread(self.files.fetch_output, job, output)
        except StorageError as err:
            raise ApiError(503, "storage_unavailable", f"object storage did not give output '{name}': {err.message}",
                           {"storage_code": err.code}, headers={"Retry-After": "5"}) from None

    async def upload_output(self, job: Job, name: str) -> Job:
        """Upload a pending output to object storage again (``outputs_storage.upload_output``)."""
        return await upload_output(self.store, self.host.user_dir, job, name)

    # --- cancel --------------------------------------------------------------------------
    def cancel(self, job_id: str) -> Job | None:
        """Cancel a job; idempotent. A queued job leaves ComfyUI's queue and is ``canceled`` at once;
        a running one is interrupted (that prompt only) and stays ``canceling`` until ComfyUI
        reports the interruption; a finished one is returned as it is. None for an unknown id."""
        job = self.store.get(job_id)
        if job is None or job.status in TERMINAL:
            return job
        if self.shared and self._held_elsewhere(job_id):
            # Another server runs it: it sees ``canceling`` at its next heartbeat and stops its prompt.
            if job.status != CANCELING:
                self.lifecycle.begin_cancel(job)
            return self.store.get(job_id)
        outcome = self.host.cancel(job_id)
        if outcome == DEQUEUED:
            self.tracking.forget(job_id)
            self.lifecycle.cancel(job)
        elif outcome == INTERRUPTED:
            if job.status != CANCELING:
                self.lifecycle.begin_cancel(job)
        elif job.status != CANCELING:
            if self.tracking.tracks(job_id) and self.host.history(job_id) is not None:
                # It finished a moment ago and its events are on their way: the outcome they
                # report (succeeded, failed) wins over the late cancel.
                self.lifecycle.begin_cancel(job)
            else:
                # Neither pending, running nor finished: ComfyUI no longer has the prompt (its
                # queue was cleared, or it belongs to an earlier ComfyUI process); nothing to stop.
                self.tracking.forget(job_id)
                self.lifecycle.cancel(job)
        return self.store.get(job_id)

    def _held_elsewhere(self, job_id: str) -> bool:
        held_here = {c.job_id for c in self.store.held()}
        return job_id not in held_here and self.store.claims.current(job_id) is not None

    def cancel_lost(self, job_id: str, reason: str) -> Job | None:
        """End a ``queued`` job ``canceled`` because ComfyUI's queue dropped its prompt (core's Clear
        queue or delete, or found missing by ``reconcile.py``); ``reason`` becomes its message.
        A job in any other status is left as it is. Returns the job, None for an unknown id."""
        job = self.store.get(job_id)
        if job is None or job.status != QUEUED:
            return job
        self.tracking.forget(job_id)
        return self.lifecycle.cancel(job, message=reason)

