"""The ``webhook`` field of a job submission: its events, its validation (422 envelopes), and
registering it together with the new job."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Awaitable, Callable

from yarl import URL

from .api_errors import ApiError
from .model import CANCELED, FAILED, SUCCEEDED
from .webhook_policy import MALFORMED_HOST, USERINFO, AddressPolicy, AddressRefused

if TYPE_CHECKING:
    from .webhooks import WebhookService

JOB_STATUS, JOB_COMPLETED = "job.status", "job.completed"
EVENTS = (JOB_STATUS, JOB_COMPLETED)
COMPLETED_STATUSES = frozenset({SUCCEEDED, FAILED, CANCELED})
MAX_URL_CHARS = 2048
ALLOW_SETTING = "MYSPINBOT_WEBHOOK_ALLOW"

_DEFAULT_POLICY = AddressPolicy()


@dataclass(frozen=True)
class WebhookSpec:
    url: str
    events: tuple[str, ...] = EVENTS


def parse_webhook(value: Any, policy: AddressPolicy | None = None) -> WebhookSpec:
    """``{"url": "http(s)://...", "events": [...]}`` (events default to both) → ``WebhookSpec``.
    Raises 422 envelopes naming ``webhook.url`` / ``webhook.events``; a URL ``policy`` refuses
    (no allow-list: the default) is 422 ``webhook_address_refused``."""
    if not isinstance(value, dict):
        raise ApiError(422, "invalid_webhook", "'webhook' must be an object {\"url\", \"events\"}", {"field": "webhook"})
    unknown = sorted(set(value) - {"url", "events"})
    if unknown:
        raise ApiError(422, "unknown_field", f"unknown field 'webhook.{unknown[0]}'",
                       {"field": f"webhook.{unknown[0]}", "fields": ["url", "events"]})
    url = value.get("url")
    if not isinstance(url, str) or not url.strip():
        raise ApiError(422, "invalid_webhook", "'webhook.url' must be an http or https URL", {"field": "webhook.url"})
    url = url.strip()
    try:
        parsed = URL(url)
    except (ValueError, TypeError):
        parsed = None
    if (parsed is None or len(url) > MAX_URL_CHARS or parsed.scheme not in ("http", "https") or not parsed.host
            or not parsed.is_absolute()):
        raise ApiError(422, "invalid_webhook", f"'webhook.url' must be an absolute http or https URL of at most "
                       f"{MAX_URL_CHARS} characters", {"field": "webhook.url"})
    try:
        (policy or _DEFAULT_POLICY).check_url(parsed)
    except AddressRefused as refused:
        raise _refusal(refused) from None
    events = value.get("events", list(EVENTS))
    if not isinstance(events, list) or not events or not all(isinstance(e, str) for e in events):
        raise ApiError(422, "invalid_webhook", "'webhook.events' must be a non-empty list of event names",
                       {"field": "webhook.events", "events": list(EVENTS)})
    unknown = [e for e in events if e not in EVENTS]
    if unknown:
        raise ApiError(422, "invalid_webhook", f"unknown webhook event '{unknown[0]}'",
                       {"field": "webhook.events", "events": list(EVENTS)})
    return WebhookSpec(url, tuple(dict.fromkeys(events)))


def _refusal(refused: AddressRefused) -> ApiError:
    details = {"field": "webhook.url", "reason": refused.reason}
    if refused.reason == MALFORMED_HOST:
        return ApiError(422, "invalid_webhook", "'webhook.url' has a malformed host", details)
    if refused.reason == USERINFO:
        message = "'webhook.url' must not carry a user name or password"
    else:
        message = ("'webhook.url' points at a loopback, private, link-local or reserved address or an internal "
                   f"host name; the server's operator can allow it with {ALLOW_SETTING}")
        details["setting"] = ALLOW_SETTING
    return ApiError(422, "webhook_address_refused", message, details)


def webhook_from_request(webhooks: "WebhookService | None", value: Any, *, form: bool = False) -> WebhookSpec | None:
    """The submission's ``webhook`` field (None when absent); in a multipart form (``form``) it is
    a text part holding the JSON object. 422 ``webhooks_disabled`` when the server runs without
    webhooks; the URL is checked against the service's address policy."""
    if value is None:
        return None
    if webhooks is None:
        raise ApiError(422, "webhooks_disabled", "this server does not send webhooks", {"field": "webhook"})
    if form:
        try:
            value = json.loads(value)
        except ValueError:
            raise ApiError(422, "invalid_webhook", "the 'webhook' form field must hold a JSON object {\"url\", \"events\"}",
                           {"field": "webhook"}) from None
    return parse_webhook(value, webhooks.policy)


def with_webhook(webhooks: "WebhookService | None", spec: WebhookSpec | None, job_id: str,
                 create: Callable[[], Awaitable[Any]]) -> Callable[[], Awaitable[Any]]:
    """``create`` (the job submission) with the webhook registered first, so no status change of
    the new job can go unseen; dropped again if the submission fails. A replay never calls it."""
    if spec is None or webhooks is None:
        return create

    async def create_with_webhook() -> Any:
        webhooks.register(job_id, spec)
        try:
            return await create()
        except BaseException:
            webhooks.forget(job_id)
            raise

    return create_with_webhook
