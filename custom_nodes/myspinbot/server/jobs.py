"""The job service: turns a validated request into a ComfyUI prompt, follows it through
ComfyUI's execution events and records the outcome.

All methods run on the event loop's thread (the host delivers events there).
"""

from __future__ import annotations

import logging
import mimetypes
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from ..errors import code_from_message
from .api_errors import ApiError
from .host import Host
from .model import CANCELED, FAILED, QUEUED, RUNNING, SUCCEEDED, TERMINAL, Job, Output
from .pipelines import Pipeline
from .store import JobStore

log = logging.getLogger("myspinbot.jobs")

INPUT_SUBDIR = "myspinbot"
OUTPUT_SUBDIR = "myspinbot"
_CONTENT_TYPES = {".mp4": "video/mp4", ".webm": "video/webm", ".mkv": "video/x-matroska", ".wav": "audio/wav",
                  ".flac": "audio/flac", ".mp3": "audio/mpeg", ".png": "image/png", ".jpg": "image/jpeg"}


@dataclass
class _Run:
    """What the service tracks about a job's prompt while ComfyUI executes it."""

    nodes: int
    output_nodes: dict[str, str]
    output_types: dict[str, str]
    node_fraction: dict[str, float] = field(default_factory=dict)
    error: dict[str, Any] | None = None
    interrupted: bool = False


class JobService:
    def __init__(self, host: Host, store: JobStore, pipelines: dict[str, Pipeline], clock: Callable[[], float] = time.time):
        self.host = host
        self.store = store
        self.pipelines = pipelines
        self.clock = clock
        self._runs: dict[str, _Run] = {}
        host.subscribe(self._on_event)

    # --- lifecycle -----------------------------------------------------------------------
    def recover(self) -> int:
        """Mark jobs a previous ComfyUI process left ``queued``/``running`` as failed
        (``lost_on_restart``): ComfyUI's own queue does not survive a restart. Returns how many."""
        lost = self.store.with_status(QUEUED, RUNNING)
        for job in lost:
            self._finish(job, FAILED, error={"code": "lost_on_restart",
                                             "message": "ComfyUI restarted before the job finished", "details": {}})
        return len(lost)

    def pipeline(self, name: str | None) -> Pipeline:
        if not name:
            raise ApiError(422, "missing_pipeline", "field 'pipeline' is required", {"field": "pipeline", "pipelines": sorted(self.pipelines)})
        pipeline = self.pipelines.get(name)
        if pipeline is None:
            raise ApiError(422, "unknown_pipeline", f"unknown pipeline '{name}'", {"field": "pipeline", "pipelines": sorted(self.pipelines)})
        return pipeline

    def staging_dir(self, job_id: str) -> Path:
        """Where a job's uploads live: ``<ComfyUI input>/myspinbot/<job id>/``."""
        return self.host.input_dir / INPUT_SUBDIR / job_id

    async def submit(self, job_id: str, pipeline: Pipeline, raw_values: dict[str, Any]) -> Job:
        """Validate the values, bind them into the pipeline's workflow and queue it in ComfyUI.

        File values are paths relative to ComfyUI's input folder. Raises ``ApiError``; on error
        no job is recorded."""
        values = pipeline.coerce(raw_values)
        built = pipeline.build(values, save_prefix=f"{OUTPUT_SUBDIR}/{job_id}/output")
        job = Job(id=job_id, pipeline=pipeline.name, status=QUEUED, created_at=self.clock(),
                  params={k: v for k, v in values.items()})
        self._runs[job_id] = _Run(nodes=len(built.prompt), output_nodes=built.output_nodes,
                                  output_types={o.name: o.type for o in pipeline.outputs})
        self.store.save(job)
        try:
            await self.host.enqueue(job_id, built.prompt)
        except BaseException:
            self._runs.pop(job_id, None)
            self.store.delete(job_id)
            raise
        return job

    def get(self, job_id: str) -> Job | None:
        return self.store.get(job_id)

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
                job.status, job.started_at = RUNNING, self.clock()
                self.store.save(job)
        elif event == "execution_cached":
            for node in data.get("nodes") or []:
                run.node_fraction[str(node)] = 1.0
        elif event == "executing" and data.get("node") is not None:
            for node, frac in list(run.node_fraction.items()):
                if frac < 1.0:
                    run.node_fraction[node] = 1.0
            run.node_fraction.setdefault(str(data["node"]), 0.0)
            self._save_progress(job_id, run)
        elif event == "progress" and data.get("node") is not None:
            total = float(data.get("max") or 0)
            if total > 0:
                run.node_fraction[str(data["node"])] = min(1.0, float(data.get("value", 0)) / total)
                self._save_progress(job_id, run)
        elif event == "execution_error":
            message = str(data.get("exception_message") or "").strip()
            code = code_from_message(message)
            run.error = {
                "code": code,
                "message": message.split("] ", 1)[1] if message.startswith(f"[{code}] ") else message,
                "details": {"node_type": data.get("node_type"), "exception_type": data.get("exception_type")},
            }
        elif event == "execution_interrupted":
            run.interrupted = True
        elif event == "executing" and data.get("node") is None:
            self._finalize(job_id, run)

    def _save_progress(self, job_id: str, run: _Run) -> None:
        job = self.store.get(job_id)
        if job is None or job.status in TERMINAL:
            return
        value = min(0.99, sum(run.node_fraction.values()) / max(1, run.nodes))
        if value > job.progress + 0.005:
            job.progress = value
            if job.status == QUEUED:
                job.status, job.started_at = RUNNING, self.clock()
            self.store.save(job)

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
        outputs, missing = self._collect_outputs(history.get("outputs") or {}, run)
        if missing:
            self._finish(job, FAILED, outputs=outputs, error={"code": "output_missing",
                                                              "message": f"the workflow finished without writing: {', '.join(missing)}",
                                                              "details": {"outputs": missing}})
            return
        self._finish(job, SUCCEEDED, outputs=outputs)

    def _collect_outputs(self, history_outputs: dict[str, Any], run: _Run) -> tuple[list[Output], list[str]]:
        outputs, missing = [], []
        root = self.host.output_dir.resolve()
        for name, node_id in run.output_nodes.items():
            entry = _first_file(history_outputs.get(node_id) or {})
            path = (root / entry.get("subfolder", "") / entry.get("filename", "")).resolve() if entry else None
            if entry is None or entry.get("type", "output") != "output" or not path.is_relative_to(root) or not path.is_file():
                missing.append(name)
                continue
            outputs.append(Output(name=name, type=run.output_types.get(name, "file"),
                                  content_type=content_type_for(path), size_bytes=path.stat().st_size,
                                  path=path.relative_to(root).as_posix()))
        return outputs, missing

    def _finish(self, job: Job, status: str, *, outputs: list[Output] | None = None, error: dict | None = None) -> None:
        job.status = status
        job.completed_at = self.clock()
        if outputs is not None:
            job.outputs = outputs
        job.error = error
        if status == SUCCEEDED:
            job.progress = 1.0
        self.store.save(job)
        log.info("myspinbot: job %s %s", job.id, status)


def _first_file(node_output: dict[str, Any]) -> dict[str, Any] | None:
    """The first ``{"filename", "subfolder", "type"}`` entry in a node's UI output."""
    for value in node_output.values():
        if isinstance(value, list):
            for item in value:
                if isinstance(item, dict) and "filename" in item:
                    return item
    return None


def content_type_for(path: Path) -> str:
    return _CONTENT_TYPES.get(path.suffix.lower()) or mimetypes.guess_type(path.name)[0] or "application/octet-stream"
