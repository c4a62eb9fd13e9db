"""Every response a tier-1 test app sends, checked against the app's own ``/openapi.json``.

``checked_app`` builds the aiohttp app of a ``RouteRegistry`` with ``SpecCheck`` as its
outermost middleware: for each request that reached a registered route it looks up the
operation (method + route template, the ``/api`` mirror folded in) and checks that the status is
documented, that the content type is one the document gives for it, and that a JSON body
validates against the documented schema (JSON Schema 2020-12). Problems are collected, not
raised (the client still gets the real response); the autouse fixture in ``conftest.py`` fails
the test that caused any.
"""

from __future__ import annotations

import json
from collections import Counter
from typing import Any, Callable, Iterable, Mapping

import jsonschema
from aiohttp import web

from myspinbot.server.urls import API_MIRROR, PREFIX
from myspinbot.server.openapi import build_openapi
from myspinbot.server.registry import RouteRegistry

_ACTIVE: list["SpecCheck"] = []


class SpecCheck:
    """Checks responses against ``document``: an OpenAPI 3.1 dict, or a function returning it
    (asked at the first response: the app's routes may be registered after the check exists)."""

    def __init__(self, document: Mapping[str, Any] | Callable[[], Mapping[str, Any]]):
        self._document = document
        self.problems: list[str] = []
        self.checked: Counter[str] = Counter()  # "METHOD template status" → responses checked
        self._validators: dict[str, jsonschema.Draft202012Validator] = {}
        _ACTIVE.append(self)

    @property
    def document(self) -> Mapping[str, Any]:
        if callable(self._document):
            self._document = self._document()
        return self._document

    @web.middleware
    async def middleware(self, request: web.Request, handler: Callable) -> web.StreamResponse:
        try:
            response = await handler(request)
        except web.HTTPException as exc:  # a redirect, or the router's own 404/405
            self.check(request, exc.status, exc.content_type, exc.text.encode() if exc.text else b"")
            raise
        body = response.body if isinstance(response, web.Response) and not isinstance(response, web.FileResponse) else None
        self.check(request, response.status, response.content_type, body)
        return response

    def check(self, request: web.Request, status: int, content_type: str, body: bytes | None) -> None:
        resource = request.match_info.route.resource
        if resource is None or request.method == "HEAD":
            return  # no route matched (the router's 404/405): nothing documented to check against
        template = resource.canonical
        if template.startswith(API_MIRROR + PREFIX):
            template = template[len(API_MIRROR):]
        if not (template == PREFIX or template.startswith(PREFIX + "/")):
            return  # not the pack's route (a stand-in for one of ComfyUI's)
        label = f"{request.method} {template}"
        operation = self.document["paths"].get(template, {}).get(request.method.lower())
        if operation is None:
            self.problems.append(f"{label}: the route is not in the document")
            return
        responses = operation["responses"]
        spec = responses.get(str(status)) or responses.get(f"{str(status)[0]}XX") or responses.get("default")
        if spec is None:
            self.problems.append(f"{label}: status {status} is not documented ({sorted(responses)})")
            return
        spec = self._resolve(spec)
        self.checked[f"{label} {status}"] += 1
        content = spec.get("content") or {}
        if not content:
            if body:
                self.problems.append(f"{label} {status}: a body where the document gives none")
            return
        media = next((m for m in content if m in (content_type, "*/*")), None)
        if media is None:
            self.problems.append(f"{label} {status}: content type {content_type} is not one of {sorted(content)}")
            return
        if body is None or not media.endswith("json"):
            return  # a file or a stream: its type was checked
        try:
            instance = json.loads(body)
        except ValueError:
            self.problems.append(f"{label} {status}: the body is not JSON")
            return
        errors = sorted(self._validator(content[media]["schema"]).iter_errors(instance), key=lambda e: e.path)
        if errors:
            self.problems.append(f"{label} {status}: " + "; ".join(
                f"{'/'.join(map(str, e.absolute_path)) or '<body>'}: {e.message[:300]}" for e in errors[:5]))

    def _resolve(self, spec: Mapping[str, Any]) -> Mapping[str, Any]:
        while "$ref" in spec:
            node: Any = self.document
            for part in spec["$ref"][2:].split("/"):
                node = node[part]
            spec = node
        return spec

    def _validator(self, schema: Mapping[str, Any]) -> jsonschema.Draft202012Validator:
        key = json.dumps(schema, sort_keys=True)
        if key not in self._validators:
            self._validators[key] = jsonschema.Draft202012Validator(
                {"allOf": [schema], "components": self.document["components"]})
        return self._validators[key]


SPEC_CHECK = web.AppKey("spec_check", SpecCheck)


def checked_app(registry: RouteRegistry, pipelines: Mapping[str, Any] | None = None, *, mirror: bool = False,
                middlewares: Iterable[Any] = ()) -> web.Application:
    """The app serving ``registry``'s routes (also under ``/api`` with ``mirror``, as ComfyUI
    does), every response checked against the registry's document (``pipelines``: the built-in
    ones by default); ``middlewares`` run inside the check (a guard's ``install`` appends there too)."""
    if pipelines is None:
        from myspinbot.server.pipelines import builtin_pipelines

        pipelines = builtin_pipelines()
    check = SpecCheck(build_openapi(registry, pipelines))
    app = web.Application(middlewares=[check.middleware, *middlewares])
    if mirror:
        api = web.RouteTableDef()
        for route in registry.table:
            api.route(route.method, API_MIRROR + route.path, **route.kwargs)(route.handler)
        app.add_routes(api)
    app.add_routes(registry.table)
    app[SPEC_CHECK] = check
    return app


def drain() -> list[str]:
    """The problems every check created since the last call found (the checks are forgotten)."""
    problems = [p for check in _ACTIVE for p in check.problems]
    _ACTIVE.clear()
    return problems
