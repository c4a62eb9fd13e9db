"""The endpoints of jobs and assets."""

from __future__ import annotations

from .base import JSON, PREFIX
from .jobs import Asset, Job, JobsListResponse, ListJobsQuery
from .spec import Endpoint, RequestBody, Response, Shared, error, path_param, query_params

IDEMPOTENCY_HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotency-Replayed"
OUTPUT_NAME_PATTERN = "^[a-z][a-z0-9_]{0,63}$"

JOB_ID = path_param("job_id", {"type": "string", "format": "uuid"})
OUTPUT_NAME = path_param("name", {"type": "string", "pattern": OUTPUT_NAME_PATTERN})
LOCATION = {"Location": {"$ref": "#/components/headers/Location"}}
JOB = Response("The job.", Job)
NOT_FOUND = Shared("NotFound")
OUTPUT_NOT_FOUND = error("", "output_not_found", "job_not_found")
SHARED_UNAVAILABLE = error("several servers share the job queue (MYSPINBOT_DATABASE_URL) and its object storage "
                           "or database cannot be reached now; retry after Retry-After seconds.",
                           "storage_unavailable", "database_unavailable",
                           headers={"Retry-After": {"$ref": "#/components/headers/Retry-After"}})

CREATE_JOB = Endpoint(
    "POST", f"{PREFIX}/jobs", "createJob", tag="job",
    summary="Submit a job (JSON with uploaded assets, or multipart with the files).",
    parameters=(Shared("IdempotencyKey"),),
    request=RequestBody({JSON: "JobSubmission", "multipart/form-data": "JobSubmissionForm"}),
    responses={
        202: Response("Queued.", Job, headers=LOCATION),
        200: Response("A replay of an earlier submission with the same Idempotency-Key: that job.", Job,
                      headers={**LOCATION, REPLAYED_HEADER: {"schema": {"const": "true"}}}),
        400: Shared("BadRequest"),
        413: Shared("PayloadTooLarge"),
        415: Shared("UnsupportedMediaType"),
        422: error("details.field names the field; webhook_address_refused is an internal address (see "
                   "MYSPINBOT_WEBHOOK_ALLOW).",
                   "unknown_pipeline", "missing_pipeline", "unknown_parameter", "unknown_field", "invalid_parameter",
                   "missing_*", "conflicting_inputs", "invalid_asset_id", "asset_not_found", "asset_kind_mismatch",
                   "invalid_workflow", "idempotency_key_reused", "invalid_idempotency_key", "invalid_webhook",
                   "webhooks_disabled", "webhook_address_refused", "duplicate_field", "profile_not_found"),
        409: error("an asset no longer holds its uploaded bytes (upload it again), the pipeline's models are "
                   "missing (details name the models and the fetch command), or the 'profile' is not ready yet.",
                   "asset_modified", "models_missing", "profile_not_ready"),
        429: Shared("QueueFull"),
        503: SHARED_UNAVAILABLE,
    })

LIST_JOBS = Endpoint(
    "GET", f"{PREFIX}/jobs", "listJobs", tag="job",
    summary="Jobs, newest first, with cursor pagination.",
    parameters=query_params(ListJobsQuery),
    responses={200: Response("A page of jobs.", JobsListResponse),
               422: error("details.field names the query parameter.", "unknown_parameter", "invalid_parameter",
                          "invalid_cursor")})

GET_JOB = Endpoint(
    "GET", f"{PREFIX}/jobs/{{job_id}}", "getJobDetail", tag="job",
    summary="A job's status, progress, outputs or error.",
    parameters=(JOB_ID,), responses={200: JOB, 404: NOT_FOUND})

CANCEL_JOB = Endpoint(
    "POST", f"{PREFIX}/jobs/{{job_id}}/cancel", "cancelJob", tag="job",
    summary="Cancel a job (idempotent): queued → canceled at once; running → canceling, then canceled when "
            "ComfyUI reports the interruption; a finished job is returned as it is.",
    parameters=(JOB_ID,), responses={200: JOB, 404: NOT_FOUND})

