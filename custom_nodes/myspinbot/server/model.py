"""The job record and its public JSON form."""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass, field
from typing import Any

QUEUED, RUNNING, CANCELING = "queued", "running", "canceling"
SUCCEEDED, FAILED, CANCELED = "succeeded", "failed", "canceled"
EXPIRED = "expired"
"""A finished job past its retention: its input and output files are removed, the record stays."""
TERMINAL = frozenset({SUCCEEDED, FAILED, CANCELED, EXPIRED})
STATUSES = (QUEUED, RUNNING, CANCELING, SUCCEEDED, FAILED, CANCELED, EXPIRED)

STORE_STAGE = "store"
"""The service's own last stage: recording a successful job's outputs (every pipeline ends in it)."""


@dataclass
class Output:
    """A file a job produced. ``path`` is relative to ComfyUI's output folder and never leaves the server."""

    name: str
    type: str
    content_type: str
    size_bytes: int
    path: str
    storage: dict[str, Any] | None = None
    """Where object storage holds the file: ``kind`` (``s3``), ``uri``, ``presigned_url``, ``status``
    (``stored`` / ``pending``), ``warning``; None when the pipeline stores nothing. Public: never a
    credential nor a local path (the pending retry record stays in the store's ``output_uploads``)."""


@dataclass
class Job:
    """One talking-head job; times are Unix seconds (float), ``progress`` is 0..1.

    ``stage`` is the pipeline stage last reached (``None`` before the first), ``message`` a short
    human-readable line about where the job stands."""

    id: str
    pipeline: str
    status: str = QUEUED
    created_at: float = 0.0
    started_at: float | None = None
    completed_at: float | None = None
    progress: float = 0.0
    params: dict[str, Any] = field(default_factory=dict)
    outputs: list[Output] = field(default_factory=list)
    error: dict[str, Any] | None = None
    stage: str | None = None
    message: str | None = None
    progress_detail: dict[str, Any] = field(default_factory=dict)
    """``stage_index``, ``stages``, ``step``, ``steps``, ``eta_seconds`` (see ``progress.py``)."""

    def output(self, name: str) -> Output | None:
        return next((o for o in self.outputs if o.name == name), None)


@dataclass(frozen=True)
class Asset:
    """An uploaded input file, content-addressed: ``id`` is the sha256 of its bytes.

    ``path`` is relative to ComfyUI's input folder (``myspinbot/assets/<sha256><ext>``)."""

    id: str
    kind: str  # "image" | "audio"
    content_type: str
    size_bytes: int
    path: str
    created_at: float


def iso(ts: float | None) -> str | None:
    """Unix seconds → ISO 8601 UTC with milliseconds (``2026-11-22T04:37:00.123Z``), None stays None."""
    if ts is None:
        return None
    return _dt.datetime.fromtimestamp(ts, _dt.timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def output_to_json(job: Job, output: Output, base: str) -> dict[str, Any]:
    """An output; ``storage`` is there only when the pipeline stored it (uploaded or pending)."""
    body = {
        "name": output.name,
        "type": output.type,
        "content_type": output.content_type,
        "size_bytes": output.size_bytes,
        "url": f"{base}/jobs/{job.id}/outputs/{output.name}",
    }
    if output.storage:
        body["storage"] = storage_to_json(output.storage)
    return body


STORAGE_FIELDS = ("kind", "uri", "presigned_url", "status", "warning")


def storage_to_json(storage: dict[str, Any] | None) -> dict[str, Any] | None:
    """The public storage block of an output (only the documented fields), or None."""
    if not storage:
        return None
    return {k: storage.get(k) for k in STORAGE_FIELDS}


def progress_to_json(job: Job) -> dict[str, Any]:
    """``value`` (0..1, weighted by stage), ``stage`` / ``message``, and where the job stands:
    ``stage_index`` (0-based, into the job's ``stages`` stages), the running node's ComfyUI
    ``step`` / ``steps`` and ``eta_seconds`` (None until measurable; 0 once succeeded)."""
    detail = job.progress_detail or {}
    live = job.status not in TERMINAL
    stages = detail.get("stages")
    stage_index = detail.get("stage_index")
    if job.status == SUCCEEDED and stages:
        stage_index = stages - 1  # the last stage, store
    return {"value": round(job.progress, 4), "stage": job.stage, "message": job.message,
            "stage_index": stage_index, "stages": stages,
            "step": detail.get("step") if live else None, "steps": detail.get("steps") if live else None,
            "eta_seconds": detail.get("eta_seconds") if live else (0.0 if job.status == SUCCEEDED else None)}


def job_to_json(job: Job, base: str, queue_position: int | None = None) -> dict[str, Any]:
    """The public job document; ``base`` is the API prefix the client used (``/myspinbot`` or ``/api/myspinbot``).

    ``queue_position`` (1 = the next prompt ComfyUI starts) is only reported for queued jobs."""
    self_url = f"{base}/jobs/{job.id}"
    return {
        "id": job.id,
        "pipeline": job.pipeline,
        "status": job.status,
        "created_at": iso(job.created_at),
        "started_at": iso(job.started_at),
        "completed_at": iso(job.completed_at),
        "queue_position": queue_position if job.status == QUEUED else None,
        "progress": progress_to_json(job),
        "outputs": [output_to_json(job, o, base) for o in job.outputs],
        "error": job.error,
        "urls": {"self": self_url, "events": f"{self_url}/events", "cancel": f"{self_url}/cancel"},
    }


def asset_to_json(asset: Asset) -> dict[str, Any]:
    return {"asset_id": asset.id, "content_type": asset.content_type, "size_bytes": asset.size_bytes,
            "sha256": asset.id, "kind": asset.kind}
