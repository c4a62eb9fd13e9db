"""aiohttp handlers of the job API, mounted under ``/myspinbot`` (ComfyUI mirrors them under ``/api``)."""

from __future__ import annotations

import functools
import logging
import re
import shutil
import uuid
from typing import Awaitable, Callable

from aiohttp import web

from .api_errors import ApiError
from .jobs import JobService
from .model import job_to_json
from .uploads import accept_audio, accept_image, read_multipart

log = logging.getLogger("myspinbot.routes")

PREFIX = "/myspinbot"
_JOB_ID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
_OUTPUT_NAME = re.compile(r"^[a-z][a-z0-9_]{0,63}$")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def json_errors(handler: Handler) -> Handler:
    """Turn ``ApiError`` into its JSON envelope and any other exception into a 500 envelope
    (the traceback goes to the server log, never to the client)."""

    @functools.wraps(handler)
    async def wrapped(request: web.Request) -> web.StreamResponse:
        try:
            return await handler(request)
        except ApiError as err:
            return err.response()
        except web.HTTPException:
            raise
        except Exception:
            log.exception("myspinbot: %s %s failed", request.method, request.path)
            return ApiError(500, "internal_error", "the server failed to handle the request; see the ComfyUI log").response()

    return wrapped


def api_base(request: web.Request) -> str:
    return "/api" + PREFIX if request.path.startswith("/api/") else PREFIX


def add_routes(routes: web.RouteTableDef, service: JobService) -> None:
    """Register the handlers on ``routes`` (ComfyUI's ``PromptServer.instance.routes`` or a test app's)."""

    @routes.get(PREFIX + "/health")
    @json_errors
    async def health(request: web.Request) -> web.Response:
        return web.json_response({"status": "ok", "pipelines": sorted(service.pipelines)})

    @routes.post(PREFIX + "/jobs")
    @json_errors
    async def create_job(request: web.Request) -> web.Response:
        job_id = str(uuid.uuid4())
        staging = service.staging_dir(job_id)
        try:
            form = await read_multipart(request, staging)
            pipeline = service.pipeline(form.fields.pop("pipeline", None))
            values: dict[str, str] = dict(form.fields)
            for name, (path, client_name) in form.files.items():
                param = pipeline.param(name)
                if param is None or param.kind not in ("image", "audio"):
                    raise ApiError(422, "unknown_parameter", f"pipeline '{pipeline.name}' takes no file '{name}'", {"field": name})
                accepted = accept_image(path) if param.kind == "image" else accept_audio(path, client_name)
                values[name] = accepted.relative_to(service.host.input_dir).as_posix()
            job = await service.submit(job_id, pipeline, values)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        body = job_to_json(job, api_base(request))
        return web.json_response(body, status=202, headers={"Location": body["urls"]["self"]})

    @routes.get(PREFIX + "/jobs/{job_id}")
    @json_errors
    async def get_job(request: web.Request) -> web.Response:
        job = _job_or_404(service, request.match_info["job_id"])
        return web.json_response(job_to_json(job, api_base(request)))

    @routes.get(PREFIX + "/jobs/{job_id}/outputs/{name}")
    @json_errors
    async def get_output(request: web.Request) -> web.StreamResponse:
        job = _job_or_404(service, request.match_info["job_id"])
        name = request.match_info["name"]
        output = job.output(name) if _OUTPUT_NAME.match(name) else None
        path = service.output_path(job, name) if output else None
        if output is None or path is None:
            raise ApiError(404, "output_not_found", f"job {job.id} has no output '{name}'",
                           {"outputs": [o.name for o in job.outputs]})
        return web.FileResponse(path, headers={"Content-Type": output.content_type,
                                               "Content-Disposition": f'inline; filename="{name}{path.suffix}"'})


def _job_or_404(service: JobService, job_id: str):
    job = service.get(job_id) if _JOB_ID.match(job_id) else None
    if job is None:
        raise ApiError(404, "job_not_found", f"no job with id '{job_id}'")
    return job
