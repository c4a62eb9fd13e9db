"""Attach the job API to a running ComfyUI: called once from the extension's ``on_load``."""

from __future__ import annotations

import logging
from typing import Any

from .comfy_host import PromptServerHost
from .jobs import JobService
from .pipelines import builtin_pipelines
from .routes import add_routes
from .store import JobStore

log = logging.getLogger("myspinbot")

STORE_FILE = ("myspinbot", "jobs.sqlite3")


def attach(server: Any) -> JobService:
    """Create the store (in ComfyUI's user directory), the service and the routes."""
    host = PromptServerHost(server)
    store = JobStore(host.user_dir.joinpath(*STORE_FILE))
    service = JobService(host, store, builtin_pipelines())
    lost = service.recover()
    if lost:
        log.warning("myspinbot: %d job(s) were unfinished when ComfyUI stopped; marked failed (lost_on_restart)", lost)
    add_routes(server.routes, service)
    return service
