"""Progress events of one job go out at most every ``interval_s`` seconds; the latest held back
goes out when the interval is over, so the last value always arrives.

Runs on the event loop's thread (it schedules the held-back event with ``call_later``).
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Callable

from ..model import Job

PROGRESS_INTERVAL_S = 0.25


@dataclass
class _Gate:
    """When the last progress event of a job went out, and the one held back."""

    last: float = float("-inf")
    pending: Job | None = None
    handle: asyncio.TimerHandle | None = None


class ProgressThrottle:
    """Calls ``publish(job)`` for a job's progress, throttled per job (monotonic seconds)."""

    def __init__(self, publish: Callable[[Job], None], interval_s: float = PROGRESS_INTERVAL_S):
        self.publish = publish
        self.interval_s = interval_s
        self._gates: dict[str, _Gate] = {}

    def offer(self, job: Job) -> None:
        """Publish now if the job's interval is over, else hold ``job`` (replacing one held before)."""
        gate = self._gates.setdefault(job.id, _Gate())
        now = time.monotonic()
        if gate.handle is None and now - gate.last >= self.interval_s:
            gate.last = now
            self.publish(job)
            return
        gate.pending = job
        if gate.handle is None:
            delay = max(0.0, self.interval_s - (now - gate.last))
            gate.handle = asyncio.get_running_loop().call_later(delay, self._flush, job.id)

    def close(self, job_id: str) -> None:
        """Forget a finished job: what it held back is dropped (its final event supersedes it)."""
        gate = self._gates.pop(job_id, None)
        if gate is not None and gate.handle is not None:
            gate.handle.cancel()

    def _flush(self, job_id: str) -> None:
        gate = self._gates.get(job_id)
        if gate is None:
            return
        gate.handle = None
        if gate.pending is not None:
            job, gate.pending = gate.pending, None
            gate.last = time.monotonic()
            self.publish(job)
