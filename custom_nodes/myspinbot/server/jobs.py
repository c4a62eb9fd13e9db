"""The job service: turns a validated request into a ComfyUI prompt, follows it through
ComfyUI's execution events and records the outcome.

All methods run on the event loop's thread (the host delivers events there).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import logging
import mimetypes
import os
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Awaitable, Callable

from ..errors import code_from_message
from .api_errors import ApiError
from .events import OUTPUT, PROGRESS, STAGE, STATUS, JobEvents, KeyedLocks
from .host import Host
from .model import (CANCELED, CANCELING, FAILED, QUEUED, RUNNING, STATUSES, STORE_STAGE, SUCCEEDED, TERMINAL, Asset, Job,
                    Output)
from .pipelines import FILE_KINDS, Param, Pipeline, Stage
from .progress import ProgressTracker, initial_detail
from .store import IdempotencyRecord, JobStore, PromptRecord
from .asset_integrity import AssetIntegrity
from .settings import Settings
from .uploads import Sniffed

log = logging.getLogger("myspinbot.jobs")

INPUT_SUBDIR = "myspinbot"
OUTPUT_SUBDIR = "myspinbot"
ASSETS_SUBDIR = "assets"
_CONTENT_TYPES = {".mp4": "video/mp4", ".webm": "video/webm", ".mkv": "video/x-matroska", ".wav": "audio/wav",
                  ".flac": "audio/flac", ".mp3": "audio/mpeg", ".png": "image/png", ".jpg": "image/jpeg"}
ASSET_ID = re.compile(r"^[0-9a-f]{64}$")

DEFAULT_RETRY_AFTER_S = 30
IDEMPOTENCY_TTL_S = 24 * 3600.0
PROGRESS_INTERVAL_S = 0.25
HEARTBEAT_S = 15.0
MAX_PAGE = 100
DEFAULT_PAGE = 20

QUEUED_MESSAGE = "waiting in ComfyUI's queue"


@dataclass
class _Run:
    """What the service tracks about a job's prompt while ComfyUI executes it."""

    nodes: int
    output_nodes: dict[str, str]
    output_types: dict[str, str]
    node_stages: dict[str, Stage] = field(default_factory=dict)
    node_fraction: dict[str, float] = field(default_factory=dict)
    error: dict[str, Any] | None = None
    interrupted: bool = False
    step: tuple[float, float] | None = None  # the running node's ComfyUI progress (value, max)
    tracker: ProgressTracker | None = None  # weighted stage progress and ETA (progress.py)


@dataclass
class _Gate:
    """Progress throttle of one job: when the last progress event went out and the one held back."""

    last: float = float("-inf")
    pending: Job | None = None
    handle: asyncio.TimerHandle | None = None


