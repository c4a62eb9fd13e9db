"""The Server-Sent Events of ``GET /jobs/{job_id}/events``: a ``snapshot`` of the job, then its
``status`` / ``progress`` / ``output`` events as they happen (bodies from ``views.py``, shapes in
``contract.jobs``), a heartbeat comment while nothing happens."""

from __future__ import annotations

import asyncio
import json
from typing import Any, Callable

from aiohttp import web

from .events import OUTPUT, PROGRESS, STATUS, JobEvent
from .model import TERMINAL, Job
from .route_helpers import api_base
from .views import output_event_json, progress_event_json


async def stream_events(response: web.StreamResponse, request: web.Request, job: Job, queue: asyncio.Queue[JobEvent],
                        render: Callable[[Job, web.Request], dict[str, Any]], heartbeat_s: float) -> None:
    """``snapshot``, then ``status`` / ``progress`` / ``output`` events from ``queue`` as they
    happen, a comment line every ``heartbeat_s`` seconds while nothing happens; returns after a
    terminal ``status``. ``render`` gives the job body of ``snapshot`` and ``status``."""
    await _send(response, "snapshot", render(job, request))
    if job.status in TERMINAL:
        return
    base = api_base(request)
    while True:
        try:
            event = await asyncio.wait_for(queue.get(), timeout=heartbeat_s)
        except asyncio.TimeoutError:
            await response.write(b": heartbeat\n\n")
            continue
        if event.kind == STATUS:
            await _send(response, STATUS, render(event.job, request))
            if event.job.status in TERMINAL:
                return
        elif event.kind == PROGRESS:
            await _send(response, PROGRESS, progress_event_json(event.job))
        elif event.kind == OUTPUT and event.output is not None:
            await _send(response, OUTPUT, output_event_json(event.job, event.output, base))


async def _send(response: web.StreamResponse, event: str, data: dict[str, Any]) -> None:
    payload = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    await response.write(f"event: {event}\ndata: {payload}\n\n".encode())
