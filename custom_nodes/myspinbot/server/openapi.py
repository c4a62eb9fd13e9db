"""The job API's OpenAPI 3.1 document (``GET /myspinbot/openapi.json``), generated from the
routes registered in a ``registry.RouteRegistry`` and the contract (``contract/``): one path
item per registered route, the component schemas from the contract models and the pipelines.

Every operation gets a 500 ``InternalError`` and a 503 ``DatabaseUnavailable`` response (the shared
PostgreSQL job database is unreachable); every one that needs the token a 401;
every one with path parameters a 400 ``InvalidPathParameter`` (the guard checks them).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Iterable, Mapping

from .contract import components
from .contract.endpoints_service import GET_WEBHOOK_SECRET
from .contract.spec import Endpoint, models_of, parameter_object, response_object, schema_of
from .webhook_request import EVENTS
from .webhook_signing import SECRET_PREFIX

if TYPE_CHECKING:
    from .pipelines import Pipeline
    from .registry import RouteRegistry

OPENAPI_VERSION = "3.1.0"
API_VERSION = "0.3.0"
TAGS = {
    "job": "Job lifecycle: submit, list, follow, cancel, outputs (names follow the Comfy API v2 contract).",
    "asset": "Uploaded input files.",
    "profile": "Character profiles: photos → a trained LoRA and reference photo, plus a voice; jobs take 'profile'.",
    "model": "Model weights: status, licences, downloads; what this server can run.",
    "webhook": "Signed job-event callbacks.",
    "session": "The page's sign-in cookie.",
    "page": "The pack's web page.",
    "system": "Health, metrics and this document.",
}


def build_openapi(routes: "RouteRegistry | Iterable[Endpoint]", pipelines: Mapping[str, "Pipeline"]) -> dict[str, Any]:
    """The document of the registered routes (a registry, or endpoints); ``pipelines`` give the
    submission and input schemas."""
    endpoints = [getattr(r, "endpoint", r) for r in routes]
    paths: dict[str, Any] = {}
    for endpoint in endpoints:
        paths.setdefault(endpoint.path, {})[endpoint.method.lower()] = operation_object(endpoint)
    models = [model for endpoint in endpoints for model in models_of(endpoint)]
    return {
        "openapi": OPENAPI_VERSION,
        "info": {"title": "myspinbot job API", "version": API_VERSION,
                 "description": "Talking-head jobs run on ComfyUI's own queue. Every error has the body "
                                "{\"error\": {\"code\", \"message\", \"details\"}}; each error response lists its "
                                "codes in x-error-codes. Routes are also served under /api."},
        "servers": [{"url": "/"}, {"url": "/api"}],
        "security": [{"bearerAuth": []}],
        "tags": [{"name": name, "description": text} for name, text in TAGS.items()
                 if any(e.tag == name for e in endpoints)],
        "webhooks": webhook_callbacks(),
        "paths": paths,
        "components": {"schemas": components.schemas(models, pipelines), **components.shared_components()},
    }


def operation_object(endpoint: Endpoint) -> dict[str, Any]:
    """One endpoint as an OpenAPI operation."""
    operation: dict[str, Any] = {"operationId": endpoint.operation_id, "summary": endpoint.summary,
                                 "tags": [endpoint.tag]}
    if endpoint.parameters:
        operation["parameters"] = [parameter_object(p) for p in endpoint.parameters]
    if endpoint.request is not None:
        operation["requestBody"] = {"required": endpoint.request.required,
                                    "content": {media_type: {"schema": schema_of(source)}
                                                for media_type, source in endpoint.request.content.items()}}
    responses = {str(status): response_object(response) for status, response in endpoint.responses.items()}
    if endpoint.open:
        operation["security"] = []
    else:
        responses.setdefault("401", {"$ref": "#/components/responses/Unauthorized"})
    if "{" in endpoint.path:
        responses.setdefault("400", {"$ref": "#/components/responses/InvalidPathParameter"})
    responses.setdefault("500", {"$ref": "#/components/responses/InternalError"})
    responses.setdefault("503", {"$ref": "#/components/responses/DatabaseUnavailable"})
    operation["responses"] = responses
    operation.update(endpoint.extra)
    return operation


def webhook_callbacks() -> dict[str, Any]:
    """The POSTs the server sends to a job's webhook URL, one per event."""
    headers = {
        "webhook-id": {"required": True, "schema": {"type": "string"}},
        "webhook-timestamp": {"required": True, "schema": {"type": "integer"}, "description": "Unix seconds of this attempt."},
        "webhook-signature": {"required": True, "schema": {"type": "string", "pattern": "^v1,"},
                              "description": "v1,base64(HMAC-SHA256(key, id.timestamp.body)); key: the base64 part of "
                                             f"the secret ({SECRET_PREFIX}...) from GET {GET_WEBHOOK_SECRET.path}."},
    }
    return {event: {"post": {
        "operationId": f"webhook_{event.replace('.', '_')}",
        "summary": f"Sent to the job's webhook url on {event}; any 2xx answer within 10 s counts as delivered.",
        "parameters": [{"name": name, "in": "header", **spec} for name, spec in headers.items()],
        "requestBody": {"required": True, "content": {"application/json": {"schema": schema_of("WebhookEvent")}}},
        "responses": {"2XX": {"description": "Delivered."}},
    }} for event in EVENTS}