class JobService:
    def __init__(self, host: Host, store: JobStore, pipelines: dict[str, Pipeline], clock: Callable[[], float] = time.time,
                 *, max_queued: int | None = None, retry_after_s: int = DEFAULT_RETRY_AFTER_S,
                 idempotency_ttl_s: float = IDEMPOTENCY_TTL_S, progress_interval_s: float = PROGRESS_INTERVAL_S,
                 heartbeat_s: float = HEARTBEAT_S, max_upload_bytes: int | None = None,
                 require_models: Callable[[list[str]], None] | None = None, settings: Settings | None = None):
        self.settings = settings if settings is not None else Settings.from_env()
        self.host = host
        self.require_models = require_models
        self.store = store
        self.pipelines = pipelines
        self.clock = clock
        self.max_queued = max_queued if max_queued is not None else self.settings.max_queued
        self.retry_after_s = retry_after_s
        self.idempotency_ttl_s = idempotency_ttl_s
        self.progress_interval_s = progress_interval_s
        self.heartbeat_s = heartbeat_s
        self.max_upload_bytes = max_upload_bytes if max_upload_bytes is not None else self.settings.max_upload_bytes
        self.events = JobEvents()
        self._key_locks = KeyedLocks()
        self._gates: dict[str, _Gate] = {}
        self._runs: dict[str, _Run] = {}
        self._asset_integrity = AssetIntegrity()
        host.subscribe(self._on_event)

    # --- lifecycle -----------------------------------------------------------------------
    def recover(self) -> int:
        """Settle the jobs a previous ComfyUI process left unfinished (``recovery.py``): ``canceling``
        ones become ``canceled``; ``queued``/``running`` ones that cannot run again (two runs
        already cut short, no stored prompt, inputs gone) fail with ``lost_on_restart``; the rest are
        left for ``JobRecovery.resume`` to queue again once ComfyUI's server runs (the plugin
        does both). Returns how many were lost."""
        from .recovery import JobRecovery

        return len(JobRecovery(self).recover().lost)

    def pipeline(self, name: str | None) -> Pipeline:
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
        return self.host.input_dir / INPUT_SUBDIR / job_id

    # --- admission -----------------------------------------------------------------------
    def check_capacity(self) -> None:
        """Raise 429 ``queue_full`` (with ``Retry-After``) when ``max_queued`` jobs are already waiting."""
        queued = self.store.count_status(QUEUED)
        if queued >= self.max_queued:
            raise ApiError(429, "queue_full", f"{queued} jobs are already waiting (at most {self.max_queued}); retry later",
                           {"queued": queued, "max_queued": self.max_queued, "retry_after_s": self.retry_after_s},
                           headers={"Retry-After": str(self.retry_after_s)})

    async def submit(self, job_id: str, pipeline: Pipeline, raw_values: dict[str, Any]) -> Job:
        """Validate the values, bind them into the pipeline's workflow and queue it in ComfyUI.

        File values are paths relative to ComfyUI's input folder. Raises ``ApiError``; on error
        no job is recorded."""
        values = pipeline.coerce(raw_values)
        needed = pipeline.models(values)
        if needed and self.require_models is not None:
            self.require_models(needed)  # preflight: ApiError 409 models_missing before anything is queued
        built = pipeline.build(values, save_prefix=f"{OUTPUT_SUBDIR}/{job_id}/output")
        # No await between this check and the save: concurrent submissions cannot overshoot the limit.
        self.check_capacity()
        node_stages = pipeline.node_stages(built.prompt)
        tracker = ProgressTracker.for_prompt(pipeline.stages, node_stages)
        job = Job(id=job_id, pipeline=pipeline.name, status=QUEUED, created_at=self.clock(),
                  params={k: v for k, v in values.items()}, message=QUEUED_MESSAGE,
                  progress_detail=initial_detail(tracker.plan))
        self._runs[job_id] = _Run(nodes=len(built.prompt), output_nodes=built.output_nodes,
                                  output_types={o.name: o.type for o in pipeline.outputs},
                                  node_stages=node_stages, tracker=tracker)
        self.store.save(job)
        # The prompt is kept so that a restarted ComfyUI can queue the job again (recovery.py).
        self.store.save_prompt(PromptRecord(job_id, built.prompt, built.output_nodes,
                                            {n: s.name for n, s in node_stages.items()}))
        try:
            await self.host.enqueue(job_id, built.prompt)
        except BaseException:
            self._runs.pop(job_id, None)
            self.store.delete(job_id)
            raise
        return job

    # --- idempotency ---------------------------------------------------------------------
    def idempotent_job(self, key: str) -> tuple[IdempotencyRecord, Job] | None:
        """The live (younger than the TTL) record of ``key`` and its job, if any."""
        record = self.store.idempotency(key)
        if record is None or record.created_at < self.clock() - self.idempotency_ttl_s:
            return None
        job = self.store.get(record.job_id)
        return (record, job) if job is not None else None

    async def submit_once(self, key: str | None, request_hash: str,
                          create: Callable[[], Awaitable[Job]]) -> tuple[Job, bool]:
        """Run ``create`` unless ``key`` already created a job within the TTL; returns ``(job, replayed)``.

        Submissions with the same key are serialized by a per-key lock, so concurrent ones create
        one job. The same key with a different ``request_hash`` raises 422 ``idempotency_key_reused``.
        A failed ``create`` records nothing, so the key can be retried."""
        if key is None:
            return await create(), False
        async with self._key_locks.hold(key):
            found = self.idempotent_job(key)
            if found is not None:
                record, job = found
                if record.request_hash != request_hash:
                    raise ApiError(422, "idempotency_key_reused",
                                   "this Idempotency-Key was already used with a different request",
                                   {"header": "Idempotency-Key"})
                return job, True
            job = await create()
            now = self.clock()
            self.store.put_idempotency(IdempotencyRecord(key, request_hash, job.id, now), expire_before=now - self.idempotency_ttl_s)
            return job, False

    # --- assets --------------------------------------------------------------------------
    def assets_dir(self) -> Path:
        """``<ComfyUI input>/myspinbot/assets/``: uploaded inputs, named by their sha256."""
        return self.host.input_dir / INPUT_SUBDIR / ASSETS_SUBDIR

    def asset(self, asset_id: str) -> Asset | None:
        return self.store.asset(asset_id) if ASSET_ID.match(asset_id) else None

    def store_asset(self, staged: Path, sha256: str, size: int, sniffed: Sniffed) -> tuple[Asset, bool]:
        """Move a checked upload to its content address and record it; returns ``(asset, created)``.
        Uploading the same bytes again keeps the first record."""
        existing = self.store.asset(sha256)
        rel = existing.path if existing else f"{INPUT_SUBDIR}/{ASSETS_SUBDIR}/{sha256}{sniffed.ext}"
        dest = self.host.input_dir / rel
        if existing and dest.is_file() and self._asset_integrity.matches(dest, sha256):
            staged.unlink(missing_ok=True)
            return existing, False
        dest.parent.mkdir(parents=True, exist_ok=True)
        os.replace(staged, dest)  # new, or repairs a file that was overwritten in the input folder
        self._asset_integrity.remember(dest, sha256)
        if existing:
            return existing, False
        asset = Asset(id=sha256, kind=sniffed.kind, content_type=sniffed.content_type, size_bytes=size,
                      path=rel, created_at=self.clock())
        return self.store.add_asset(asset), True

    def resolve_inputs(self, pipeline: Pipeline, inputs: dict[str, Any], *, bare_asset_ids: bool = False) -> dict[str, Any]:
        """Replace file parameters given as ``{"asset_id": "<sha256>"}`` (or, with ``bare_asset_ids``,
        the id alone, as in a form field) by the asset's path relative to ComfyUI's input folder.

        Anything else goes through as given, for ``Pipeline.coerce`` to check."""
        values = dict(inputs)
        for name, value in inputs.items():
            param = pipeline.param(name)
            if param is not None and param.kind in FILE_KINDS:
                values[name] = self._asset_path(param, value, bare_asset_ids)
        return values

    def _asset_path(self, param: Param, value: Any, bare: bool) -> str:
        if isinstance(value, dict) and set(value) == {"asset_id"}:
            asset_id = value["asset_id"]
        elif bare and isinstance(value, str):
            asset_id = value
        else:
            raise ApiError(422, "invalid_parameter",
                           f"parameter '{param.name}' must be {{\"asset_id\": \"<sha256>\"}} of a file uploaded to /myspinbot/assets",
                           {"field": param.name})
        if not isinstance(asset_id, str) or not ASSET_ID.match(asset_id):
            raise ApiError(422, "invalid_asset_id", f"parameter '{param.name}': an asset id is 64 lowercase hex digits (a sha256)",
                           {"field": param.name})
        asset = self.store.asset(asset_id)
        if asset is None or not (self.host.input_dir / asset.path).is_file():
            raise ApiError(422, "asset_not_found", f"parameter '{param.name}': no asset '{asset_id}'",
                           {"field": param.name, "asset_id": asset_id})
        if not self._asset_integrity.matches(self.host.input_dir / asset.path, asset_id):
            # Overwritten in ComfyUI's input folder (e.g. by core's POST /upload/image): never run on it.
            raise ApiError(409, "asset_modified",
                           f"parameter '{param.name}': asset '{asset_id}' no longer holds the uploaded bytes; upload it again",
                           {"field": param.name, "asset_id": asset_id})
        if asset.kind != param.kind:
            raise ApiError(422, "asset_kind_mismatch",
                           f"parameter '{param.name}' takes {param.kind}, asset '{asset_id}' is {asset.kind}",
                           {"field": param.name, "asset_id": asset_id, "expected": param.kind, "actual": asset.kind})
        return asset.path

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
        """A page of jobs, newest first, and the cursor of the next page (None on the last)."""
        unknown = [s for s in statuses if s not in STATUSES]
        if unknown:
            raise ApiError(422, "invalid_parameter", f"unknown status '{unknown[0]}'", {"field": "status", "statuses": list(STATUSES)})
        if not 1 <= limit <= MAX_PAGE:
            raise ApiError(422, "invalid_parameter", f"limit must be between 1 and {MAX_PAGE}", {"field": "limit"})
        after = decode_cursor(cursor) if cursor else None
        jobs = self.store.page(statuses=statuses, pipelines=pipelines, limit=limit + 1, after=after)
        if len(jobs) <= limit:
            return jobs, None
        jobs = jobs[:limit]
        return jobs, encode_cursor(jobs[-1])

    def output_path(self, job: Job, name: str) -> Path | None:
        """The file behind a recorded output, if it is still inside ComfyUI's output folder."""
        output = job.output(name)
        if output is None:
            return None
        root = self.host.output_dir.resolve()
        path = (root / output.path).resolve()
        if not path.is_relative_to(root) or not path.is_file():
            return None
        return path

    # --- cancel --------------------------------------------------------------------------
    def cancel(self, job_id: str) -> Job | None:
        """Cancel a job; idempotent. A queued job leaves ComfyUI's queue and is ``canceled`` at once;
        a running one is interrupted (that prompt only) and stays ``canceling`` until ComfyUI
        reports the interruption; a finished one is returned as it is. None for an unknown id."""
        job = self.store.get(job_id)
        if job is None or job.status in TERMINAL:
            return job
        outcome = self.host.cancel(job_id)
        if outcome == "pending":
            self._runs.pop(job_id, None)
            self._finish(job, CANCELED)
        elif outcome == "running":
            if job.status != CANCELING:
                self._set_status(job, CANCELING, message="canceling")
        elif job.status != CANCELING:
            if job_id in self._runs and self.host.history(job_id) is not None:
                # It finished a moment ago and its events are on their way: the outcome they
                # report (succeeded, failed) wins over the late cancel.
                self._set_status(job, CANCELING, message="canceling")
            else:
                # Neither pending, running nor finished: ComfyUI no longer has the prompt (its
                # queue was cleared, or it belongs to an earlier ComfyUI process); nothing to stop.
                self._runs.pop(job_id, None)
                self._finish(job, CANCELED)
        return self.store.get(job_id)

    def cancel_lost(self, job_id: str, reason: str) -> Job | None:
        """End a ``queued`` job ``canceled`` because ComfyUI's queue dropped its prompt (core's Clear
        queue or delete, or found missing by ``reconcile.py``); ``reason`` becomes its message.
        A job in any other status is left as it is. Returns the job, None for an unknown id."""
        job = self.store.get(job_id)
        if job is None or job.status != QUEUED:
            return job
        self._runs.pop(job_id, None)
        self._finish(job, CANCELED, message=reason)
        return job

    # --- ComfyUI events ------------------------------------------------------------------
    def _on_event(self, event: str, data: dict[str, Any]) -> None:
        prompt_id = data.get("prompt_id")
        run = self._runs.get(prompt_id) if prompt_id else None
        if run is None:
            return
        try:
            self._apply(prompt_id, run, event, data)
        except Exception:  # an observer must never break ComfyUI's event flow
            log.exception("myspinbot: failed to apply %s for job %s", event, prompt_id)

    def _apply(self, job_id: str, run: _Run, event: str, data: dict[str, Any]) -> None:
        if event == "execution_start":
            job = self.store.get(job_id)
            if job and job.status == QUEUED:
                job.started_at = self.clock()
                self._set_status(job, RUNNING, message="started")
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
            self._save_progress(job_id, run, stage=run.node_stages.get(node))
        elif event == "progress" and data.get("node") is not None:
            total = float(data.get("max") or 0)
            if total > 0:
                run.node_fraction[str(data["node"])] = min(1.0, float(data.get("value", 0)) / total)
                run.step = (float(data.get("value", 0)), total)
                self._save_progress(job_id, run)
        elif event == "execution_error":
            message = str(data.get("exception_message") or "").strip()
            code = code_from_message(message, exception_type=data.get("exception_type") or None)
            run.error = {
                "code": code,
                "message": message.split("] ", 1)[1] if message.startswith(f"[{code}] ") else message,
                "details": {"node_type": data.get("node_type"), "exception_type": data.get("exception_type")},
            }
        elif event == "execution_interrupted":
            run.interrupted = True
            self._finalize(job_id, run)  # nothing more to learn from ComfyUI: canceled now
        elif event == "executing" and data.get("node") is None:
            self._finalize(job_id, run)

    def _save_progress(self, job_id: str, run: _Run, stage: Stage | None = None) -> None:
        job = self.store.get(job_id)
        if job is None or job.status in TERMINAL:
            return
        changed = False
        if stage is not None and stage.name != job.stage:
            job.stage, changed = stage.name, True
            if job.status != CANCELING:
                job.message = stage.message
            self.events.notify(STAGE, job)  # listeners (metrics) time the stages
        if run.tracker is None:
            pipeline = self.pipelines.get(job.pipeline)
            run.tracker = ProgressTracker.for_prompt(pipeline.stages if pipeline else (), run.node_stages)
        # Weighted by stage, never lower than what was reported, < 1 until succeeded (progress.py).
        now = self.clock()
        measure = run.tracker.measure(run.node_fraction, job.stage, run.step, now, floor=job.progress)
        if not run.tracker.worth_saving(job.progress, job.progress_detail, measure, now, stage_changed=changed):
            return
        job.progress, job.progress_detail = measure.value, measure.detail
        if job.status == QUEUED:
            job.started_at = self.clock()
            self._set_status(job, RUNNING, message=job.message if job.stage else "started")
        else:
            self.store.save(job)
        self._publish_progress(job)

    def _finalize(self, job_id: str, run: _Run) -> None:
        self._runs.pop(job_id, None)
        job = self.store.get(job_id)
        if job is None or job.status in TERMINAL:
            return
        if run.interrupted:
            self._finish(job, CANCELED)
            return
        if run.error is not None:
            self._finish(job, FAILED, error=run.error)
            return
        history = self.host.history(job_id) or {}
        outputs, missing = self._collect_outputs(history.get("outputs") or {}, run, job_id=job_id)
        if missing:
            self._finish(job, FAILED, outputs=outputs, error={"code": "output_missing",
                                                              "message": f"the workflow finished without writing: {', '.join(missing)}",
                                                              "details": {"outputs": missing}})
            return
        self._finish(job, SUCCEEDED, outputs=outputs)

    def _collect_outputs(self, history_outputs: dict[str, Any], run: _Run,
                         job_id: str | None = None) -> tuple[list[Output], list[str]]:
        """The recorded outputs (and the names of those missing). An output that a storage node
        (``MySpinBotSaveToMinIO``) uploaded carries its public ``storage`` block; the retry record
        of a pending upload is kept in the store (``job_id``), never in the job's JSON."""
        outputs, missing = [], []
        root = self.host.output_dir.resolve()
        blocks = _storage_blocks(history_outputs)
        for name, node_id in run.output_nodes.items():
            entry = _first_file(history_outputs.get(node_id) or {})
            path = (root / entry.get("subfolder", "") / entry.get("filename", "")).resolve() if entry else None
            if entry is None or entry.get("type", "output") != "output" or not path.is_relative_to(root) or not path.is_file():
                missing.append(name)
                continue
            outputs.append(Output(name=name, type=run.output_types.get(name, "file"),
                                  content_type=content_type_for(path), size_bytes=path.stat().st_size,
                                  path=path.relative_to(root).as_posix()))
            block = _storage_block_for(blocks, name, path)
            if block is not None:
                outputs[-1].storage = _public_storage(block)
                pending = block.get("pending_upload")
                if job_id is not None and block.get("status") == "pending" and isinstance(pending, dict):
                    self.store.put_pending_upload(job_id, name, pending)
        return outputs, missing

    # --- storage of outputs --------------------------------------------------------------
    async def upload_output(self, job: Job, name: str) -> Job:
        """Upload a pending output to object storage again (``POST .../outputs/{name}/upload``).

        404 ``output_not_found``; 409 ``output_already_stored`` / ``output_not_pending``;
        503 ``storage_unavailable`` (storage still down or refusing; the job keeps its pending
        record, with ``attempts`` counted). Returns the updated job."""
        from ..errors import StorageError
        from ..storage import PendingUpload, comfy_settings_path, load_settings, retry_upload

        output = job.output(name)
        if output is None:
            raise ApiError(404, "output_not_found", f"job {job.id} has no output '{name}'",
                           {"outputs": [o.name for o in job.outputs]})
        if output.storage and output.storage.get("status") == "stored":
            raise ApiError(409, "output_already_stored", f"output '{name}' is already stored",
                           {"uri": output.storage.get("uri")})
        raw = self.store.pending_upload(job.id, name)
        if raw is None:
            raise ApiError(409, "output_not_pending", f"output '{name}' has no pending upload", {"output": name})
        record = PendingUpload.from_dict(raw)

        def attempt():
            settings = load_settings(settings_file=comfy_settings_path(self.host.user_dir))
            return retry_upload(record, settings)

        try:
            stored = await asyncio.get_running_loop().run_in_executor(None, attempt)
        except StorageError as err:
            self.store.put_pending_upload(job.id, name, record.to_dict())
            code = getattr(err, "code", "storage_unavailable")
            raise ApiError(503, "storage_unavailable", f"object storage did not take output '{name}': {err}",
                           {"storage_code": code, "attempts": record.attempts}) from None
        except Exception as err:  # a settings file that does not parse, and the like
            self.store.put_pending_upload(job.id, name, record.to_dict())
            raise ApiError(503, "storage_unavailable", f"object storage did not take output '{name}': {err}",
                           {"attempts": record.attempts}) from None
        fresh = self.store.get(job.id) or job
        target = fresh.output(name)
        if target is not None:
            target.storage = {"kind": "s3", "uri": stored.uri, "presigned_url": stored.presigned_url,
                              "status": "stored", "warning": None}
            self.store.save(fresh)
        self.store.delete_pending_upload(job.id, name)
        return fresh

    def _set_status(self, job: Job, status: str, *, message: str | None = None) -> None:
        job.status = status
        if message is not None:
            job.message = message
        self.store.save(job)
        if status == RUNNING:
            self.store.count_run(job.id)  # runs that started: recovery.py limits re-runs by them
        self.events.publish(STATUS, job)

    def _finish(self, job: Job, status: str, *, outputs: list[Output] | None = None, error: dict | None = None,
                message: str | None = None) -> None:
        job.status = status
        job.completed_at = self.clock()
        if outputs is not None:
            job.outputs = outputs
        job.error = error
        if status == SUCCEEDED:
            job.progress, job.stage = 1.0, STORE_STAGE
            job.message = f"done: {len(job.outputs)} output{'s' if len(job.outputs) != 1 else ''} stored"
        elif status == FAILED:
            job.message = (error or {}).get("message") or "failed"
        else:
            job.message = message or "canceled"
        self.store.save(job)
        log.info("myspinbot: job %s %s", job.id, status)
        self._close_gate(job.id)
        if status == SUCCEEDED:
            self.events.publish(PROGRESS, job)
            for output in job.outputs:
                self.events.publish(OUTPUT, job, output)
        self.events.publish(STATUS, job)

    # --- progress throttle ---------------------------------------------------------------
    def _publish_progress(self, job: Job) -> None:
        """Publish a progress event at most every ``progress_interval_s`` per job; the latest held
        back goes out when the interval is over (so the last value always arrives)."""
        if not self.events.has_subscribers(job.id):
            return
        gate = self._gates.setdefault(job.id, _Gate())
        now = time.monotonic()
        if gate.handle is None and now - gate.last >= self.progress_interval_s:
            gate.last = now
            self.events.publish(PROGRESS, job)
            return
        gate.pending = job
        if gate.handle is None:
            delay = max(0.0, self.progress_interval_s - (now - gate.last))
            gate.handle = asyncio.get_running_loop().call_later(delay, self._flush_progress, job.id)

    def _flush_progress(self, job_id: str) -> None:
        gate = self._gates.get(job_id)
        if gate is None:
            return
        gate.handle = None
        if gate.pending is not None:
            job, gate.pending = gate.pending, None
            gate.last = time.monotonic()
            self.events.publish(PROGRESS, job)

    def _close_gate(self, job_id: str) -> None:
        gate = self._gates.pop(job_id, None)
        if gate is not None and gate.handle is not None:
            gate.handle.cancel()


