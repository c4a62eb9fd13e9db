"""The job API's contract as an OpenAPI 3.1 document (``GET /myspinbot/openapi.json``).

Written by hand next to the handlers in ``routes.py``; a tier-1 test checks that every route
``add_routes`` registers is described here and nothing else, and validates real responses
against the schemas. Request schemas for pipeline inputs are generated from the pipelines'
parameter lists, so they follow ``pipelines.py``.
"""

from __future__ import annotations

from typing import Any

from .jobs import DEFAULT_PAGE, MAX_PAGE
from .model import STATUSES
from .pipelines import FILE_KINDS, Param, Pipeline
from .api_token import TOKEN_ENV
from .guard import HEALTH_PATH
from .jobs.idempotency import IDEMPOTENCY_HEADER, REPLAYED_HEADER
from .urls import PREFIX
from .webhooks import COMPLETED_STATUSES, EVENTS, JOB_COMPLETED, JOB_STATUS, SECRET_PATH
from .metrics import CONTENT_TYPE as METRICS_CONTENT_TYPE, METRICS_PATH

OPENAPI_VERSION = "3.1.0"
API_VERSION = "0.2.0"

_REF = "#/components/schemas/"


def _ref(name: str) -> dict[str, str]:
    return {"$ref": _REF + name}


def _nullable(schema: dict[str, Any]) -> dict[str, Any]:
    return {"anyOf": [schema, {"type": "null"}]}


def _json(schema: dict[str, Any]) -> dict[str, Any]:
    return {"application/json": {"schema": schema}}


def _error_response(description: str, headers: dict[str, Any] | None = None) -> dict[str, Any]:
    response: dict[str, Any] = {"description": description, "content": _json(_ref("Error"))}
    if headers:
        response["headers"] = headers
    return response


def _param_schema(param: Param, *, multipart: bool = False) -> dict[str, Any]:
    if param.kind in FILE_KINDS:
        if multipart:
            # Said as a file part (contentMediaType), so clients and tools send it with a filename;
            # a text part (no filename) holding an asset id is taken too.
            return {"type": "string", "contentMediaType": "application/octet-stream",
                    "description": f"{param.description} A file part, or a text part with the id of an asset "
                                   f"uploaded with POST {PREFIX}/assets (64 lowercase hex digits)."}
        return {"description": f"{param.description} An asset uploaded with POST {PREFIX}/assets.",
                **_ref("AssetRef")}
    if param.kind in ("text", "string"):
        schema: dict[str, Any] = {"type": "string"}
        if param.choices is not None:
            schema["enum"] = list(param.choices)
    elif param.kind == "boolean":
        schema = {"type": "boolean"}
        if multipart:  # form fields are text
            schema = {"oneOf": [schema, {"type": "string", "enum": ["true", "false", "1", "0", "on", "off"]}]}
    else:
        schema = {"type": "integer" if param.kind == "integer" else "number"}
        if param.minimum is not None:
            schema["minimum"] = param.minimum
        if param.maximum is not None:
            schema["maximum"] = param.maximum
        if multipart:  # form fields are text: the number is written out
            schema = {"oneOf": [schema, {"type": "string"}]}
    schema["description"] = param.description
    if param.default is not None:
        schema["default"] = param.default
    return schema


def _inputs_schema(pipeline: Pipeline) -> dict[str, Any]:
    return {
        "type": "object",
        "description": f"Inputs of pipeline '{pipeline.name}': {pipeline.description}",
        "properties": {p.name: _param_schema(p) for p in pipeline.params},
        "additionalProperties": False,
    }


