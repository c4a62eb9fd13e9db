"""The job record and its public JSON form."""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass, field
from typing import Any

QUEUED, RUNNING, SUCCEEDED, FAILED, CANCELED = "queued", "running", "succeeded", "failed", "canceled"
TERMINAL = frozenset({SUCCEEDED, FAILED, CANCELED})


@dataclass
class Output:
    """A file a job produced. ``path`` is relative to ComfyUI's output folder and never leaves the server."""

    name: str
    type: str
    content_type: str
    size_bytes: int
    path: str


@dataclass
class Job:
    """One talking-head job; times are Unix seconds (float), ``progress`` is 0..1."""

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

    def output(self, name: str) -> Output | None:
        return next((o for o in self.outputs if o.name == name), None)


def iso(ts: float | None) -> str | None:
    """Unix seconds → ISO 8601 UTC with milliseconds (``2026-11-22T04:37:00.123Z``), None stays None."""
    if ts is None:
        return None
    return _dt.datetime.fromtimestamp(ts, _dt.timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def job_to_json(job: Job, base: str) -> dict[str, Any]:
    """The public job document; ``base`` is the API prefix the client used (``/myspinbot`` or ``/api/myspinbot``)."""
    self_url = f"{base}/jobs/{job.id}"
    return {
        "id": job.id,
        "pipeline": job.pipeline,
        "status": job.status,
        "created_at": iso(job.created_at),
        "started_at": iso(job.started_at),
        "completed_at": iso(job.completed_at),
        "progress": {"value": round(job.progress, 4)},
        "outputs": [
            {
                "name": o.name,
                "type": o.type,
                "content_type": o.content_type,
                "size_bytes": o.size_bytes,
                "url": f"{self_url}/outputs/{o.name}",
            }
            for o in job.outputs
        ],
        "error": job.error,
        "urls": {"self": self_url},
    }
