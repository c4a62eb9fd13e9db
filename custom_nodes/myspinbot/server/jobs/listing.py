"""Pages of the job list: filters, a limit and an opaque cursor (``GET /myspinbot/jobs``)."""

from __future__ import annotations

import base64
import binascii
import json
import re

from ..api_errors import ApiError
from ..contract.jobs import DEFAULT_PAGE, MAX_PAGE  # the API's page limits are part of its contract
from ..model import STATUSES, Job
from ..store import JobStore


def list_page(store: JobStore, *, statuses: tuple[str, ...] = (), pipelines: tuple[str, ...] = (),
              limit: int = DEFAULT_PAGE, cursor: str | None = None) -> tuple[list[Job], str | None]:
    """A page of jobs, newest first, and the cursor of the next page (None on the last).

    Raises 422 ``invalid_parameter`` for an unknown status or a limit outside 1..``MAX_PAGE``,
    ``invalid_cursor`` for a cursor this API did not return."""
    unknown = [s for s in statuses if s not in STATUSES]
    if unknown:
        raise ApiError(422, "invalid_parameter", f"unknown status '{unknown[0]}'", {"field": "status", "statuses": list(STATUSES)})
    if not 1 <= limit <= MAX_PAGE:
        raise ApiError(422, "invalid_parameter", f"limit must be between 1 and {MAX_PAGE}", {"field": "limit"})
    after = decode_cursor(cursor) if cursor else None
    jobs = store.page(statuses=statuses, pipelines=pipelines, limit=limit + 1, after=after)
    if len(jobs) <= limit:
        return jobs, None
    jobs = jobs[:limit]
    return jobs, encode_cursor(jobs[-1])


def encode_cursor(job: Job) -> str:
    """The cursor of the page after ``job``: base64url of ``[created_at, id]``."""
    raw = json.dumps([job.created_at, job.id], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[float, str]:
    """Raises 422 ``invalid_cursor`` for anything ``encode_cursor`` did not make: too long, not
    base64 of ``[finite number, job id]`` (so no deep nesting, NaN or surrogate reaches the store)."""
    try:
        if len(cursor) > 200:  # encode_cursor makes about 80 characters; shorter input also bounds the nesting
            raise ValueError(cursor)
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        value = json.loads(raw)
        if not isinstance(value, list) or len(value) != 2:
            raise ValueError(cursor)
        created_at, job_id = value
        if isinstance(created_at, bool) or not isinstance(created_at, (int, float)) or not isinstance(job_id, str):
            raise ValueError(cursor)
        created_at = float(created_at)
        if not abs(created_at) < float("inf") or not re.fullmatch(r"[0-9a-f-]{1,64}", job_id):  # NaN fails the first
            raise ValueError(cursor)
        return created_at, job_id
    except (ValueError, TypeError, OverflowError, RecursionError, binascii.Error, UnicodeDecodeError):
        raise ApiError(422, "invalid_cursor", "the cursor is not one this API returned", {"field": "cursor"}) from None