def _schemas(pipelines: dict[str, Pipeline]) -> dict[str, Any]:
    names = sorted(pipelines)
    timestamp = {"type": "string", "format": "date-time"}
    schemas: dict[str, Any] = {
        "Error": {
            "type": "object",
            "description": "Every error response: a stable machine-readable code, a message for people, details.",
            "required": ["error"],
            "properties": {"error": {
                "type": "object",
                "required": ["code", "message", "details"],
                "properties": {"code": {"type": "string", "examples": ["queue_full", "unknown_parameter"]},
                               "message": {"type": "string"},
                               "details": {"type": "object", "description": "e.g. the offending 'field'"}},
            }},
        },
        "JobError": {
            "type": "object",
            "description": "Why a job failed.",
            "required": ["code", "message", "details"],
            "properties": {"code": {"type": "string", "examples": ["no_face_detected", "lost_on_restart"]},
                           "message": {"type": "string"}, "details": {"type": "object"}},
        },
        "Progress": {
            "type": "object",
            "required": ["value", "stage", "message", "stage_index", "stages", "step", "steps", "eta_seconds"],
            "properties": {
                "value": {"type": "number", "minimum": 0, "maximum": 1,
                          "description": "Weighted by stage (each stage's usual share of the run time, times the share "
                                         "of it done); never decreases, below 1 until the job succeeded."},
                "stage": {**_nullable({"type": "string"}),
                          "description": "The pipeline stage last reached (lite: speech, animate, encode; f5: script, "
                                         "speech, animate, encode; every pipeline ends in 'store' once its outputs are "
                                         "recorded); null before the first."},
                "message": {**_nullable({"type": "string"}), "description": "A short line for people."},
                "stage_index": {**_nullable({"type": "integer", "minimum": 0}),
                                "description": "0-based position of 'stage' among the job's stages; null before the first."},
                "stages": {**_nullable({"type": "integer", "minimum": 1}),
                           "description": "How many stages the job goes through (the last is 'store')."},
                "step": {**_nullable({"type": "number", "minimum": 0}),
                         "description": "The running node's ComfyUI progress value (e.g. frames done); null when it "
                                        "reports none or the job is not running."},
                "steps": {**_nullable({"type": "number", "minimum": 0}),
                          "description": "The running node's ComfyUI progress maximum."},
                "eta_seconds": {**_nullable({"type": "number", "minimum": 0}),
                                "description": "Seconds left, from the rate this job has been progressing at (smoothed); "
                                               "null until measurable or when not running; 0 once succeeded."},
            },
        },
        "Output": {
            "type": "object",
            "required": ["name", "type", "content_type", "size_bytes", "url"],
            "properties": {"name": {"type": "string"}, "type": {"type": "string", "examples": ["video"]},
                           "content_type": {"type": "string"}, "size_bytes": {"type": "integer", "minimum": 0},
                           "url": {"type": "string"},
                           "storage": {**_ref("OutputStorage"),
                                       "description": "Where object storage holds the file; absent when the "
                                                      "pipeline stores nothing."}},
        },
        "OutputStorage": {
            "type": "object",
            "required": ["kind", "uri", "presigned_url", "status", "warning"],
            "properties": {"kind": {"const": "s3"},
                           "uri": {"type": ["string", "null"], "description": "s3://bucket/key (pending: where it will be)."},
                           "presigned_url": {"type": ["string", "null"], "description": "Presigned GET URL; null while pending."},
                           "status": {"type": "string", "enum": ["stored", "pending"]},
                           "warning": {"type": ["string", "null"]}},
        },
        "Job": {
            "type": "object",
            "required": ["id", "pipeline", "status", "created_at", "started_at", "completed_at", "queue_position",
                         "progress", "outputs", "error", "urls"],
            "properties": {
                "id": {"type": "string", "format": "uuid"},
                "pipeline": {"type": "string", "enum": names},
                "status": {"type": "string", "enum": list(STATUSES),
                           "description": "queued → running → succeeded | failed; cancel: queued → canceled, "
                                          "running → canceling → canceled. After a ComfyUI restart an unfinished "
                                          "job is queued again once, or failed with code lost_on_restart. A finished "
                                          "job past its retention (MYSPINBOT_JOB_RETENTION_DAYS) becomes expired: "
                                          "its files are removed."},
                "created_at": timestamp,
                "started_at": _nullable(timestamp),
                "completed_at": _nullable(timestamp),
                "queue_position": {**_nullable({"type": "integer", "minimum": 1}),
                                   "description": "For a queued job, its place in ComfyUI's queue (1 = next); else null."},
                "progress": _ref("Progress"),
                "outputs": {"type": "array", "items": _ref("Output")},
                "error": _nullable(_ref("JobError")),
                "urls": {"type": "object", "required": ["self", "events", "cancel"],
                         "properties": {"self": {"type": "string"}, "events": {"type": "string"},
                                        "cancel": {"type": "string"}}},
            },
        },
        "JobList": {
            "type": "object",
            "required": ["jobs", "next_cursor"],
            "properties": {"jobs": {"type": "array", "items": _ref("Job")},
                           "next_cursor": {**_nullable({"type": "string"}),
                                           "description": "Pass as 'cursor' for the next page; null on the last page."}},
        },
        "Asset": {
            "type": "object",
            "required": ["asset_id", "content_type", "size_bytes", "sha256"],
            "properties": {"asset_id": {"type": "string", "pattern": "^[0-9a-f]{64}$"},
                           "content_type": {"type": "string", "description": "From the decoded content, never the filename."},
                           "size_bytes": {"type": "integer", "minimum": 0},
                           "sha256": {"type": "string", "pattern": "^[0-9a-f]{64}$"},
                           "kind": {"type": "string", "enum": sorted(FILE_KINDS)}},
        },
        "AssetRef": {
            "type": "object",
            "required": ["asset_id"],
            "properties": {"asset_id": {"type": "string", "pattern": "^[0-9a-f]{64}$"}},
            "additionalProperties": False,
        },
        "Health": {
            "type": "object",
            "required": ["status", "pipelines"],
            "properties": {"status": {"const": "ok"}, "pipelines": {"type": "array", "items": {"type": "string"}}},
        },
        "ProgressEvent": {
            "type": "object",
            "required": ["id", "status", "progress"],
            "properties": {"id": {"type": "string"}, "status": {"type": "string", "enum": list(STATUSES)},
                           "progress": _ref("Progress")},
        },
        "OutputEvent": {"allOf": [_ref("Output"), {"type": "object", "required": ["id"],
                                                   "properties": {"id": {"type": "string"}}}]},
    }
    schemas.update(_webhook_schemas())
    schemas["Job"]["properties"]["webhook"] = {**_nullable(_ref("JobWebhook")),
                                                "description": "The job's webhook and its delivery attempts; null without one."}
    variants = []
    for name in names:
        schemas[f"Inputs_{name}"] = _inputs_schema(pipelines[name])
        variants.append({
            "type": "object",
            "required": ["pipeline"],
            "properties": {"pipeline": {"const": name}, "inputs": _ref(f"Inputs_{name}"), "webhook": _ref("WebhookRequest"),
                           "options": {**_ref(f"Inputs_{name}"),
                                       "description": "Merged into 'inputs' (a name may not be in both)."}},
            "additionalProperties": False,
        })
    schemas["PipelineList"] = {
        "type": "object", "required": ["pipelines"],
        "properties": {"pipelines": {"type": "array", "items": {
            "type": "object", "required": ["name", "description", "parameters", "stages", "models"],
            "properties": {
                "name": {"type": "string", "enum": names},
                "description": {"type": "string"},
                "parameters": {"type": "object", "description": "JSON Schema of the pipeline's inputs."},
                "stages": {"type": "array", "items": {"type": "string"}},
                "models": {"type": "array", "items": {"type": "string"},
                           "description": "Model manifest names a job with default parameters needs."},
            }}}},
    }
    schemas["JobSubmission"] = {"description": "A job as JSON: file parameters are uploaded assets ({\"asset_id\"}).",
                                "oneOf": variants}
    # One flat object (form tools read the parts from 'properties'): every pipeline's parameters;
    # a part the chosen pipeline does not take is refused like any other unknown part.
    form_parts: dict[str, list[dict[str, Any]]] = {}
    for name in names:
        for param in pipelines[name].params:
            part_schema = _param_schema(param, multipart=True)
            if part_schema not in form_parts.setdefault(param.name, []):
                form_parts[param.name].append(part_schema)
    schemas["JobSubmissionForm"] = {
        "type": "object",
        "description": "A job as multipart/form-data: 'pipeline' plus that pipeline's parameters as parts "
                       "(any other part is refused: 422 unknown_parameter).",
        "required": ["pipeline"],
        "properties": {"pipeline": {"type": "string", "enum": names},
                       **{part: alternatives[0] if len(alternatives) == 1 else {"anyOf": alternatives}
                          for part, alternatives in form_parts.items()},
                       "webhook": {"type": "string", "contentMediaType": "application/json",
                                   "contentSchema": _ref("WebhookRequest"),
                                   "description": "A WebhookRequest as JSON text."}},
        "additionalProperties": False,
    }
    return schemas


