"""HTTP routes of the model manager, mounted under ``/myspinbot`` beside the job API.

- ``GET  /myspinbot/models``: every manifest model (licence, non-commercial flag, sizes,
  files present/missing, sha256 match, hand-placed files, download progress).
- ``GET  /myspinbot/models/{name}``: one model (the progress URL a download returns).
- ``POST /myspinbot/models/{name}/download``: start a background download (202).
- ``GET  /myspinbot/capabilities``: nodes, engines, models, per-pipeline missing models
  (preflight) and the device.

Errors use the job API's envelope ``{"error": {"code", "message", "details"}}``. Bodies are
validated against the contract (``contract/models.py``) on the way out.
"""

from __future__ import annotations

import asyncio
from typing import Any, Callable, Iterable, Mapping, Sequence

from aiohttp import web

from ..errors import (
    DownloadInProgressError,
    ModelConflictError,
    ModelsMissingError,
    MySpinBotError,
    OfflineError,
    UnknownModelError,
)
from ..models.manager import ModelManager, probe_engines
from ..models.preflight import require
from .api_errors import ApiError
from .contract import endpoints_models as api
from .contract.base import ContractModel, dump
from .contract.models import Capabilities, ModelDownload, ModelInfo, ModelList
from .registry import RouteRegistry, as_registry
from .route_helpers import api_base, json_errors

_STATUS = {
    UnknownModelError: 404,
    DownloadInProgressError: 409,
    ModelConflictError: 409,
    ModelsMissingError: 409,
    OfflineError: 503,
}


def api_error(err: MySpinBotError) -> ApiError:
    """The HTTP form of a model error: 404 unknown model, 409 busy/conflict/models missing,
    503 offline, 500 otherwise; code, message and details kept."""
    status = next((s for cls, s in _STATUS.items() if isinstance(err, cls)), 500)
    return ApiError(status, err.code, err.message, err.details)


def ensure_pipeline_models(manager: ModelManager, pipeline: str, pipeline_models: Mapping[str, Iterable[str]]) -> None:
    """The job API's preflight: raise ``ApiError`` 409 ``models_missing`` (details: missing
    models, files, fetch command) when the pipeline's models are not all on disk, so the job
    fails before it is queued. Only checks presence (no hashing): cheap enough per request."""
    try:
        require(list(pipeline_models.get(pipeline, ())), manager.locator)
    except ModelsMissingError as err:
        raise api_error(err) from None


def _json(model: type[ContractModel], body: dict[str, Any], **kwargs: Any) -> web.Response:
    """``body`` checked against the contract ``model``, as the response."""
    return web.json_response(dump(model.model_validate(body)), **kwargs)


def add_model_routes(routes: RouteRegistry | web.RouteTableDef, manager: ModelManager, *,
                     nodes: Sequence[str] | Callable[[], Sequence[str]] = (),
                     pipeline_models: Mapping[str, Iterable[str]] | None = None,
                     engines: Callable[[], Mapping[str, Any]] | None = probe_engines,
                     servers: Callable[[], list[dict[str, Any]]] | None = None, lipsync_score_on: bool = True) -> None:
    """Register the model routes through ``routes`` (the app's registry, or a bare ``RouteTableDef``).

    ``nodes``: the pack's node ids (or a function returning them); ``pipeline_models``:
    ``{pipeline: [model names]}`` for the capabilities report; ``engines``: a function
    returning the engines report (default: ``probe_engines``); ``servers``: a function returning
    the servers of a shared queue (``ServerRow.to_dict``; None: a single server); ``lipsync_score_on``:
    False when ``MYSPINBOT_LIPSYNC_SCORE`` turned the scores off (the report then says so)."""
    pipeline_models = dict(pipeline_models or {})
    registry = as_registry(routes)

    def model_urls(base: str, name: str) -> dict[str, str]:
        return {"self": f"{base}/models/{name}", "download": f"{base}/models/{name}/download"}

    @registry.route(api.LIST_MODELS)
    @json_errors
    async def list_models(request: web.Request) -> web.Response:
        body = await asyncio.to_thread(manager.models_json)
        base = api_base(request)
        for model in body["models"]:
            model["urls"] = model_urls(base, model["name"])
        return _json(ModelList, body)

    @registry.route(api.GET_MODEL)
    @json_errors
    async def get_model(request: web.Request) -> web.Response:
        name = request.match_info["name"]
        try:
            manager.entry(name)
            body = await asyncio.to_thread(manager.model_json, name)
        except MySpinBotError as err:
            raise api_error(err) from None
        body["urls"] = model_urls(api_base(request), name)
        return _json(ModelInfo, body)

    @registry.route(api.DOWNLOAD_MODEL)
    @json_errors
    async def download_model(request: web.Request) -> web.Response:
        name = request.match_info["name"]
        try:
            entry = manager.entry(name)
            dl = await manager.start_download(name)
        except MySpinBotError as err:
            raise api_error(err) from None
        urls = model_urls(api_base(request), name)
        body = {"model": name, "licence": entry.licence, "non_commercial": entry.non_commercial,
                "licence_notice": entry.licence_notice, "urls": {"progress": urls["self"]}}
        if dl is None:
            body.update(status="present", download=None)
            return _json(ModelDownload, body, status=200)
        body.update(status="downloading", download=dl.to_json())
        return _json(ModelDownload, body, status=202, headers={"Location": urls["self"]})

    @registry.route(api.GET_CAPABILITIES)
    @json_errors
    async def capabilities(request: web.Request) -> web.Response:
        node_list = list(nodes() if callable(nodes) else nodes)
        engine_report = await asyncio.to_thread(engines) if engines is not None else {}
        body = await asyncio.to_thread(lambda: manager.capabilities(nodes=node_list, pipeline_models=pipeline_models,
                                                                    engines=engine_report))
        if servers is not None:
            body["servers"] = await asyncio.to_thread(servers)
        if not lipsync_score_on:
            body["lipsync_score"].update(enabled=False, file=None, reason="lip-sync scores are turned off "
                                         "(MYSPINBOT_LIPSYNC_SCORE=false): job outputs carry no 'quality' block")
        return _json(Capabilities, body)
