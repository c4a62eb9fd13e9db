"""The shapes that follow the pipeline definitions: each pipeline's inputs as JSON Schema, the
job submission (JSON and multipart), and ``GET /pipelines``.

Generated from the pipelines' parameter lists (``pipelines.Param``), so a new parameter or
pipeline shows up here, in the document and on the page without further edits."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Mapping

from ..pipelines import FILE_KINDS
from .base import PREFIX, dump
from .service import PipelineInfo, PipelineList

if TYPE_CHECKING:
    from ..pipelines import Param, Pipeline

_REF = "#/components/schemas/"


def param_schema(param: "Param", *, multipart: bool = False) -> dict[str, Any]:
    """One parameter as JSON Schema; ``multipart``: as a form part (text, or a file part)."""
    if param.kind in FILE_KINDS:
        if multipart:
            # Said as a file part (contentMediaType), so clients and tools send it with a filename;
            # a text part (no filename) holding an asset id is taken too.
            return {"type": "string", "contentMediaType": "application/octet-stream",
                    "description": f"{param.description} A file part, or a text part with the id of an asset "
                                   f"uploaded with POST {PREFIX}/assets (64 lowercase hex digits)."}
        return {"description": f"{param.description} An asset uploaded with POST {PREFIX}/assets.",
                "$ref": _REF + "AssetRef"}
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


def inputs_schema(pipeline: "Pipeline") -> dict[str, Any]:
    """The pipeline's inputs (a JSON submission's ``inputs`` / ``options``) as JSON Schema."""
    return {
        "type": "object",
        "description": f"Inputs of pipeline '{pipeline.name}': {pipeline.description}",
        "properties": {p.name: param_schema(p) for p in pipeline.params},
        "additionalProperties": False,
    }


def pipeline_schemas(pipelines: Mapping[str, "Pipeline"]) -> dict[str, Any]:
    """The component schemas that depend on the pipelines: ``Inputs_<name>``, ``JobSubmission``
    (JSON: one variant per pipeline) and ``JobSubmissionForm`` (multipart: one flat object)."""
    names = sorted(pipelines)
    schemas: dict[str, Any] = {}
    variants = []
    for name in names:
        schemas[f"Inputs_{name}"] = inputs_schema(pipelines[name])
        variants.append({
            "type": "object",
            "required": ["pipeline"],
            "properties": {"pipeline": {"const": name}, "inputs": {"$ref": f"{_REF}Inputs_{name}"},
                           "webhook": {"$ref": _REF + "WebhookRequest"},
                           "options": {"$ref": f"{_REF}Inputs_{name}",
                                       "description": "Merged into 'inputs' (a name may not be in both)."}},
            "additionalProperties": False,
        })
    schemas["JobSubmission"] = {"description": "A job as JSON: file parameters are uploaded assets ({\"asset_id\"}).",
                                "oneOf": variants}
    # One flat object (form tools read the parts from 'properties'): every pipeline's parameters;
    # a part the chosen pipeline does not take is refused like any other unknown part.
    form_parts: dict[str, list[dict[str, Any]]] = {}
    for name in names:
        for param in pipelines[name].params:
            part_schema = param_schema(param, multipart=True)
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
                                   "contentSchema": {"$ref": _REF + "WebhookRequest"},
                                   "description": "A WebhookRequest as JSON text."}},
        "additionalProperties": False,
    }
    return schemas


def pipelines_document(pipelines: Mapping[str, "Pipeline"]) -> dict[str, Any]:
    """The body of ``GET /pipelines``: each pipeline's parameters (JSON Schema, with defaults),
    stages and the models a job with default parameters needs."""
    items = []
    for name in sorted(pipelines):
        pipeline = pipelines[name]
        defaults = {p.name: p.default for p in pipeline.params if p.default is not None}
        items.append(PipelineInfo(name=name, description=pipeline.description, parameters=inputs_schema(pipeline),
                                  stages=[stage.name for stage in pipeline.stages], models=pipeline.models(defaults)))
    return dump(PipelineList(pipelines=items))