def _sse_event_schema() -> dict[str, Any]:
    """One Server-Sent Event of the job stream: its ``event`` name and its ``data``, a JSON text."""
    events = {"snapshot": "Job", "status": "Job", "progress": "ProgressEvent", "output": "OutputEvent"}
    return {"oneOf": [{
        "type": "object",
        "required": ["event", "data"],
        "properties": {"event": {"const": event},
                       "data": {"type": "string", "contentMediaType": "application/json", "contentSchema": _ref(schema)},
                       "id": {"type": "string"}, "retry": {"type": "integer"}},
    } for event, schema in events.items()]}


def build_openapi(pipelines: dict[str, Pipeline]) -> dict[str, Any]:
    """The OpenAPI 3.1 document of every route ``routes.add_routes`` registers."""
    job_id = {"name": "job_id", "in": "path", "required": True, "schema": {"type": "string", "format": "uuid"}}
    not_found = {"$ref": "#/components/responses/NotFound"}
    unprocessable = {"$ref": "#/components/responses/Unprocessable"}
    job_response = {"description": "The job.", "content": _json(_ref("Job"))}
    paths: dict[str, Any] = {
        f"{PREFIX}/health": {"get": {
            "operationId": "getHealth", "summary": "Liveness and the pipelines on offer.",
            "responses": {"200": {"description": "OK", "content": _json(_ref("Health"))}},
        }},
        f"{PREFIX}/pipelines": {"get": {
            "operationId": "listPipelines",
            "summary": "Each pipeline: its parameters as JSON Schema (with defaults), its stages and the models it needs.",
            "responses": {"200": {"description": "OK", "content": _json(_ref("PipelineList"))}},
        }},
        f"{PREFIX}/openapi.json": {"get": {
            "operationId": "getOpenapi", "summary": "This document.",
            "responses": {"200": {"description": "OpenAPI 3.1", "content": _json({"type": "object"})}},
        }},
        f"{PREFIX}/jobs": {
            "post": {
                "operationId": "createJob",
                "summary": "Submit a job (JSON with uploaded assets, or multipart with the files).",
                "parameters": [{"$ref": "#/components/parameters/IdempotencyKey"}],
                "requestBody": {"required": True, "content": {
                    "application/json": {"schema": _ref("JobSubmission")},
                    "multipart/form-data": {"schema": _ref("JobSubmissionForm")},
                }},
                "responses": {
                    "202": {"description": "Queued.", "content": _json(_ref("Job")),
                            "headers": {"Location": {"$ref": "#/components/headers/Location"}}},
                    "200": {"description": "A replay of an earlier submission with the same Idempotency-Key: that job.",
                            "content": _json(_ref("Job")),
                            "headers": {"Location": {"$ref": "#/components/headers/Location"},
                                        REPLAYED_HEADER: {"schema": {"const": "true"}}}},
                    "400": {"$ref": "#/components/responses/BadRequest"},
                    "413": {"$ref": "#/components/responses/PayloadTooLarge"},
                    "415": {"$ref": "#/components/responses/UnsupportedMediaType"},
                    "422": _error_response("Invalid request: unknown_pipeline, missing_pipeline, unknown_parameter, "
                                           "invalid_parameter, missing_*, conflicting_inputs, invalid_asset_id, "
                                           "asset_not_found, asset_kind_mismatch, invalid_workflow, "
                                           "idempotency_key_reused, invalid_idempotency_key, invalid_webhook, webhooks_disabled, "
                                           "webhook_address_refused (an internal address: see MYSPINBOT_WEBHOOK_ALLOW); "
                                           "details.field names the field."),
                    "409": _error_response("asset_modified (an asset no longer holds its uploaded bytes: upload it "
                                           "again) or models_missing (details name the models and the fetch command)."),
                    "429": {"$ref": "#/components/responses/QueueFull"},
                    "500": {"$ref": "#/components/responses/InternalError"},
                },
            },
            "get": {
                "operationId": "listJobs",
                "summary": "Jobs, newest first, with cursor pagination.",
                "parameters": [
                    {"name": "status", "in": "query", "required": False, "style": "form", "explode": False,
                     "description": "Only these statuses (comma-separated or repeated). Empty entries are "
                                    "ignored: 'status=' filters nothing.",
                     "schema": {"type": "array", "items": {"type": "string", "enum": [*STATUSES, ""]}}},
                    {"name": "pipeline", "in": "query", "required": False, "style": "form", "explode": False,
                     "schema": {"type": "array", "items": {"type": "string"}}},
                    {"name": "limit", "in": "query", "required": False,
                     "schema": {"type": "integer", "minimum": 1, "maximum": MAX_PAGE, "default": DEFAULT_PAGE}},
                    {"name": "cursor", "in": "query", "required": False, "description": "next_cursor of the previous page.",
                     "schema": {"type": "string"}},
                ],
                "responses": {"200": {"description": "A page of jobs.", "content": _json(_ref("JobList"))},
                              "422": unprocessable},
            },
        },
        f"{PREFIX}/jobs/{{job_id}}": {"get": {
            "operationId": "getJob", "summary": "A job's status, progress, outputs or error.",
            "parameters": [job_id],
            "responses": {"200": job_response, "404": not_found},
        }},
        f"{PREFIX}/jobs/{{job_id}}/cancel": {"post": {
            "operationId": "cancelJob",
            "summary": "Cancel a job (idempotent): queued → canceled at once; running → canceling, then canceled "
                       "when ComfyUI reports the interruption; a finished job is returned as it is.",
            "parameters": [job_id],
            "responses": {"200": job_response, "404": not_found},
        }},
        f"{PREFIX}/jobs/{{job_id}}/events": {"get": {
            "operationId": "streamJobEvents",
            "summary": "Server-Sent Events: 'snapshot' (Job), then 'status' (Job), 'progress' (ProgressEvent, at most "
                       "about 4 a second), 'output' (OutputEvent); a ': heartbeat' comment every 15 s; the stream ends "
                       "after the terminal 'status'.",
            "parameters": [job_id],
            "responses": {
                "200": {"description": "text/event-stream; the schema describes each event.",
                        "content": {"text/event-stream": {"schema": _sse_event_schema()}},
                        "x-events": {"snapshot": _ref("Job"), "status": _ref("Job"),
                                     "progress": _ref("ProgressEvent"), "output": _ref("OutputEvent")}},
                "404": not_found,
            },
        }},
        f"{PREFIX}/jobs/{{job_id}}/outputs/{{name}}": {"get": {
            "operationId": "getJobOutput", "summary": "Download an output file of a succeeded job.",
            "parameters": [job_id, {"name": "name", "in": "path", "required": True,
                                    "schema": {"type": "string", "pattern": "^[a-z][a-z0-9_]{0,63}$"}}],
            "responses": {"200": {"description": "The file, with its content type.",
                                  "content": {"*/*": {"schema": {"type": "string", "contentMediaType": "application/octet-stream"}}}},
                          "404": _error_response("output_not_found or job_not_found.")},
        }},
        f"{PREFIX}/jobs/{{job_id}}/outputs/{{name}}/upload": {"post": {
            "operationId": "uploadJobOutput",
            "summary": "Upload an output whose storage is pending (object storage was down when the job ran) "
                       "again; returns the job with the output's storage now stored.",
            "parameters": [job_id, {"name": "name", "in": "path", "required": True,
                                    "schema": {"type": "string", "pattern": "^[a-z][a-z0-9_]{0,63}$"}}],
            "responses": {"200": job_response,
                          "404": _error_response("output_not_found or job_not_found."),
                          "409": _error_response("output_already_stored or output_not_pending."),
                          "503": _error_response("storage_unavailable: object storage is still down or refused it.")},
        }},
        f"{PREFIX}/assets": {"post": {
            "operationId": "uploadAsset",
            "summary": "Upload an input file (image or audio, decided from its content) for JSON submissions; "
                       "content-addressed by sha256, so uploading the same bytes again returns the same asset.",
            "requestBody": {"required": True, "content": {"multipart/form-data": {"schema": {
                "type": "object", "required": ["file"],
                "properties": {"file": {"type": "string", "contentMediaType": "application/octet-stream"}},
                "additionalProperties": False,
            }}}},
            "responses": {
                "201": {"description": "Stored.", "content": _json(_ref("Asset")),
                        "headers": {"Location": {"$ref": "#/components/headers/Location"}}},
                "200": {"description": "Already stored (same bytes).", "content": _json(_ref("Asset")),
                        "headers": {"Location": {"$ref": "#/components/headers/Location"}}},
                "400": _error_response("invalid_asset (neither a readable image nor audio), malformed_body or "
                                       "client_disconnected."),
                "413": {"$ref": "#/components/responses/PayloadTooLarge"},
                "415": {"$ref": "#/components/responses/UnsupportedMediaType"},
                "422": unprocessable,
            },
        }},
        f"{PREFIX}/assets/{{asset_id}}": {"get": {
            "operationId": "getAsset", "summary": "An uploaded asset's description.",
            "parameters": [{"name": "asset_id", "in": "path", "required": True,
                            "schema": {"type": "string", "pattern": "^[0-9a-f]{64}$"}}],
            "responses": {"200": {"description": "The asset.", "content": _json(_ref("Asset"))}, "404": not_found},
        }},
    }
    paths.update(_access_paths())
    _secure(paths)
    for item in paths.values():
        for operation in item.values():
            operation["responses"].setdefault("500", {"$ref": "#/components/responses/InternalError"})
    return {
        "openapi": OPENAPI_VERSION,
        "info": {"title": "myspinbot job API", "version": API_VERSION,
                 "description": "Talking-head jobs run on ComfyUI's own queue. Every error has the body "
                                "{\"error\": {\"code\", \"message\", \"details\"}}. Routes are also served under /api."},
        "servers": [{"url": "/"}, {"url": "/api"}],
        "security": [{"bearerAuth": []}],
        "webhooks": _webhook_callbacks(),
        "paths": paths,
        "components": {
            "schemas": _schemas(pipelines),
            "securitySchemes": {"bearerAuth": {
                "type": "http", "scheme": "bearer",
                "description": f"The API token: {TOKEN_ENV}, or the one generated into <ComfyUI user dir>/myspinbot/api_token "
                               "on the first start. Required on every route but /health when ComfyUI listens beyond "
                               "loopback; optional on loopback, where a wrong token is still refused (401)."}},
            "parameters": {"IdempotencyKey": {
                "name": IDEMPOTENCY_HEADER, "in": "header", "required": False,
                "description": "Replaying a submission with the same key within 24 h returns the same job (200, "
                               f"{REPLAYED_HEADER}: true); the same key with a different body is 422 idempotency_key_reused.",
                "schema": {"type": "string", "pattern": "^[\\x21-\\x7e]{1,255}$"},
            }},
            "headers": {"Location": {"description": "The URL of the created resource.", "schema": {"type": "string"}},
                        "Retry-After": {"description": "Seconds to wait before retrying.",
                                        "schema": {"type": "integer", "minimum": 0}}},
            "responses": {
                "BadRequest": _error_response("malformed_body (not JSON, NaN/Infinity, a lone surrogate such as \\ud800), "
                                              "body_too_deep (nested past MYSPINBOT_MAX_JSON_DEPTH), invalid_image / "
                                              "invalid_audio (media that does not decode) or client_disconnected."),
                "NotFound": _error_response("No such resource (job_not_found, asset_not_found)."),
                "Unprocessable": _error_response("Invalid parameters; details.field names the field."),
                "PayloadTooLarge": _error_response("A size limit was passed; details.limit names its MYSPINBOT_* setting "
                                                   "(details.max the limit): file_too_large, request_too_large, "
                                                   "too_many_parts, text_too_large, body_too_large, image_too_large, "
                                                   "audio_too_long, script_too_long."),
                "UnsupportedMediaType": _error_response("unsupported_media_type."),
                "QueueFull": _error_response("queue_full: too many jobs are waiting; nothing was created.",
                                             {"Retry-After": {"$ref": "#/components/headers/Retry-After"}}),
                "InternalError": _error_response("internal_error (the ComfyUI log has the traceback)."),
                "Unauthorized": _error_response("unauthorized: the bearer token is missing (where one is required) or wrong.",
                                                {"WWW-Authenticate": {"schema": {"type": "string"},
                                                                      "description": "Bearer realm=\"myspinbot\""}}),
                "InvalidPathParameter": _error_response("invalid_path_parameter: a path parameter holds a separator, "
                                                        "'..' or a control character."),
            },
        },
    }


