"""Webhook signatures as in Standard Webhooks (https://www.standardwebhooks.com/): the secret,
signing a delivery. The receiver's check lives with the tests (``tests/webhook_receiver.py``),
checked against the ``standardwebhooks`` package."""

from __future__ import annotations

import base64
import hashlib
import hmac

SECRET_PREFIX = "whsec_"
_SECRET_CONTEXT = b"myspinbot-webhooks"
TIMESTAMP_TOLERANCE_S = 300


def webhook_secret(token: str) -> str:
    """The signing secret of an API token: ``whsec_`` + base64(HMAC-SHA256(token, context)).
    Deterministic, so it needs no storage and changes with the token; it does not reveal the token."""
    key = hmac.new(token.encode("utf-8"), _SECRET_CONTEXT, hashlib.sha256).digest()
    return SECRET_PREFIX + base64.b64encode(key).decode("ascii")


def _secret_key(secret: str) -> bytes:
    raw = secret[len(SECRET_PREFIX):] if secret.startswith(SECRET_PREFIX) else secret
    return base64.b64decode(raw)


def sign(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """The ``webhook-signature`` value: ``v1,<base64 HMAC-SHA256(key, "<id>.<timestamp>.<body>")>``."""
    signed = f"{msg_id}.{timestamp}.".encode("utf-8") + body
    digest = hmac.new(_secret_key(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode("ascii")
