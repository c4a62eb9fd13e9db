"""Starting and stopping a shared queue's parts with the app (``app.compose``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from aiohttp import web

    from ..retention import Retention
    from .claiming import SharedQueue
    from .event_relay import EventRelay


def install_shared(app: "web.Application", queue: "SharedQueue", retention: "Retention | None" = None,
                   relay: "EventRelay | None" = None) -> SharedQueue:
    """Start ``queue`` (and ``retention``, ``relay``) when ``app`` starts, stop them when it shuts down."""

    async def on_startup(_app: object) -> None:
        if relay is not None:
            relay.start()
        queue.start()
        if retention is not None:
            retention.start()

    async def on_cleanup(_app: object) -> None:
        await queue.stop()
        if retention is not None:
            await retention.stop()
        if relay is not None:
            await relay.stop()

    app.on_startup.append(on_startup)
    app.on_cleanup.append(on_cleanup)
    return queue