# --- access control, webhooks, metrics ------------------------------------------------------

def _webhook_schemas() -> dict[str, Any]:
    timestamp = {"type": "string", "format": "date-time"}
    return {
        "WebhookRequest": {
            "type": "object",
            "description": "Where to POST this job's events (signed like Standard Webhooks; retried with backoff for 24 h).",
            "required": ["url"],
            "properties": {"url": {"type": "string", "format": "uri", "pattern": "^[Hh][Tt][Tt][Pp][Ss]?://",
                                   "maxLength": 2048},
                           "events": {"type": "array", "minItems": 1, "uniqueItems": True,
                                      "items": {"type": "string", "enum": list(EVENTS)},
                                      "default": list(EVENTS),
                                      "description": f"{JOB_STATUS}: every status change; {JOB_COMPLETED}: once, "
                                                     f"when the job ends ({', '.join(sorted(COMPLETED_STATUSES))})."}},
            "additionalProperties": False,
        },
        "WebhookAttempt": {
            "type": "object",
            "required": ["id", "event", "attempt", "status", "response_code", "error", "at", "next_attempt_at"],
            "properties": {"id": {"type": "string", "description": "The delivery's webhook-id (the same on every retry)."},
                           "event": {"type": "string", "enum": list(EVENTS)},
                           "attempt": {"type": "integer", "minimum": 1},
                           "status": {"type": "string", "enum": ["delivered", "retry", "abandoned"]},
                           "response_code": _nullable({"type": "integer"}),
                           "error": {**_nullable({"type": "string"}),
                                     "description": "connect_failed, timeout, http_<status> or address_refused."},
                           "at": timestamp,
                           "next_attempt_at": {**_nullable(timestamp), "description": "When it is tried again (status retry)."}},
        },
        "JobWebhook": {
            "type": "object",
            "required": ["url", "events", "deliveries"],
            "properties": {"url": {"type": "string"}, "events": {"type": "array", "items": {"type": "string", "enum": list(EVENTS)}},
                           "deliveries": {"type": "array", "items": _ref("WebhookAttempt"),
                                          "description": "Every delivery attempt so far, oldest first."}},
        },
        "WebhookEvent": {
            "type": "object",
            "description": "The body of a webhook POST.",
            "required": ["type", "timestamp", "data"],
            "properties": {"type": {"type": "string", "enum": list(EVENTS)}, "timestamp": timestamp,
                           "data": {"allOf": [_ref("Job")], "description": "The job when the event happened."}},
        },
        "WebhookSecret": {
            "type": "object",
            "required": ["secret", "scheme", "signature", "events"],
            "properties": {"secret": {"type": "string", "pattern": "^whsec_[A-Za-z0-9+/]+={0,2}$"},
                           "scheme": {"const": "standard-webhooks"}, "signature": {"type": "string"},
                           "events": {"type": "array", "items": {"type": "string"}}},
        },
    }


