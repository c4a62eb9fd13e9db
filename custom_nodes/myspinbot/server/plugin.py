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
from .guard import add_session_routes, setup_access
from .comfy_host import PromptServerHost
from .jobs import JobService
from .models_routes import add_model_routes, api_error
from .pipelines import builtin_pipelines
from .routes import add_routes
from .settings import Settings
from .store import JobStore

log = logging.getLogger("myspinbot")

STORE_FILE = ("myspinbot", "jobs.sqlite3")


def attach(server: Any, node_ids: list[str] | None = None, listen: str | None = None) -> JobService:
    """Create the store (in ComfyUI's user directory), the model manager, the service and the routes.

    ``listen``: the address(es) ComfyUI listens on (default: its ``--listen``); beyond loopback
    the API token is required (auth.py)."""
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
    settings = Settings.from_env()
    service = JobService(host, store, pipelines, require_models=require_models, settings=settings)
    access = setup_access(server.app, service, host.user_dir, listen if listen is not None else _comfy_listen(),
                          settings=settings, cors=_comfy_cors())
    # Jobs the previous ComfyUI process left unfinished: settled now, re-queued (once) when the
    # server starts; finished jobs past their retention expire then and hourly (recovery.py, retention.py).
    from .recovery import JobRecovery, install
    from .retention import Retention

    recovery = JobRecovery(service)
    recovery.recover()
    install(server.app, recovery, Retention.from_env(service))
    add_routes(server.routes, service, webhooks=access.webhooks, metrics=access.metrics)
    add_model_routes(server.routes, manager, nodes=node_ids or [],
                     pipeline_models={name: p.models({}) for name, p in pipelines.items()})
    from .page import add_page_routes

    add_page_routes(server.routes)
    add_session_routes(server.routes, access.auth)
    return service


def _comfy_listen() -> str:
    """ComfyUI's ``--listen`` (one address or a comma-separated list; default 127.0.0.1)."""
    from comfy.cli_args import args

    return args.listen or "127.0.0.1"


def _comfy_cors() -> bool:
    """True when ComfyUI sends CORS headers (``--enable-cors-header``): core then skips its origin check."""
    from comfy.cli_args import args

    return bool(args.enable_cors_header)
