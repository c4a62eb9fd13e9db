"""The job, its progress and outputs, the job list and its query, the event-stream and webhook
payloads, and assets."""

from __future__ import annotations

from typing import Annotated, Any, Literal, Optional

from pydantic import Field, ValidationError
from pydantic.json_schema import SkipJsonSchema

from ..api_errors import ApiError
from ..model import STATUSES
from .base import ContractModel, Details, Timestamp, number
from ..webhook_request import EVENTS
from .webhooks import JobWebhook

MAX_PAGE = 100
"""The most jobs one page of ``GET /jobs`` holds (``limit``)."""
DEFAULT_PAGE = 20

JobStatus = Annotated[Literal[STATUSES], Field(
    description="queued → running → succeeded | failed; cancel: queued → canceled, running → canceling → "
                "canceled. After a ComfyUI restart an unfinished job is queued again once, or failed with code "
                "lost_on_restart. A finished job past its retention (MYSPINBOT_JOB_RETENTION_DAYS) becomes "
                "expired: its files are removed.")]
Sha256 = Annotated[str, Field(pattern="^[0-9a-f]{64}$")]
NullableCount = Optional[Annotated[int, Field(ge=0)]]


class Progress(ContractModel):
    value: number(0, 1) = Field(description="Weighted by stage (each stage's usual share of the run time, times the "
                                            "share of it done); never decreases, below 1 until the job succeeded.")
    stage: Optional[str] = Field(description="The pipeline stage last reached (lite: speech, animate, encode; f5: "
                                             "script, speech, animate, encode; every pipeline ends in 'store' once its "
                                             "outputs are recorded); null before the first.")
    message: Optional[str] = Field(description="A short line for people.")
    stage_index: NullableCount = Field(description="0-based position of 'stage' among the job's stages; null before "
                                                   "the first.")
    stages: Optional[Annotated[int, Field(ge=1)]] = Field(description="How many stages the job goes through (the last "
                                                                      "is 'store').")
    step: Optional[number(0)] = Field(description="The running node's ComfyUI progress value (e.g. frames done); null "
                                                  "when it reports none or the job is not running.")
    steps: Optional[number(0)] = Field(description="The running node's ComfyUI progress maximum.")
    eta_seconds: Optional[number(0)] = Field(description="Seconds left, from the rate this job has been progressing at "
                                                         "(smoothed); null until measurable or when not running; 0 "
                                                         "once succeeded.")


class OutputStorage(ContractModel):
    kind: Literal["s3"]
    uri: Optional[str] = Field(description="s3://bucket/key (pending: where it will be).")
    presigned_url: Optional[str] = Field(description="Presigned GET URL; null while pending.")
    status: Literal["stored", "pending"]
    warning: Optional[str]


class QualitySkipped(ContractModel):
    """Why a video was not scored."""

    code: str = Field(examples=["no_face_detected", "invalid_input"])
    message: str


class OutputQuality(ContractModel):
    """The lip-sync score of a video output: SyncNet (Chung & Zisserman 2016) as Wav2Lip's paper
    evaluates lip sync (LSE-D / LSE-C of joonson/syncnet_python's evaluation)."""

    av_offset_frames: Optional[Annotated[int, Field(ge=-50, le=50)]] = Field(
        description="Best audio-video offset in frames at 25 fps (0 = in sync; positive: the audio is ahead of the "
                    "lips). Null when not scored.")
    lse_d: Optional[float] = Field(description="LSE-D: mean SyncNet distance at that offset (lower is better). "
                                               "Null when not scored.")
    lse_c: Optional[float] = Field(description="LSE-C: confidence, median minus minimum of the mean distances over "
                                               "offsets (higher is better). Null when not scored.")
    skipped: SkipJsonSchema[None] | QualitySkipped = Field(
        None, description="Present only when the video could not be scored (e.g. no face, under 0.24 s): why. "
                          "The job still succeeds.")


class Output(ContractModel):
    name: str
    type: str = Field(examples=["video"])
    content_type: str
    size_bytes: Annotated[int, Field(ge=0)]
    url: str
    storage: SkipJsonSchema[None] | OutputStorage = Field(
        None, description="Where object storage holds the file; absent when the pipeline stores nothing.")
    quality: SkipJsonSchema[None] | OutputQuality = Field(
        None, description="Lip-sync score of a 'video' output; absent when the SyncNet model is not installed "
                          "(GET /capabilities, lipsync_score, says why) or the output is no video.")