def _access_paths() -> dict[str, Any]:
    return {
        SECRET_PATH: {"get": {
            "operationId": "getWebhookSecret",
            "summary": "The secret webhook signatures are keyed with (whsec_..., derived from the API token).",
            "responses": {"200": {"description": "The secret.", "content": _json(_ref("WebhookSecret"))},
                          "404": _error_response("webhooks_disabled.")},
        }},
        METRICS_PATH: {"get": {
            "operationId": "getMetrics",
            "summary": "Prometheus metrics: jobs by status, queue depth, stage durations, webhook deliveries, HTTP requests.",
            "responses": {"200": {"description": "Prometheus text format 0.0.4.",
                                  "content": {METRICS_CONTENT_TYPE.split(";")[0]: {"schema": {"type": "string"}}}},
                          "404": _error_response("metrics_disabled.")},
        }},
    }


def _secure(paths: dict[str, Any]) -> None:
    """401 on every operation but /health (open: ``security: []``); 400 on those with path parameters."""
    for path, item in paths.items():
        for operation in item.values():
            if path == HEALTH_PATH:
                operation["security"] = []
                continue
            operation["responses"].setdefault("401", {"$ref": "#/components/responses/Unauthorized"})
            if "{" in path:
                operation["responses"].setdefault("400", {"$ref": "#/components/responses/InvalidPathParameter"})


