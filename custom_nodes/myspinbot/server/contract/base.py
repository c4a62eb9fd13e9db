"""What every part of the contract shares: the model base class, the JSON dump, reusable field
types and the error envelope ``{"error": {"code", "message", "details"}}``; the route prefix
(``urls.PREFIX``) is importable from here too."""

from __future__ import annotations

from typing import Annotated, Any, Optional, Union

from pydantic import BaseModel, ConfigDict, Field, WithJsonSchema

from ..urls import API_MIRROR, PREFIX  # noqa: F401 (the route prefix, defined once there)

JSON = "application/json"


class ContractModel(BaseModel):
    """A fixed JSON shape. Unknown fields are refused both ways: a response built with a field
    the contract lacks fails (the tests catch the drift), and the schema says
    ``additionalProperties: false``."""

    model_config = ConfigDict(extra="forbid")


def dump(model: BaseModel) -> dict[str, Any]:
    """The model as JSON-ready Python values. Fields left unset (the optional ones with a
    default, such as ``Output.storage``) are left out; every required field is always there."""
    return model.model_dump(mode="json", exclude_unset=True)


Timestamp = Annotated[str, Field(json_schema_extra={"format": "date-time"})]
"""ISO 8601 UTC with milliseconds (``2026-11-22T04:37:00.123Z``)."""


def number(minimum: float | None = None, maximum: float | None = None) -> Any:
    """A JSON number that keeps an int an int (``3`` stays ``3``, not ``3.0``), optionally bounded."""
    schema: dict[str, Any] = {"type": "number"}
    if minimum is not None:
        schema["minimum"] = minimum
    if maximum is not None:
        schema["maximum"] = maximum
    return Annotated[Union[int, float], Field(ge=minimum, le=maximum), WithJsonSchema(schema)]


Details = Annotated[dict[str, Any], Field(description="Machine-readable context, e.g. the offending 'field'.")]


class ErrorResponse(ContractModel):
    """A stable machine-readable code, a message for people, details (the Comfy API v2 contract's
    ErrorResponse fields; details always present)."""

    code: str = Field(examples=["queue_full", "unknown_parameter"])
    message: str
    details: Details


class Error(ContractModel):
    """Every error response: {"error": ErrorResponse}."""

    error: ErrorResponse


def error_body(code: str, message: str, details: Optional[dict[str, Any]] = None) -> dict[str, Any]:
    """The JSON body of an error response."""
    return dump(Error(error=ErrorResponse(code=code, message=message, details=details or {})))