class JobError(ContractModel):
    """Why a job failed."""

    code: str = Field(examples=["no_face_detected", "lost_on_restart"])
    message: str
    details: Details


class JobUrls(ContractModel):
    self: str
    events: str
    cancel: str


class Job(ContractModel):
    id: str = Field(json_schema_extra={"format": "uuid"})
    pipeline: str = Field(description="One of the pipelines GET /pipelines lists.")
    status: JobStatus
    created_at: Timestamp
    started_at: Optional[Timestamp]
    completed_at: Optional[Timestamp]
    queue_position: Optional[Annotated[int, Field(ge=1)]] = Field(
        description="For a queued job, its place in ComfyUI's queue (1 = next); else null.")
    progress: Progress
    outputs: list[Output]
    error: Optional[JobError]
    urls: JobUrls
    webhook: Optional[JobWebhook] = Field(
        None, description="The job's webhook and its delivery attempts; null without one (absent where the "
                          "server sends no webhooks).")


class JobsListResponse(ContractModel):
    """A page of jobs, newest first (the Comfy API v2 contract's name for a job list)."""

    jobs: list[Job]
    next_cursor: Optional[str] = Field(description="Pass as 'cursor' for the next page; null on the last page.")


class ProgressEvent(ContractModel):
    """The 'progress' event of a job's event stream."""

    id: str
    status: JobStatus
    progress: Progress


class OutputEvent(Output):
    """The 'output' event of a job's event stream: an output as it is recorded, and its job's id."""

    id: str


class Asset(ContractModel):
    asset_id: Sha256
    content_type: str = Field(description="From the decoded content, never the filename.")
    size_bytes: Annotated[int, Field(ge=0)]
    sha256: Sha256
    kind: Literal["image", "audio"]


class AssetRef(ContractModel):
    """A file parameter of a JSON submission: an asset uploaded with POST /assets."""

    asset_id: Sha256


ListFilter = Annotated[tuple[str, ...], Field(json_schema_extra={"style": "form", "explode": False})]


class ListJobsQuery(ContractModel):
    """The query of GET /jobs: 'status' and 'pipeline' are comma-separated or repeated (empty entries ignored)."""

    # Model docstrings are public (the schema's description); from_query reads a request's query.

    status: tuple[Literal[(*STATUSES, "")], ...] = Field(
        (), json_schema_extra={"style": "form", "explode": False},
        description="Only these statuses (comma-separated or repeated). Empty entries are ignored: 'status=' "
                    "filters nothing.")
    pipeline: ListFilter = ()
    limit: Annotated[int, Field(ge=1, le=MAX_PAGE)] = DEFAULT_PAGE
    cursor: Optional[str] = Field(None, description="next_cursor of the previous page.")

    @classmethod
    def from_query(cls, query: Any) -> "ListJobsQuery":
        """Read a request's query (a multidict). Raises ``ApiError`` 422: ``unknown_parameter``
        (a name not above), ``invalid_parameter`` (a limit that is no integer or out of range, an
        unknown status)."""
        unknown = sorted(set(query) - set(cls.model_fields))
        if unknown:
            raise ApiError(422, "unknown_parameter", f"unknown query parameter '{unknown[0]}'", {"field": unknown[0]})
        try:
            limit = int(query.get("limit", DEFAULT_PAGE))
        except ValueError:
            raise ApiError(422, "invalid_parameter", "limit must be an integer", {"field": "limit"}) from None
        statuses = _csv(query.getall("status", []))
        bad = [s for s in statuses if s not in STATUSES]
        if bad:
            raise ApiError(422, "invalid_parameter", f"unknown status '{bad[0]}'",
                           {"field": "status", "statuses": list(STATUSES)})
        try:
            return cls(status=statuses, pipeline=_csv(query.getall("pipeline", [])), limit=limit,
                       cursor=query.get("cursor") or None)
        except ValidationError:  # only the limit's range is left to check
            raise ApiError(422, "invalid_parameter", f"limit must be between 1 and {MAX_PAGE}",
                           {"field": "limit"}) from None


def _csv(values: list[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(v.strip() for raw in values for v in raw.split(",") if v.strip()))


class WebhookEvent(ContractModel):
    """The body of a webhook POST."""

    type: Literal[EVENTS]
    timestamp: Timestamp
    data: Job = Field(description="The job when the event happened.")
