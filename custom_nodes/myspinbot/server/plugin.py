"""Attach the job API to a running ComfyUI: called once from the extension's ``on_load``."""

from __future__ import annotations

import logging
from typing import Any

import folder_paths

from ..models.locate import ModelLocator, folder_dirs_from
from ..models.manager import ModelManager
from ..models.manifest import load_manifest
from .app import STORE_FILE, Api, Models, compose  # noqa: F401 (STORE_FILE: where the job store lives)
from .comfy_host import PromptServerHost
from .jobs import JobService
from .settings import Settings

log = logging.getLogger("myspinbot")


def attach(server: Any, node_ids: list[str] | None = None, listen: str | None = None) -> JobService:
    """Build the job API over ComfyUI's PromptServer (``app.compose``): settings read from the
    environment once, the store in ComfyUI's user directory, the model manager over ComfyUI's
    model folders, every route on ``server.routes``.

    ``listen``: the address(es) ComfyUI listens on (default: its ``--listen``); beyond loopback
    the API token is required (auth.py)."""
    settings = Settings.from_env()
    host = PromptServerHost(server)
    manifest = load_manifest()
    manager = ModelManager(ModelLocator(folder_dirs_from(folder_paths), manifest), manifest)
    api: Api = compose(host, settings, app=server.app, routes=server.routes,
                       listen=listen if listen is not None else _comfy_listen(), cors=_comfy_cors(),
                       models=Models(manager, nodes=node_ids or []))
    return api.service


def _comfy_listen() -> str:
    """ComfyUI's ``--listen`` (one address or a comma-separated list; default 127.0.0.1)."""
    from comfy.cli_args import args

    return args.listen or "127.0.0.1"


def _comfy_cors() -> bool:
    """True when ComfyUI sends CORS headers (``--enable-cors-header``): core then skips its origin check."""
    from comfy.cli_args import args

    return bool(args.enable_cors_header)
