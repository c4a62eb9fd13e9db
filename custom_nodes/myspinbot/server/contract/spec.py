"""``Endpoint``: one route of the API as the contract states it (method, path, operation id,
summary, parameters, request body, responses with their error codes, whether it needs the
token). Route modules register their handlers against these (``registry.RouteRegistry``) and
``openapi.build_openapi`` turns the registered ones into the document's ``paths``.

A body or parameter schema is given as a contract model (a component schema named after it),
a component name (``"JobSubmission"``: built from the pipelines) or an inline JSON Schema."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, Mapping, Optional, Union

from pydantic import BaseModel

from .base import JSON

SchemaSource = Union[type[BaseModel], str, Mapping[str, Any]]
COMPONENT_REF = "#/components/schemas/{model}"


def schema_of(source: SchemaSource) -> dict[str, Any]:
    """The JSON Schema a ``SchemaSource`` stands for: a ``$ref`` to a component, or the inline schema."""
    if isinstance(source, str):
        return {"$ref": COMPONENT_REF.format(model=source)}
    if isinstance(source, type) and issubclass(source, BaseModel):
        return {"$ref": COMPONENT_REF.format(model=source.__name__)}
    return dict(source)


@dataclass(frozen=True)
class Shared:
    """A response or parameter defined once under ``components`` (``responses`` / ``parameters``)."""

    name: str


@dataclass(frozen=True)
class Response:
    """One status of an operation. ``body``: the schema of its content (of each of ``media_type``,
    one or several), None for no body. ``codes``: the error codes this status carries (an
    ``Error`` body)."""

    description: str
    body: Optional[SchemaSource] = None
    media_type: Union[str, tuple[str, ...]] = JSON
    headers: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    codes: tuple[str, ...] = ()
    extra: Mapping[str, Any] = field(default_factory=dict)


def error(note: str, *codes: str, headers: Optional[Mapping[str, Mapping[str, Any]]] = None) -> Response:
    """An error status: an ``Error`` body whose ``error.code`` is one of ``codes``."""
    listed = f"{', '.join(codes)}: " if codes else ""
    return Response(description=f"{listed}{note}" if note else ", ".join(codes), body="Error", codes=codes,
                    headers=headers or {})


@dataclass(frozen=True)
class Parameter:
    """A path, query or header parameter; ``extra`` holds further OpenAPI fields (``style``...)."""

    name: str
    location: Literal["path", "query", "header"]
    schema: SchemaSource
    required: bool = False
    description: str = ""
    extra: Mapping[str, Any] = field(default_factory=dict)


PLAIN_NAME = r"^[A-Za-z0-9][A-Za-z0-9_-]*(\.[A-Za-z0-9_-]+)*$"
"""A file-like name: letters, digits, '_', '-', single dots between them (never '..': the guard
refuses that with 400 invalid_path_parameter)."""


def path_param(name: str, schema: Mapping[str, Any], description: str = "") -> Parameter:
    return Parameter(name, "path", schema, required=True, description=description)


def query_params(model: type[BaseModel]) -> tuple[Parameter, ...]:
    """A query model's fields as query parameters (its field schemas; ``style`` / ``explode``
    and descriptions lifted to the parameter)."""
    schema = model.model_json_schema(ref_template=COMPONENT_REF)
    required = set(schema.get("required", ()))
    params = []
    for name, prop in schema["properties"].items():
        prop = {k: v for k, v in prop.items() if k != "title"}
        extra = {key: prop.pop(key) for key in ("style", "explode") if key in prop}
        description = prop.pop("description", "")
        if isinstance(prop.get("anyOf"), list) and {"type": "null"} in prop["anyOf"]:  # optional: just absent
            prop = {**[p for p in prop["anyOf"] if p != {"type": "null"}][0],
                    **{k: v for k, v in prop.items() if k not in ("anyOf", "default")}}
        params.append(Parameter(name, "query", prop, required=name in required, description=description, extra=extra))
    return tuple(params)


@dataclass(frozen=True)
class RequestBody:
    """Media type → schema of the accepted bodies."""

    content: Mapping[str, SchemaSource]
    required: bool = True


@dataclass(frozen=True)
class Endpoint:
    """A route of the contract. ``open``: served without the API token (the guard opens exactly
    these; the document says ``security: []``). ``tag``: the operation's group."""

    method: str
    path: str
    operation_id: str
    summary: str
    tag: str
    responses: Mapping[Union[int, str], Union[Response, Shared]]
    parameters: tuple[Union[Parameter, Shared], ...] = ()
    request: Optional[RequestBody] = None
    open: bool = False
    extra: Mapping[str, Any] = field(default_factory=dict)

    @property
    def key(self) -> tuple[str, str]:
        return self.method.upper(), self.path


# --- as OpenAPI objects ----------------------------------------------------------------------

def response_object(response: Union[Response, Shared]) -> dict[str, Any]:
    """A ``Response`` as an OpenAPI response object (a ``Shared`` one as its ``$ref``)."""
    if isinstance(response, Shared):
        return {"$ref": f"#/components/responses/{response.name}"}
    body: dict[str, Any] = {"description": response.description}
    if response.body is not None:
        types = (response.media_type,) if isinstance(response.media_type, str) else response.media_type
        body["content"] = {media_type: {"schema": schema_of(response.body)} for media_type in types}
    if response.headers:
        body["headers"] = {name: dict(header) for name, header in response.headers.items()}
    if response.codes:
        body["x-error-codes"] = list(response.codes)
    body.update(response.extra)
    return body


def parameter_object(parameter: Union[Parameter, Shared]) -> dict[str, Any]:
    """A ``Parameter`` as an OpenAPI parameter object (a ``Shared`` one as its ``$ref``)."""
    if isinstance(parameter, Shared):
        return {"$ref": f"#/components/parameters/{parameter.name}"}
    body: dict[str, Any] = {"name": parameter.name, "in": parameter.location, "required": parameter.required}
    if parameter.description:
        body["description"] = parameter.description
    body.update(parameter.extra)
    body["schema"] = schema_of(parameter.schema)
    return body


def models_of(endpoint: Endpoint) -> list[type[BaseModel]]:
    """The contract models an endpoint's bodies and parameters name."""
    sources: list[Any] = [r.body for r in endpoint.responses.values() if isinstance(r, Response)]
    sources += [p.schema for p in endpoint.parameters if isinstance(p, Parameter)]
    if endpoint.request is not None:
        sources += list(endpoint.request.content.values())
    return [s for s in sources if isinstance(s, type) and issubclass(s, BaseModel)]
