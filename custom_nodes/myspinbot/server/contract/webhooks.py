"""The webhook shapes: the ``webhook`` field of a submission, a job's webhook with its delivery
attempts, and the signing secret. (The body of a webhook POST, ``WebhookEvent``, holds a job:
it lives in ``jobs``.)"""

from __future__ import annotations

from typing import Annotated, Literal, Optional

from pydantic import Field

from ..webhook_request import COMPLETED_STATUSES, EVENTS, JOB_COMPLETED, JOB_STATUS, MAX_URL_CHARS
from .base import ContractModel, Timestamp

WebhookEventType = Literal[EVENTS]


class WebhookRequest(ContractModel):
    """Where to POST this job's events (signed like Standard Webhooks; retried with backoff for 24 h)."""

    # webhook_request.parse_webhook reads it with the API's own error codes (and the address
    # policy); a tier-1 test keeps this model and that parser in step.

    url: str = Field(pattern="^[Hh][Tt][Tt][Pp][Ss]?://", max_length=MAX_URL_CHARS,
                     json_schema_extra={"format": "uri"})
    events: Annotated[list[WebhookEventType], Field(
        min_length=1, json_schema_extra={"uniqueItems": True},
        description=f"{JOB_STATUS}: every status change; {JOB_COMPLETED}: once, when the job ends "
                    f"({', '.join(sorted(COMPLETED_STATUSES))}).")] = list(EVENTS)


class WebhookAttempt(ContractModel):
    id: str = Field(description="The delivery's webhook-id (the same on every retry).")
    event: WebhookEventType
    attempt: Annotated[int, Field(ge=1)]
    status: Literal["delivered", "retry", "abandoned"]
    response_code: Optional[int]
    error: Optional[str] = Field(description="connect_failed, timeout, http_<status> or address_refused.")
    at: Timestamp
    next_attempt_at: Optional[Timestamp] = Field(description="When it is tried again (status retry).")


class JobWebhook(ContractModel):
    url: str
    events: list[WebhookEventType]
    deliveries: list[WebhookAttempt] = Field(description="Every delivery attempt so far, oldest first.")


class WebhookSecret(ContractModel):
    secret: str = Field(pattern="^whsec_[A-Za-z0-9+/]+={0,2}$")
    scheme: Literal["standard-webhooks"]
    signature: str
    events: list[str]
