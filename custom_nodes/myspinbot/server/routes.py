"""aiohttp handlers of the job API, mounted under ``/myspinbot`` (ComfyUI mirrors them under ``/api``).

Each handler is registered against its contract endpoint (``contract/endpoints_*.py``) through a
``registry.RouteRegistry``; ``/openapi.json`` is generated from that registry. Bodies are built
as contract models (``views.py``).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import re
import shutil
import uuid
from typing import Any

from aiohttp import web

from .api_errors import ApiError
from .contract import endpoints_jobs as jobs_api, endpoints_service as service_api
from .contract.base import dump
from .contract.endpoints_jobs import OUTPUT_NAME_PATTERN
from .contract.jobs import ListJobsQuery
from .contract.pipelines import pipelines_document
from .contract.service import Health
from .event_stream import stream_events
from .jobs import JobService
from .jobs.idempotency import IDEMPOTENCY_HEADER, REPLAYED_HEADER, parse_key
from .jobs.layout import INCOMING_PREFIX, JOB_ID
from .model import Job
from .input_limits import check_asset_audio, check_text_inputs, file_fields_of
from .json_body import check_json_depth, read_json
from .openapi import build_openapi
from .registry import RouteRegistry, as_registry
from .route_helpers import api_base, json_errors
from .uploads import FormLimits, read_multipart
from .urls import PREFIX
from .metrics import Metrics, add_metrics_route
from .views import asset_json, job_json
from .webhook_routes import add_webhook_routes
from .webhooks import WebhookService, webhook_from_request, with_webhook

log = logging.getLogger("myspinbot.routes")

_JOB_ID = JOB_ID
_OUTPUT_NAME = re.compile(OUTPUT_NAME_PATTERN)
JSON_BODY_FIELDS = frozenset({"pipeline", "inputs", "options", "webhook"})
__all__ = ["IDEMPOTENCY_HEADER", "PREFIX", "REPLAYED_HEADER", "add_routes", "api_base", "json_errors"]

def add_routes(routes: RouteRegistry | web.RouteTableDef, service: JobService, *,
               webhooks: WebhookService | None = None, metrics: Metrics | None = None) -> None:
    """Register the job API's handlers through ``routes`` (the app's registry; a bare
    ``RouteTableDef`` gets one of its own): health, pipelines, this document, jobs, assets, the
    webhook secret and metrics. ``/openapi.json`` documents what the registry holds when asked."""
    registry = as_registry(routes)
    settings = service.settings
    job_file_fields = file_fields_of(service.pipelines)

    def render(job: Job, request: web.Request) -> dict[str, Any]:
        if webhooks is None:
            return job_json(job, api_base(request), service.queue_position(job))
        return job_json(job, api_base(request), service.queue_position(job), webhook=webhooks.job_webhook(job.id))

    @registry.route(service_api.HEALTH)
    @json_errors
    async def health(request: web.Request) -> web.Response:
        return web.json_response(dump(Health(status="ok", pipelines=sorted(service.pipelines))))

    @registry.route(service_api.LIST_PIPELINES)
    @json_errors
    async def list_pipelines(request: web.Request) -> web.Response:
        return web.json_response(pipelines_document(service.pipelines))

    @registry.route(service_api.GET_OPENAPI)
    @json_errors
    async def openapi(request: web.Request) -> web.Response:
        return web.json_response(build_openapi(registry, service.pipelines))

    # --- jobs ----------------------------------------------------------------------------
    @registry.route(jobs_api.CREATE_JOB)
    @json_errors
    async def create_job(request: web.Request) -> web.Response:
        is_json = request.content_type == "application/json" or request.content_type.endswith("+json")
        if not is_json and not request.content_type.startswith("multipart/"):
            raise ApiError(415, "unsupported_media_type", "send application/json or multipart/form-data",
                           {"content_type": request.content_type})
        key = idempotency_key(request)
        if key is None or service.idempotent_job(key) is None:
            service.check_capacity()  # before reading (and staging) anything
        job_id = str(uuid.uuid4())
        staging = service.staging_dir(job_id)
        kept = False
        try:
            if is_json:
                body = await read_json(request, settings)
                pipeline_name, inputs, request_hash = parse_json_submission(body)
                webhook = webhook_from_request(webhooks, body.get("webhook"))

                async def create() -> Job:
                    pipeline = service.pipeline(pipeline_name)
                    check_text_inputs(pipeline, inputs, settings)
                    values = await asyncio.to_thread(service.resolve_inputs, pipeline, inputs)  # may hash or fetch
                    await check_asset_audio(pipeline, inputs, values, service.host.input_dir, settings)
                    return await service.submit(job_id, pipeline, values)
            else:
                form = await read_multipart(request, staging, FormLimits.from_settings(settings, service.max_upload_bytes),
                                            job_file_fields)
                pipeline_name = form.fields.pop("pipeline", None)
                request_hash = _hash({"pipeline": pipeline_name, "fields": form.fields, "files": form.sha256})
                if "webhook" in form.fields:
                    check_json_depth(form.fields["webhook"], settings.max_json_depth, "webhook")
                webhook = webhook_from_request(webhooks, form.fields.pop("webhook", None), form=True)

                async def create() -> Job:
                    pipeline = service.pipeline(pipeline_name)
                    check_text_inputs(pipeline, form.fields, settings)
                    # A file parameter sent as a text field is an asset id, never a path.
                    values = await asyncio.to_thread(service.resolve_inputs, pipeline, dict(form.fields),
                                                     bare_asset_ids=True)
                    await check_asset_audio(pipeline, form.fields, values, service.host.input_dir, settings)
                    for name, (path, client_name) in form.files.items():
                        param = pipeline.param(name)
                        if param is None or param.kind not in ("image", "audio"):
                            raise ApiError(422, "unknown_parameter", f"pipeline '{pipeline.name}' takes no file '{name}'", {"field": name})
                        if name in values:
                            raise ApiError(422, "conflicting_inputs", f"'{name}' given both as a file and as an asset id", {"field": name})
                        values[name] = await service.accept_job_file(pipeline, param, path, client_name)  # off the loop
                    return await service.submit(job_id, pipeline, values)

            job, replayed = await service.submit_once(key, request_hash, with_webhook(webhooks, webhook, job_id, create))
            kept = not replayed
        finally:
            if not kept:
                shutil.rmtree(staging, ignore_errors=True)
        body = render(job, request)
        headers = {"Location": body["urls"]["self"]}
        if replayed:
            headers[REPLAYED_HEADER] = "true"
        return web.json_response(body, status=200 if replayed else 202, headers=headers)

    @registry.route(jobs_api.LIST_JOBS)
    @json_errors
    async def list_jobs(request: web.Request) -> web.Response:
        query = ListJobsQuery.from_query(request.query)
        jobs, next_cursor = service.list_jobs(statuses=query.status, pipelines=query.pipeline,
                                              limit=query.limit, cursor=query.cursor)
        return web.json_response({"jobs": [render(j, request) for j in jobs], "next_cursor": next_cursor})

    @registry.route(jobs_api.GET_JOB)
    @json_errors
    async def get_job(request: web.Request) -> web.Response:
        job = _job_or_404(service, request.match_info["job_id"])
        return web.json_response(render(job, request))

    @registry.route(jobs_api.CANCEL_JOB)
    @json_errors
    async def cancel_job(request: web.Request) -> web.Response:
        job = _job_or_404(service, request.match_info["job_id"])
        job = service.cancel(job.id) or job
        return web.json_response(render(job, request))

    @registry.route(jobs_api.STREAM_JOB_EVENTS)
    @json_errors
    async def job_events(request: web.Request) -> web.StreamResponse:
        job_id = _job_or_404(service, request.match_info["job_id"]).id
        queue = service.events.subscribe(job_id)  # before the snapshot: nothing can fall in between
        try:
            job = service.get(job_id)
            response = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache",
                                                   "X-Accel-Buffering": "no"})
            await response.prepare(request)
            try:
                await stream_events(response, request, job, queue, render, service.heartbeat_s)
            except (ConnectionError, asyncio.TimeoutError):  # the client went away
                return response
            except Exception:  # headers are sent: end the stream, the log has the rest
                log.exception("myspinbot: event stream of job %s failed", job_id)
                return response
            await response.write_eof()
            return response
        finally:
            service.events.unsubscribe(job_id, queue)

    @registry.route(jobs_api.GET_JOB_OUTPUT)
    @json_errors
    async def get_output(request: web.Request) -> web.StreamResponse:
        job = _job_or_404(service, request.match_info["job_id"])
        name = request.match_info["name"]
        output = job.output(name) if _OUTPUT_NAME.match(name) else None
        path = await service.fetch_output(job, name) if output else None
        if output is None or path is None:
            raise ApiError(404, "output_not_found", f"job {job.id} has no output '{name}'",
                           {"outputs": [o.name for o in job.outputs]})
        return web.FileResponse(path, headers={"Content-Type": output.content_type,
                                               "Content-Disposition": f'inline; filename="{name}{path.suffix}"'})

    @registry.route(jobs_api.UPLOAD_JOB_OUTPUT)
    @json_errors
    async def upload_output(request: web.Request) -> web.Response:
        job = _job_or_404(service, request.match_info["job_id"])
        name = request.match_info["name"]
        if not _OUTPUT_NAME.match(name) or job.output(name) is None:
            raise ApiError(404, "output_not_found", f"job {job.id} has no output '{name}'",
                           {"outputs": [o.name for o in job.outputs]})
        job = await service.upload_output(job, name)
        return web.json_response(render(job, request))

    # --- assets --------------------------------------------------------------------------
    @registry.route(jobs_api.UPLOAD_ASSET)
    @json_errors
    async def upload_asset(request: web.Request) -> web.Response:
        incoming = service.assets_dir() / f"{INCOMING_PREFIX}{uuid.uuid4()}"
        try:
            form = await read_multipart(request, incoming, FormLimits.from_settings(settings, service.max_upload_bytes),
                                        lambda fields: ("file",))
            extra = sorted(set(form.fields) | (set(form.files) - {"file"}))
            if extra:
                raise ApiError(422, "unknown_parameter", f"unexpected field '{extra[0]}': send one file field 'file'",
                               {"field": extra[0]})
            if "file" not in form.files:
                raise ApiError(422, "missing_file", "send the file in a multipart file field 'file'", {"field": "file"})
            path, _ = form.files["file"]
            asset, created = await service.accept_asset(path, form.sha256["file"], form.sizes["file"])  # off the loop
        finally:
            shutil.rmtree(incoming, ignore_errors=True)
        return web.json_response(asset_json(asset), status=201 if created else 200,
                                 headers={"Location": f"{api_base(request)}/assets/{asset.id}"})

    @registry.route(jobs_api.GET_ASSET)
    @json_errors
    async def get_asset(request: web.Request) -> web.Response:
        asset_id = request.match_info["asset_id"]
        asset = service.asset(asset_id)
        if asset is None:
            raise ApiError(404, "asset_not_found", f"no asset '{asset_id}'")
        return web.json_response(asset_json(asset))

    # --- webhooks and metrics (webhooks.py, metrics.py) ----------------------------------
    add_webhook_routes(registry, webhooks)
    add_metrics_route(registry, metrics)


def parse_json_submission(body: Any) -> tuple[Any, dict[str, Any], str]:
    """``{"pipeline", "inputs", "options"}`` → (pipeline name, inputs with options merged in, request hash)."""
    if not isinstance(body, dict):
        raise ApiError(400, "malformed_body", "the body must be a JSON object {\"pipeline\", \"inputs\", \"options\"}")
    unknown = sorted(set(body) - JSON_BODY_FIELDS)
    if unknown:
        raise ApiError(422, "unknown_field", f"unknown field '{unknown[0]}'", {"field": unknown[0], "fields": sorted(JSON_BODY_FIELDS)})
    inputs = body.get("inputs", {})
    options = body.get("options", {})
    for name, value in (("inputs", inputs), ("options", options)):
        if not isinstance(value, dict):
            raise ApiError(422, "invalid_parameter", f"'{name}' must be an object", {"field": name})
    both = sorted(set(inputs) & set(options))
    if both:
        raise ApiError(422, "conflicting_inputs", f"'{both[0]}' given in both 'inputs' and 'options'", {"field": both[0]})
    return body.get("pipeline"), {**inputs, **options}, _hash(body)


def idempotency_key(request: web.Request) -> str | None:
    """The request's ``Idempotency-Key`` (None when absent); 422 ``invalid_idempotency_key``."""
    return parse_key(request.headers.get(IDEMPOTENCY_HEADER))


def _hash(value: Any) -> str:
    canonical = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


def _job_or_404(service: JobService, job_id: str) -> Job:
    job = service.get(job_id) if _JOB_ID.match(job_id) else None
    if job is None:
        raise ApiError(404, "job_not_found", f"no job with id '{job_id}'")
    return job
