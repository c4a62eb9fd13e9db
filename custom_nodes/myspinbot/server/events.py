"""In-process pub/sub of job events (what ``GET /jobs/{id}/events`` streams) and per-key locks.

Everything here runs on the event loop's thread; nothing is shared with other threads.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import logging
from dataclasses import dataclass
from typing import Any, AsyncIterator, Callable

from .model import Job, Output

log = logging.getLogger("myspinbot.events")

STATUS, PROGRESS, OUTPUT = "status", "progress", "output"
STAGE = "stage"
"""A job reached a new pipeline stage: only listeners get it (``notify``), never the event streams."""

Listener = Callable[["JobEvent"], None]


@dataclass(frozen=True)
class JobEvent:
    """``kind`` is ``status``, ``progress``, ``output`` (or ``stage``, for listeners only); ``job`` a
    snapshot taken when it happened; ``output`` the output an ``output`` event announces."""

    kind: str
    job: Job
    output: Output | None = None


class JobEvents:
    """Per-job subscriber queues. Publishing never blocks: each subscriber has its own unbounded
    queue (progress is throttled upstream, so a subscriber gets at most a few events a second).

    Listeners (``listen``) are called synchronously with every event of every job (webhooks,
    metrics); one that raises is logged and skipped, never breaks the publisher."""

    def __init__(self) -> None:
        self._subscribers: dict[str, set[asyncio.Queue[JobEvent]]] = {}
        self._listeners: list[Listener] = []

    def listen(self, listener: Listener) -> None:
        self._listeners.append(listener)

    def unlisten(self, listener: Listener) -> None:
        if listener in self._listeners:
            self._listeners.remove(listener)

    def notify(self, kind: str, job: Job, output: Output | None = None) -> None:
        """Tell the listeners (only) about an event."""
        if not self._listeners:
            return
        event = JobEvent(kind, copy.deepcopy(job), output)
        for listener in list(self._listeners):
            try:
                listener(event)
            except Exception:
                log.exception("myspinbot: a job event listener failed on %s of job %s", kind, job.id)

    def subscribe(self, job_id: str) -> asyncio.Queue[JobEvent]:
        queue: asyncio.Queue[JobEvent] = asyncio.Queue()
        self._subscribers.setdefault(job_id, set()).add(queue)
        return queue

    def unsubscribe(self, job_id: str, queue: asyncio.Queue[JobEvent]) -> None:
        queues = self._subscribers.get(job_id)
        if queues is not None:
            queues.discard(queue)
            if not queues:
                del self._subscribers[job_id]

    def has_subscribers(self, job_id: str) -> bool:
        return job_id in self._subscribers

    def subscriber_count(self, job_id: str | None = None) -> int:
        if job_id is not None:
            return len(self._subscribers.get(job_id, ()))
        return sum(len(q) for q in self._subscribers.values())

    def publish(self, kind: str, job: Job, output: Output | None = None) -> None:
        """Tell the listeners and the job's subscribers."""
        self.notify(kind, job, output)
        self.deliver(kind, job, output)

    def deliver(self, kind: str, job: Job, output: Output | None = None) -> None:
        """Tell the job's subscribers (only): an event another server published (``jobs/event_relay.py``)."""
        queues = self._subscribers.get(job.id)
        if not queues:
            return
        event = JobEvent(kind, copy.deepcopy(job), output)
        for queue in list(queues):
            queue.put_nowait(event)


class KeyedLocks:
    """One ``asyncio.Lock`` per key, created on first use and dropped when nobody holds or awaits it."""

    def __init__(self) -> None:
        self._locks: dict[str, list[Any]] = {}  # key -> [lock, users]

    @contextlib.asynccontextmanager
    async def hold(self, key: str) -> AsyncIterator[None]:
        entry = self._locks.setdefault(key, [asyncio.Lock(), 0])
        entry[1] += 1
        try:
            async with entry[0]:
                yield
        finally:
            entry[1] -= 1
            if entry[1] == 0:
                del self._locks[key]

    def __len__(self) -> int:
        return len(self._locks)
