"""Attach the job API to a running ComfyUI: called once from the extension's ``on_load``."""

from __future__ import annotations

import logging
from typing import Any

import folder_paths

from ..models.locate import ModelLocator, folder_dirs_from
from ..models.manager import ModelManager
from ..models.manifest import load_manifest
from ..models.preflight import require
from ..errors import ModelsMissingError
from .comfy_host import PromptServerHost
from .jobs import JobService
from .models_routes import add_model_routes, api_error
from .pipelines import builtin_pipelines
from .routes import add_routes
from .store import JobStore

log = logging.getLogger("myspinbot")

STORE_FILE = ("myspinbot", "jobs.sqlite3")


def attach(server: Any, node_ids: list[str] | None = None) -> JobService:
    """Create the store (in ComfyUI's user directory), the model manager, the service and the routes."""
    host = PromptServerHost(server)
    store = JobStore(host.user_dir.joinpath(*STORE_FILE))
    manifest = load_manifest()
    locator = ModelLocator(folder_dirs_from(folder_paths), manifest)
    manager = ModelManager(locator, manifest)

    def require_models(names: list[str]) -> None:
        try:
            require(names, locator)
        except ModelsMissingError as err:
            raise api_error(err) from None

    pipelines = builtin_pipelines()
    service = JobService(host, store, pipelines, require_models=require_models)
    lost = service.recover()
    if lost:
        log.warning("myspinbot: %d job(s) were unfinished when ComfyUI stopped; marked failed (lost_on_restart)", lost)
    add_routes(server.routes, service)
    add_model_routes(server.routes, manager, nodes=node_ids or [],
                     pipeline_models={name: p.models({}) for name, p in pipelines.items()})
    return service
