"""``Idempotency-Key``: a submission retried with the same key returns the job the first one created.

A key is remembered with the hash of its request for ``ttl_s`` seconds (24 h by default, in the
job store's ``idempotency_keys``). Submissions with the same key are serialized by a per-key
lock, so concurrent ones create one job.
"""

from __future__ import annotations

import re
from typing import Awaitable, Callable

from ..api_errors import ApiError
# The request header that names a submission, and the response header (``true``) of a submission
# answered with the job an earlier one created: part of the API's contract.
from ..contract.endpoints_jobs import IDEMPOTENCY_HEADER, REPLAYED_HEADER
from ..events import KeyedLocks
from ..model import Job
from ..store import IdempotencyRecord, JobStore
IDEMPOTENCY_TTL_S = 24 * 3600.0
_KEY = re.compile(r"^[\x21-\x7e]{1,255}$")


def parse_key(value: str | None) -> str | None:
    """The header's value as a key (None when absent); 422 ``invalid_idempotency_key`` unless it
    is 1 to 255 visible ASCII characters."""
    if value is None:
        return None
    if not _KEY.match(value):
        raise ApiError(422, "invalid_idempotency_key", "an Idempotency-Key is 1 to 255 visible ASCII characters",
                       {"header": IDEMPOTENCY_HEADER})
    return value


class Idempotency:
    """The keys of one job store; ``clock`` gives Unix seconds."""

    def __init__(self, store: JobStore, clock: Callable[[], float], ttl_s: float = IDEMPOTENCY_TTL_S):
        self.store = store
        self.clock = clock
        self.ttl_s = ttl_s
        self._locks = KeyedLocks()

    def live(self, key: str) -> tuple[IdempotencyRecord, Job] | None:
        """The live (younger than the TTL) record of ``key`` and its job, if any."""
        record = self.store.idempotency(key)
        if record is None or record.created_at < self.clock() - self.ttl_s:
            return None
        job = self.store.get(record.job_id)
        return (record, job) if job is not None else None

    async def once(self, key: str | None, request_hash: str, create: Callable[[], Awaitable[Job]]) -> tuple[Job, bool]:
        """Run ``create`` unless ``key`` already created a job within the TTL; returns ``(job, replayed)``.

        The same key with a different ``request_hash`` raises 422 ``idempotency_key_reused``. A
        failed ``create`` records nothing, so the key can be retried."""
        if key is None:
            return await create(), False
        async with self._locks.hold(key):
            found = self.live(key)
            if found is not None:
                record, job = found
                if record.request_hash != request_hash:
                    raise ApiError(422, "idempotency_key_reused",
                                   "this Idempotency-Key was already used with a different request",
                                   {"header": IDEMPOTENCY_HEADER})
                return job, True
            job = await create()
            now = self.clock()
            self.store.put_idempotency(IdempotencyRecord(key, request_hash, job.id, now), expire_before=now - self.ttl_s)
            return job, False

    def held_locks(self) -> int:
        """Keys locked or awaited now (the per-key locks are dropped once free)."""
        return len(self._locks)
