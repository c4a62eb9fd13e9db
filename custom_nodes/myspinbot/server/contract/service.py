"""The service-level shapes: health, the pipeline list and the session sign-in body."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import ConfigDict, Field

from .base import ContractModel


class Health(ContractModel):
    status: Literal["ok"]
    pipelines: list[str]


class PipelineInfo(ContractModel):
    name: str
    description: str
    parameters: dict[str, Any] = Field(description="JSON Schema of the pipeline's inputs.")
    stages: list[str]
    models: list[str] = Field(description="Model manifest names a job with default parameters needs.")


class PipelineList(ContractModel):
    pipelines: list[PipelineInfo]


class SessionSignIn(ContractModel):
    """POST /session: the API token, exchanged for the session cookie. Other fields are ignored."""

    model_config = ConfigDict(extra="ignore")
    token: str = Field(min_length=1)
