"""The endpoints around the jobs: health, pipelines, this document, metrics, the webhook secret,
the session cookie and the page."""

from __future__ import annotations

from .base import PREFIX
from .service import Health, PipelineList, SessionSignIn
from .spec import PLAIN_NAME, Endpoint, RequestBody, Response, error, path_param
from .webhooks import WebhookSecret

METRICS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
PAGE_CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".ico": "image/x-icon",
}
"""What the page's files are served as, by extension (no other file is served)."""

_TEXT = {"type": "string"}

HEALTH = Endpoint(
    "GET", f"{PREFIX}/health", "getHealth", tag="system", open=True,
    summary="Liveness and the pipelines on offer.",
    responses={200: Response("OK", Health)})

LIST_PIPELINES = Endpoint(
    "GET", f"{PREFIX}/pipelines", "listPipelines", tag="job",
    summary="Each pipeline: its parameters as JSON Schema (with defaults), its stages and the models it needs.",
    responses={200: Response("OK", PipelineList)})

GET_OPENAPI = Endpoint(
    "GET", f"{PREFIX}/openapi.json", "getOpenapi", tag="system",
    summary="This document.",
    responses={200: Response("OpenAPI 3.1", {"type": "object"})})

GET_METRICS = Endpoint(
    "GET", f"{PREFIX}/metrics", "getMetrics", tag="system",
    summary="Prometheus metrics: jobs by status, queue depth, stage durations, webhook deliveries, HTTP requests.",
    responses={200: Response("Prometheus text format 0.0.4.", _TEXT, media_type=METRICS_CONTENT_TYPE.split(";")[0]),
               404: error("this server does not collect metrics.", "metrics_disabled")})

GET_WEBHOOK_SECRET = Endpoint(
    "GET", f"{PREFIX}/webhooks/secret", "getWebhookSecret", tag="webhook",
    summary="The secret webhook signatures are keyed with (whsec_..., derived from the API token).",
    responses={200: Response("The secret.", WebhookSecret),
               404: error("this server does not send webhooks.", "webhooks_disabled")})

_COOKIE = {"Set-Cookie": {"schema": _TEXT, "description": "myspinbot_token (HttpOnly, SameSite=Strict, Path=/)."}}

SIGN_IN = Endpoint(
    "POST", f"{PREFIX}/session", "signIn", tag="session", open=True,
    summary="Exchange the API token for the session cookie the page, its <video> and EventSource, and ComfyUI's "
            "frontend then carry (30 days).",
    request=RequestBody({"application/json": SessionSignIn}),
    responses={204: Response("Signed in: the cookie is set.", headers=_COOKIE),
               401: error("the token is not valid (details.reason invalid_token).", "unauthorized")})

SIGN_OUT = Endpoint(
    "DELETE", f"{PREFIX}/session", "signOut", tag="session", open=True,
    summary="Clear the session cookie.",
    responses={204: Response("Signed out: the cookie is cleared.", headers=_COOKIE)})

_PAGE_FILE = {"type": "string"}

PAGE_REDIRECT = Endpoint(
    "GET", PREFIX, "getPageRedirect", tag="page", open=True,
    summary="Redirects to the page (its relative URLs need the trailing slash).",
    responses={302: Response("To the page.", _TEXT, media_type="text/plain",
                             headers={"Location": {"$ref": "#/components/headers/Location"}})})

PAGE_INDEX = Endpoint(
    "GET", f"{PREFIX}/", "getPage", tag="page", open=True,
    summary="The page: the form, progress, video and job history (static, no job data; it asks for the token).",
    responses={200: Response("The page.", _PAGE_FILE, media_type="text/html"),
               404: error("the page's files are missing from this install.", "page_not_found")})

PAGE_FILE = Endpoint(
    "GET", f"{PREFIX}/page/{{file}}", "getPageFile", tag="page", open=True,
    summary="A static file of the page (script, style sheet, icon).",
    parameters=(path_param("file", {"type": "string", "pattern": PLAIN_NAME, "maxLength": 100}),),
    responses={200: Response("The file.", _PAGE_FILE,
                             media_type=tuple(sorted({t.split(";")[0] for t in PAGE_CONTENT_TYPES.values()}))),
               404: error("no such file.", "page_file_not_found")})

ENDPOINTS = (HEALTH, LIST_PIPELINES, GET_OPENAPI, GET_METRICS, GET_WEBHOOK_SECRET, SIGN_IN, SIGN_OUT,
             PAGE_REDIRECT, PAGE_INDEX, PAGE_FILE)
