"""``GET /myspinbot/webhooks/secret``: the secret webhook signatures are keyed with, for the
receivers (behind the token, like every route but the open ones)."""

from __future__ import annotations

from aiohttp import web

from .api_errors import ApiError
from .contract.base import dump
from .contract.endpoints_service import GET_WEBHOOK_SECRET
from .contract.webhooks import WebhookSecret
from .registry import RouteRegistry, as_registry
from .webhook_request import EVENTS
from .webhooks import WebhookService


def add_webhook_routes(routes: RouteRegistry | web.RouteTableDef, webhooks: WebhookService | None) -> None:
    """Register the secret's route; 404 ``webhooks_disabled`` when the server sends no webhooks."""

    @as_registry(routes).route(GET_WEBHOOK_SECRET)
    async def webhook_secret_route(request: web.Request) -> web.StreamResponse:
        if webhooks is None:
            return ApiError(404, "webhooks_disabled", "this server does not send webhooks").response()
        return web.json_response(dump(WebhookSecret(
            secret=webhooks.secret,
            scheme="standard-webhooks",
            signature="webhook-signature: v1,base64(HMAC-SHA256(base64decode(secret without 'whsec_'), "
                      "webhook-id + '.' + webhook-timestamp + '.' + body))",
            events=list(EVENTS))))
