"""What a webhook receiver does with a myspinbot delivery (test helper; receivers use their own
Standard Webhooks library): check ``webhook-signature`` (any of its space-separated ``v1,``
signatures) against ``webhook-id``, ``webhook-timestamp`` and the raw body, and that the
timestamp is recent. ``test_webhooks`` checks it against the ``standardwebhooks`` package."""

from __future__ import annotations

import hmac
import time
from typing import Mapping

from myspinbot.server.webhook_signing import TIMESTAMP_TOLERANCE_S, sign


def verify(secret: str, headers: Mapping[str, str], body: bytes, *, tolerance_s: float = TIMESTAMP_TOLERANCE_S,
           now: float | None = None) -> bool:
    """True when ``headers`` carry a valid, recent signature of ``body`` for ``secret`` (constant time)."""
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
