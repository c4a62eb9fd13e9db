"""The job record, its outputs and the uploaded assets (their public JSON: ``views.py``)."""

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
    quality: dict[str, Any] | None = None
    """The lip-sync score of a video output (``jobs/quality.py``): ``av_offset_frames``, ``lse_d``,
    ``lse_c`` (None, with ``skipped: {"code", "message"}``, when the video could not be scored);
    None when no score node ran (the SyncNet model is not installed)."""


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
