"""The public JSON of the domain records (``model.Job``, ``Output``, ``Asset``), built as
contract models (``contract.jobs``) so every body the API sends is validated against the
contract on the way out; ``*_json`` return the JSON-ready dicts.

``base`` is the API prefix the client used (``/myspinbot`` or ``/api/myspinbot``): URLs in
the bodies start with it."""

from __future__ import annotations

from typing import Any, Optional

from .contract import jobs as c
from .contract.base import dump
from .contract.webhooks import JobWebhook
from .model import QUEUED, SUCCEEDED, TERMINAL, Asset, Job, Output, iso

STORAGE_FIELDS = ("kind", "uri", "presigned_url", "status", "warning")
_ABSENT: Any = object()


def progress_view(job: Job) -> c.Progress:
    """``value`` (0..1, weighted by stage), ``stage`` / ``message``, and where the job stands:
    ``stage_index`` (0-based, into the job's ``stages`` stages), the running node's ComfyUI
    ``step`` / ``steps`` and ``eta_seconds`` (None until measurable; 0 once succeeded)."""
    detail = job.progress_detail or {}
    live = job.status not in TERMINAL
    stages = detail.get("stages")
    stage_index = detail.get("stage_index")
    if job.status == SUCCEEDED and stages:
        stage_index = stages - 1  # the last stage, store
    return c.Progress(value=round(job.progress, 4), stage=job.stage, message=job.message,
                      stage_index=stage_index, stages=stages,
                      step=detail.get("step") if live else None, steps=detail.get("steps") if live else None,
                      eta_seconds=detail.get("eta_seconds") if live else (0.0 if job.status == SUCCEEDED else None))


def output_fields(job: Job, output: Output, base: str) -> dict[str, Any]:
    """An output's fields; ``storage`` only when the pipeline stored it (uploaded or pending),
    with only its public fields (never a credential nor a local path); ``quality`` only when
    the video was scored (or skipped, with the reason)."""
    fields: dict[str, Any] = {"name": output.name, "type": output.type, "content_type": output.content_type,
                              "size_bytes": output.size_bytes, "url": f"{base}/jobs/{job.id}/outputs/{output.name}"}
    if output.storage:
        fields["storage"] = c.OutputStorage(**{k: output.storage.get(k) for k in STORAGE_FIELDS})
    if output.quality:
        fields["quality"] = c.OutputQuality(**output.quality)
    return fields


def job_view(job: Job, base: str, queue_position: Optional[int] = None, *, webhook: Any = _ABSENT) -> c.Job:
    """The public job. ``queue_position`` (1 = the next prompt ComfyUI starts) is reported for
    queued jobs only. ``webhook``: the job's webhook (``WebhookService.job_webhook``) or None;
    left out, the body has no ``webhook`` field (a server without webhooks)."""
    self_url = f"{base}/jobs/{job.id}"
    extra = {} if webhook is _ABSENT else {"webhook": None if webhook is None else JobWebhook(**webhook)}
    return c.Job(
        id=job.id, pipeline=job.pipeline, status=job.status, created_at=iso(job.created_at),
        started_at=iso(job.started_at), completed_at=iso(job.completed_at),
        queue_position=queue_position if job.status == QUEUED else None,
        progress=progress_view(job),
        outputs=[c.Output(**output_fields(job, o, base)) for o in job.outputs],
        error=job.error,
        urls=c.JobUrls(self=self_url, events=f"{self_url}/events", cancel=f"{self_url}/cancel"),
        **extra)


def job_json(job: Job, base: str, queue_position: Optional[int] = None, *, webhook: Any = _ABSENT) -> dict[str, Any]:
    """``job_view`` as JSON-ready values."""
    return dump(job_view(job, base, queue_position, webhook=webhook))


def progress_event_json(job: Job) -> dict[str, Any]:
    """The data of a ``progress`` event: the job's id, status and progress."""
    return dump(c.ProgressEvent(id=job.id, status=job.status, progress=progress_view(job)))


def output_event_json(job: Job, output: Output, base: str) -> dict[str, Any]:
    """The data of an ``output`` event: the job's id, then the output's fields."""
    event = dump(c.OutputEvent(id=job.id, **output_fields(job, output, base)))
    return {"id": event.pop("id"), **event}


def webhook_event_json(event: str, timestamp: float, job: Job, base: str) -> dict[str, Any]:
    """The body of a webhook POST: the event, when it happened and the job then."""
    return dump(c.WebhookEvent(type=event, timestamp=iso(timestamp), data=job_view(job, base)))


def asset_json(asset: Asset) -> dict[str, Any]:
    return dump(c.Asset(asset_id=asset.id, content_type=asset.content_type, size_bytes=asset.size_bytes,
                        sha256=asset.id, kind=asset.kind))
