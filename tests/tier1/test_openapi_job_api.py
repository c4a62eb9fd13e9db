"""``GET /myspinbot/openapi.json``: generated from the route registry, it covers exactly the
routes the production composition serves (``server.app.compose`` on an app mirrored under
``/api`` as ComfyUI does), its open operations are exactly the ones the guard opens, it is a
valid OpenAPI 3.1 document, and real responses validate against its schemas (tier 1, fake host).
Every response of a composed app is checked too (``openapi_check``)."""

from __future__ import annotations

import pytest
from aiohttp import web

from fake_host import compose_app, lite_body, upload_inputs
from myspinbot.server.contract.endpoints import ENDPOINTS, OPEN_PATHS
from myspinbot.server.openapi import build_openapi
from myspinbot.server.pipelines import builtin_pipelines, node_by_title
from myspinbot.server.registry import RouteRegistry
from myspinbot.server.routes import add_routes
from myspinbot.server.urls import PREFIX
from openapi_check import SPEC_CHECK, checked_app

HTTP_METHODS = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}


def documented_routes(spec) -> set[tuple[str, str]]:
    return {(method, path) for path, item in spec["paths"].items() for method in item if method in HTTP_METHODS}


def served_routes(app: web.Application) -> set[tuple[str, str]]:
    """(method, template) of every route of the app under the prefix, the /api mirror folded in;
    HEAD is left out (aiohttp adds it to every GET)."""
    found = set()
    for route in app.router.routes():
        template = route.resource.canonical if route.resource is not None else ""
        bare = template[len("/api"):] if template.startswith("/api/") else template
        if (bare == PREFIX or bare.startswith(PREFIX + "/")) and route.method != "HEAD":
            found.add((route.method.lower(), bare))
    return found


@pytest.fixture
def production(host, clock):
    """The job API as ``plugin.attach`` composes it (``server.app.compose``), ComfyUI listening
    beyond loopback (the token required), every route mirrored under ``/api`` as ComfyUI does."""
    composed = compose_app(host, clock=clock, listen="0.0.0.0")
    yield composed.app, composed.access, composed.registry
    composed.store.close()


async def test_the_document_covers_the_production_route_table_exactly(production, aiohttp_client):
    app, access, registry = production
    c = await aiohttp_client(app)
    r = await c.get("/myspinbot/openapi.json", headers={"Authorization": f"Bearer {access.auth.token.value}"})
    assert r.status == 200
    spec = await r.json()
    assert spec["openapi"].startswith("3.1")
    served, documented = served_routes(app), documented_routes(spec)
    assert served - documented == set(), "served routes missing from /openapi.json"
    assert documented - served == set(), "/openapi.json documents routes that are not served"
    # the list, and every route the contract knows, is served
    assert {p for _, p in served} >= {f"{PREFIX}{p}" for p in (
        "/models", "/models/{name}", "/models/{name}/download", "/capabilities", "/session", "/", "/page/{file}",
        "/jobs", "/assets", "/metrics", "/webhooks/secret", "/health", "/pipelines", "/openapi.json")}
    assert {(e.method.lower(), e.path) for e in ENDPOINTS} == documented
    # open operations: exactly the guard's open routes, and only those lack the 401
    open_documented = {path for path, item in spec["paths"].items() for op in item.values() if op.get("security") == []}
    assert open_documented == set(OPEN_PATHS) == set(access.guard.open_routes)
    for path, item in spec["paths"].items():
        for method, operation in item.items():
            if path not in OPEN_PATHS:
                assert operation["responses"]["401"] == {"$ref": "#/components/responses/Unauthorized"}, (method, path)
            assert operation["operationId"] and operation["summary"] and operation["tags"], (method, path)
            for name in [p for p in path.split("/") if p.startswith("{")]:
                assert any(p.get("name") == name[1:-1] and p.get("in") == "path"
                           for p in operation.get("parameters", [])), (method, path, name)
    ids = [op["operationId"] for item in spec["paths"].values() for op in item.values()]
    assert len(ids) == len(set(ids)) == len(registry)


async def test_the_job_routes_alone_document_themselves(aiohttp_client, service):
    """A registry holding only ``add_routes``' routes documents those and nothing else."""
    registry = RouteRegistry()
    add_routes(registry, service)
    client = await aiohttp_client(checked_app(registry, service.pipelines))
    spec = await (await client.get("/myspinbot/openapi.json")).json()
    assert documented_routes(spec) == {(e.method.lower(), e.path) for e in registry.endpoints()}
    assert f"{PREFIX}/models" not in spec["paths"] and f"{PREFIX}/jobs" in spec["paths"]


def test_the_document_is_valid_openapi_and_every_ref_resolves():
    spec = build_openapi(ENDPOINTS, builtin_pipelines())
    validator = pytest.importorskip("openapi_spec_validator")
    validator.validate(spec)

    def refs(node):
        if isinstance(node, dict):
            if "$ref" in node:
                yield node["$ref"]
            for value in node.values():
                yield from refs(value)
        elif isinstance(node, list):
            for value in node:
                yield from refs(value)

    for ref in set(refs(spec)):
        assert ref.startswith("#/")
        target = spec
        for part in ref[2:].split("/"):
            assert part in target, ref
            target = target[part]