def encode_cursor(job: Job) -> str:
    raw = json.dumps([job.created_at, job.id], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[float, str]:
    """Raises 422 ``invalid_cursor`` for anything ``encode_cursor`` did not make: too long, not
    base64 of ``[finite number, job id]`` (so no deep nesting, NaN or surrogate reaches the store)."""
    try:
        if len(cursor) > 200:  # encode_cursor makes about 80 characters; shorter input also bounds the nesting
            raise ValueError(cursor)
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        value = json.loads(raw)
        if not isinstance(value, list) or len(value) != 2:
            raise ValueError(cursor)
        created_at, job_id = value
        if isinstance(created_at, bool) or not isinstance(created_at, (int, float)) or not isinstance(job_id, str):
            raise ValueError(cursor)
        created_at = float(created_at)
        if not abs(created_at) < float("inf") or not re.fullmatch(r"[0-9a-f-]{1,64}", job_id):  # NaN fails the first
            raise ValueError(cursor)
        return created_at, job_id
    except (ValueError, TypeError, OverflowError, RecursionError, binascii.Error, UnicodeDecodeError):
        raise ApiError(422, "invalid_cursor", "the cursor is not one this API returned", {"field": "cursor"}) from None


def _first_file(node_output: dict[str, Any]) -> dict[str, Any] | None:
    """The first ``{"filename", "subfolder", "type"}`` entry in a node's UI output."""
    for value in node_output.values():
        if isinstance(value, list):
            for item in value:
                if isinstance(item, dict) and "filename" in item:
                    return item
    return None


def _storage_blocks(history_outputs: dict[str, Any]) -> list[dict[str, Any]]:
    """Every ``myspinbot_storage`` block in a prompt's history outputs (see ``nodes/save_minio.py``)."""
    from ..storage import UI_KEY

    found = []
    for node_output in history_outputs.values():
        if isinstance(node_output, dict):
            found.extend(b for b in node_output.get(UI_KEY) or [] if isinstance(b, dict))
    return found


def _storage_block_for(blocks: list[dict[str, Any]], name: str, path: Path) -> dict[str, Any] | None:
    """The block of output ``name``: the one whose local file is the output's, else the one the
    storage node named after it (its ``name`` input)."""
    for block in blocks:
        local = block.get("local_path")
        if local and Path(local).resolve() == path:
            return block
    return next((b for b in blocks if b.get("name") == name), None)


def _public_storage(block: dict[str, Any]) -> dict[str, Any]:
    status = "stored" if block.get("status") == "stored" else "pending"
    uri = block.get("uri")
    if uri is None and isinstance(block.get("pending_upload"), dict):
        pending = block["pending_upload"]
        if pending.get("bucket") and pending.get("key"):
            uri = f"s3://{pending['bucket']}/{pending['key']}"  # where it will be once uploaded
    return {"kind": "s3", "uri": uri, "presigned_url": block.get("presigned_url") if status == "stored" else None,
            "status": status, "warning": block.get("warning")}


def content_type_for(path: Path) -> str:
    return _CONTENT_TYPES.get(path.suffix.lower()) or mimetypes.guess_type(path.name)[0] or "application/octet-stream"
