"""Job events across the servers of a shared queue: what one server publishes reaches the event
streams (``GET /jobs/{id}/events``) of every server.

``EventRelay`` listens to this server's ``JobEvents`` and sends each status, progress and output
event as a PostgreSQL notification (``EVENTS_CHANNEL``; payload: the server, the kind, the job id
and the output's name: a job's row can be larger than a notification may be). The other servers
receive it on a ``pg_listen.Listener`` thread, read the job from the shared database and deliver
the event to their own subscribers only (``JobEvents.deliver``): webhooks and metrics are the
publishing server's (webhook deliveries live in the shared database; any server sends them once).

A notification is sent when the publishing transaction commits; one sent while a listener
reconnects is lost (not replayed: that stream misses the event; its client sees the job's state
when it reads the job or reconnects).
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import TYPE_CHECKING

from ..events import OUTPUT, PROGRESS, STATUS, JobEvent
from ..pg_listen import Listener, notify

if TYPE_CHECKING:
    from .service import JobService

log = logging.getLogger("myspinbot.jobs")

EVENTS_CHANNEL = "myspinbot_events"
RELAYED = (STATUS, PROGRESS, OUTPUT)


class EventRelay:
    """Relays ``service``'s job events to and from the other servers; ``worker``: this server's name."""

    def __init__(self, service: "JobService", worker: str):
        self.service, self.worker = service, worker
        self._listener: Listener | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def start(self) -> None:
        """Send this server's events and deliver the others' (on the running loop) until ``stop``."""
        if self._listener is None:
            self._loop = asyncio.get_running_loop()
            self.service.events.listen(self.send)
            self._listener = Listener(self.service.store.db.url, EVENTS_CHANNEL, self._received)
            self._listener.start()

    async def stop(self) -> None:
        listener, self._listener = self._listener, None
        self.service.events.unlisten(self.send)
        if listener is not None:
            await asyncio.to_thread(listener.stop)

    @property
    def listening(self) -> bool:
        return self._listener is not None and self._listener.listening.is_set()

    def send(self, event: JobEvent) -> None:
        """``JobEvents`` listener: notify the other servers of one of this server's events."""
        if event.kind not in RELAYED:
            return
        payload = json.dumps({"server": self.worker, "kind": event.kind, "job": event.job.id,
                              "output": event.output.name if event.output is not None else None})
        with self.service.store.db.transaction() as conn:
            notify(conn, EVENTS_CHANNEL, payload)

    def _received(self, payload: str) -> None:
        """On the listener's thread: hand a notification to the loop."""
        message = json.loads(payload)
        if message.get("server") != self.worker and self._loop is not None:
            self._loop.call_soon_threadsafe(self.deliver, message)

    def deliver(self, message: dict) -> None:
        """On the loop: deliver another server's event to this server's subscribers of the job."""
        events = self.service.events
        if not events.has_subscribers(message["job"]):
            return
        job = self.service.store.get(message["job"])
        if job is None:
            return
        output = next((o for o in job.outputs if o.name == message.get("output")), None)
        if message["kind"] == OUTPUT and output is None:
            return
        events.deliver(message["kind"], job, output)