_EVENT_SCHEMAS = {"snapshot": "Job", "status": "Job", "progress": "ProgressEvent", "output": "OutputEvent"}
_SSE_EVENT = {"oneOf": [{
    "type": "object",
    "required": ["event", "data"],
    "properties": {"event": {"const": event},
                   "data": {"type": "string", "contentMediaType": JSON,
                            "contentSchema": {"$ref": f"#/components/schemas/{schema}"}},
                   "id": {"type": "string"}, "retry": {"type": "integer"}},
} for event, schema in _EVENT_SCHEMAS.items()]}

STREAM_JOB_EVENTS = Endpoint(
    "GET", f"{PREFIX}/jobs/{{job_id}}/events", "streamJobEvents", tag="job",
    summary="Server-Sent Events: 'snapshot' (Job), then 'status' (Job), 'progress' (ProgressEvent, at most about 4 "
            "a second), 'output' (OutputEvent); a ': heartbeat' comment every 15 s; the stream ends after the "
            "terminal 'status'.",
    parameters=(JOB_ID,),
    responses={200: Response("text/event-stream; the schema describes each event.", _SSE_EVENT,
                             media_type="text/event-stream",
                             extra={"x-events": {e: {"$ref": f"#/components/schemas/{s}"}
                                                 for e, s in _EVENT_SCHEMAS.items()}}),
               404: NOT_FOUND})

GET_JOB_OUTPUT = Endpoint(
    "GET", f"{PREFIX}/jobs/{{job_id}}/outputs/{{name}}", "getJobOutput", tag="job",
    summary="Download an output file of a succeeded job.",
    parameters=(JOB_ID, OUTPUT_NAME),
    responses={200: Response("The file, with its content type.",
                             {"type": "string", "contentMediaType": "application/octet-stream"}, media_type="*/*"),
               404: OUTPUT_NOT_FOUND, 503: SHARED_UNAVAILABLE})

UPLOAD_JOB_OUTPUT = Endpoint(
    "POST", f"{PREFIX}/jobs/{{job_id}}/outputs/{{name}}/upload", "uploadJobOutput", tag="job",
    summary="Upload an output whose storage is pending (object storage was down when the job ran) again; "
            "returns the job with the output's storage now stored.",
    parameters=(JOB_ID, OUTPUT_NAME),
    responses={200: JOB, 404: OUTPUT_NOT_FOUND,
               409: error("", "output_already_stored", "output_not_pending"),
               503: error("object storage is still down or refused it.", "storage_unavailable")})

_ASSET_FORM = {"type": "object", "required": ["file"],
               "properties": {"file": {"type": "string", "contentMediaType": "application/octet-stream"}},
               "additionalProperties": False}

UPLOAD_ASSET = Endpoint(
    "POST", f"{PREFIX}/assets", "uploadAsset", tag="asset",
    summary="Upload an input file (image or audio, decided from its content) for JSON submissions; "
            "content-addressed by sha256, so uploading the same bytes again returns the same asset.",
    request=RequestBody({"multipart/form-data": _ASSET_FORM}),
    responses={201: Response("Stored.", Asset, headers=LOCATION),
               200: Response("Already stored (same bytes).", Asset, headers=LOCATION),
               400: error("neither a readable image nor audio; or the body is no multipart form, or the client "
                          "went away.", "invalid_asset", "malformed_body", "client_disconnected"),
               413: Shared("PayloadTooLarge"),
               415: Shared("UnsupportedMediaType"),
               422: error("details.field names the part.", "unknown_parameter", "missing_file", "duplicate_field"),
               503: SHARED_UNAVAILABLE})

GET_ASSET = Endpoint(
    "GET", f"{PREFIX}/assets/{{asset_id}}", "getAsset", tag="asset",
    summary="An uploaded asset's description.",
    parameters=(path_param("asset_id", {"type": "string", "pattern": "^[0-9a-f]{64}$"}),),
    responses={200: Response("The asset.", Asset), 404: NOT_FOUND})

ENDPOINTS = (CREATE_JOB, LIST_JOBS, GET_JOB, CANCEL_JOB, STREAM_JOB_EVENTS, GET_JOB_OUTPUT, UPLOAD_JOB_OUTPUT,
             UPLOAD_ASSET, GET_ASSET)
