"""Webhook signatures as in Standard Webhooks (https://www.standardwebhooks.com/): the secret,
signing a delivery, and the receiver's check (``verify``)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from typing import Mapping

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


def verify(secret: str, headers: Mapping[str, str], body: bytes, *, tolerance_s: float = TIMESTAMP_TOLERANCE_S,
           now: float | None = None) -> bool:
    """What a receiver does: check ``webhook-signature`` (any of its space-separated ``v1,``
    signatures) against ``webhook-id``, ``webhook-timestamp`` and the raw body, and that the
    timestamp is within ``tolerance_s`` of ``now``. Constant-time comparison."""
    lowered = {k.lower(): v for k, v in headers.items()}
    msg_id, stamp, signatures = (lowered.get(h) for h in ("webhook-id", "webhook-timestamp", "webhook-signature"))
    if not msg_id or not stamp or not signatures:
        return False
    try:
        timestamp = int(stamp)
    except ValueError:
        return False
    if abs((time.time() if now is None else now) - timestamp) > tolerance_s:
        return False
    expected = sign(secret, msg_id, timestamp, body).split(",", 1)[1].encode("ascii")
    for candidate in signatures.split():
        version, _, value = candidate.partition(",")
        if version == "v1" and hmac.compare_digest(value.encode("utf-8", "replace"), expected):
            return True
    return False
