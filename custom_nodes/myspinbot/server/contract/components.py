"""The document's ``components``: schemas generated from the contract models (pydantic's JSON
Schema, 2020-12, which OpenAPI 3.1 takes as is) and from the pipelines, and the responses,
parameters, headers and security scheme that several operations share."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Iterable, Mapping

from pydantic import BaseModel
from pydantic.json_schema import GenerateJsonSchema, models_json_schema

from ..api_token import TOKEN_ENV
from .base import PREFIX, Error
from .endpoints_jobs import IDEMPOTENCY_HEADER, REPLAYED_HEADER
from .jobs import AssetRef, Job, OutputEvent, ProgressEvent, WebhookEvent
from .pipelines import pipeline_schemas
from .service import PipelineInfo
from .spec import COMPONENT_REF, error, response_object
from .webhooks import WebhookRequest

if TYPE_CHECKING:
    from ..pipelines import Pipeline

ALWAYS = (Error, Job, AssetRef, WebhookRequest, WebhookEvent, ProgressEvent, OutputEvent)
"""Models the document holds whatever is registered: the error envelope, and the ones the
pipeline schemas, the event stream and the webhook callbacks refer to."""


class _Generator(GenerateJsonSchema):
    """pydantic's JSON Schema without a ``title`` on every property (the names say it)."""

    def field_title_should_be_set(self, schema: Any) -> bool:
        return False


def model_schemas(models: Iterable[type[BaseModel]]) -> dict[str, Any]:
    """Component schemas of ``models`` and every model they contain, by model name."""
    unique = list(dict.fromkeys([*ALWAYS, *models]))
    _, top = models_json_schema([(m, "validation") for m in unique], ref_template=COMPONENT_REF,
                                schema_generator=_Generator)
    return top.get("$defs", {})


def schemas(models: Iterable[type[BaseModel]], pipelines: Mapping[str, "Pipeline"]) -> dict[str, Any]:
    """Every component schema: the models' and the pipelines'; pipeline names become enums."""
    result = model_schemas(models)
    names = sorted(pipelines)
    for model in (Job, PipelineInfo):
        if model.__name__ in result:
            key = "pipeline" if model is Job else "name"
            result[model.__name__]["properties"][key] = {**result[model.__name__]["properties"][key],
                                                         "type": "string", "enum": names}
    result.update(pipeline_schemas(pipelines))
    return result


SHARED_RESPONSES = {
    "BadRequest": error("not JSON, NaN/Infinity or a lone surrogate such as \\ud800 (malformed_body); nested past "
                        "MYSPINBOT_MAX_JSON_DEPTH (body_too_deep); media that does not decode (invalid_image, "
                        "invalid_audio); the client went away (client_disconnected).",
                        "malformed_body", "body_too_deep", "invalid_image", "invalid_audio", "client_disconnected"),
    "NotFound": error("no such resource.", "job_not_found", "asset_not_found"),
    "PayloadTooLarge": error("a size limit was passed; details.limit names its MYSPINBOT_* setting (details.max the "
                             "limit).", "file_too_large", "request_too_large", "too_many_parts", "text_too_large",
                             "body_too_large", "image_too_large", "audio_too_long", "script_too_long"),
    "UnsupportedMediaType": error("", "unsupported_media_type"),
    "QueueFull": error("too many jobs are waiting; nothing was created.", "queue_full",
                       headers={"Retry-After": {"$ref": "#/components/headers/Retry-After"}}),
    "InternalError": error("the ComfyUI log has the traceback.", "internal_error"),
    "DatabaseUnavailable": error("several servers share a PostgreSQL job database (MYSPINBOT_DATABASE_URL) and it "
                                 "cannot be reached now; retry after Retry-After seconds.", "database_unavailable",
                                 headers={"Retry-After": {"$ref": "#/components/headers/Retry-After"}}),
    "Unauthorized": error("the bearer token is missing (where one is required) or wrong.", "unauthorized",
                          headers={"WWW-Authenticate": {"schema": {"type": "string"},
                                                        "description": "Bearer realm=\"myspinbot\""}}),
    "InvalidPathParameter": error("a path parameter holds a separator, '..' or a control character.",
                                  "invalid_path_parameter"),
}


def shared_components() -> dict[str, Any]:
    """The responses, parameters, headers and security scheme operations refer to."""
    return {
        "securitySchemes": {"bearerAuth": {
            "type": "http", "scheme": "bearer",
            "description": f"The API token: {TOKEN_ENV}, or the one generated into <ComfyUI user dir>/myspinbot/api_token "
                           "on the first start. Required on every route but the open ones (security: []) when "
                           "ComfyUI listens beyond loopback; optional on loopback, where a wrong token is still "
                           f"refused (401). The page signs in with it (POST {PREFIX}/session) and then sends the "
                           "myspinbot_token cookie instead."}},
        "parameters": {"IdempotencyKey": {
            "name": IDEMPOTENCY_HEADER, "in": "header", "required": False,
            "description": "Replaying a submission with the same key within 24 h returns the same job (200, "
                           f"{REPLAYED_HEADER}: true); the same key with a different body is 422 idempotency_key_reused.",
            "schema": {"type": "string", "pattern": "^[\\x21-\\x7e]{1,255}$"},
        }},
        "headers": {"Location": {"description": "The URL of the created resource.", "schema": {"type": "string"}},
                    "Retry-After": {"description": "Seconds to wait before retrying.",
                                    "schema": {"type": "integer", "minimum": 0}}},
        "responses": {name: response_object(response) for name, response in SHARED_RESPONSES.items()},
    }