def test_the_committed_document_is_current():
    """``openapi.json`` (the contract as reviewed) is what the code generates: a change of the
    contract is a change of that file, made with ``python scripts/export_openapi.py``."""
    import runpy

    from myspinbot.paths import REPO_DIR

    export = runpy.run_path(str(REPO_DIR / "scripts" / "export_openapi.py"))
    committed = (REPO_DIR / "openapi.json").read_text(encoding="utf-8")
    assert committed == export["document_text"](), "openapi.json is out of date: run python scripts/export_openapi.py"


def test_registering_a_route_twice_is_refused():
    registry = RouteRegistry()
    endpoint = ENDPOINTS[0]
    registry.add(endpoint, lambda request: None)
    with pytest.raises(ValueError):
        registry.add(endpoint, lambda request: None)


async def test_the_response_check_catches_an_undocumented_body_and_status(aiohttp_client):
    """The check every tier-1 client runs does catch a wrong body, status and content type."""
    import openapi_check
    from myspinbot.server.contract.endpoints_service import GET_METRICS, HEALTH

    registry = RouteRegistry()

    @registry.route(HEALTH)
    async def wrong_health(request):
        return web.json_response({"status": "fine"}, status=200 if "ok" in request.query else 201)

    @registry.route(GET_METRICS)
    async def wrong_metrics(request):
        return web.json_response({})

    app = checked_app(registry, builtin_pipelines())
    c = await aiohttp_client(app)
    await c.get(f"{PREFIX}/health?ok")
    await c.get(f"{PREFIX}/health")
    await c.get(f"{PREFIX}/metrics")
    problems = openapi_check.drain()
    assert len(problems) == 3, problems
    assert "'ok' was expected" in problems[0] and "'pipelines' is a required property" in problems[0]
    assert "status 201 is not documented" in problems[1]
    assert "content type application/json" in problems[2]
    assert app[SPEC_CHECK].checked


@pytest.fixture
def validate():
    jsonschema = pytest.importorskip("jsonschema")
    spec = build_openapi(ENDPOINTS, builtin_pipelines())
    for schema in spec["components"]["schemas"].values():
        jsonschema.Draft202012Validator.check_schema(schema)

    def check(instance, name: str, valid: bool = True):
        schema = {"$ref": f"#/components/schemas/{name}", "components": spec["components"]}
        errors = list(jsonschema.Draft202012Validator(schema).iter_errors(instance))
        assert (not errors) == valid, [e.message for e in errors] or f"{instance} should not match {name}"

    return check


async def test_real_responses_match_the_schemas(client, host, validate, fixtures_dir):
    portrait, audio = await upload_inputs(client, fixtures_dir)
    asset = await (await client.get(f"/myspinbot/assets/{portrait}")).json()
    validate(asset, "Asset")
    validate(await (await client.get("/myspinbot/health")).json(), "Health")

    body = lite_body(portrait, audio, fps=30)
    validate(body, "JobSubmission")
    validate({**body, "priority": 1}, "JobSubmission", valid=False)
    validate(lite_body("../etc/passwd", audio), "JobSubmission", valid=False)

    queued = await (await client.post("/myspinbot/jobs", json=body)).json()
    validate(queued, "Job")
    job_id = queued["id"]
    prompt = host.prompts[job_id]
    host.emit("execution_start", prompt_id=job_id)
    host.emit("executing", node=node_by_title(prompt, "Animate portrait"), prompt_id=job_id)
    validate(await (await client.get(queued["urls"]["self"])).json(), "Job")
    host.run_success(job_id, {node_by_title(prompt, "Save video"): b"mp4"})
    done = await (await client.get(queued["urls"]["self"])).json()
    assert done["status"] == "succeeded" and done["outputs"]
    validate(done, "Job")

    failed = await (await client.post("/myspinbot/jobs", json=lite_body(portrait, audio, seed=1))).json()
    host.emit("execution_error", prompt_id=failed["id"], exception_message="[no_face_detected] no face")
    host.emit("executing", node=None, prompt_id=failed["id"])
    failed = await (await client.get(failed["urls"]["self"])).json()
    assert failed["error"]["code"] == "no_face_detected"
    validate(failed, "Job")

    canceled = await (await client.post("/myspinbot/jobs", json=lite_body(portrait, audio, seed=2))).json()
    validate(await (await client.post(canceled["urls"]["cancel"])).json(), "Job")

    validate(await (await client.get("/myspinbot/jobs?limit=2")).json(), "JobsListResponse")
    error = await (await client.get("/myspinbot/jobs?limit=0")).json()
    validate(error, "Error")
    validate(queued, "Error", valid=False)