def _webhook_callbacks() -> dict[str, Any]:
    headers = {
        "webhook-id": {"required": True, "schema": {"type": "string"}},
        "webhook-timestamp": {"required": True, "schema": {"type": "integer"}, "description": "Unix seconds of this attempt."},
        "webhook-signature": {"required": True, "schema": {"type": "string", "pattern": "^v1,"},
                              "description": "v1,base64(HMAC-SHA256(key, id.timestamp.body)); key: the base64 part of "
                                             f"the secret from GET {SECRET_PATH}."},
    }
    return {event: {"post": {
        "operationId": f"webhook_{event.replace('.', '_')}",
        "summary": f"Sent to the job's webhook url on {event}; any 2xx answer within 10 s counts as delivered.",
        "parameters": [{"name": name, "in": "header", **spec} for name, spec in headers.items()],
        "requestBody": {"required": True, "content": _json(_ref("WebhookEvent"))},
        "responses": {"2XX": {"description": "Delivered."}},
    }} for event in EVENTS}


def pipelines_document(pipelines: dict[str, Pipeline]) -> dict[str, Any]:
    """The body of ``GET /myspinbot/pipelines``."""
    items = []
    for name in sorted(pipelines):
        pipeline = pipelines[name]
        defaults = {p.name: p.default for p in pipeline.params if p.default is not None}
        items.append({"name": name, "description": pipeline.description, "parameters": _inputs_schema(pipeline),
                      "stages": [stage.name for stage in pipeline.stages], "models": pipeline.models(defaults)})
    return {"pipelines": items}
