"""``GET /myspinbot/openapi.json``: the spec covers exactly the routes ``add_routes`` registers, and
real responses validate against its schemas (tier 1, fake host)."""

from __future__ import annotations

import pytest
from aiohttp import web

from fake_host import lite_body, upload_inputs  # noqa: F401
from myspinbot.server.openapi import build_openapi
from myspinbot.server.pipelines import builtin_pipelines, node_by_title
from myspinbot.server.routes import add_routes

HTTP_METHODS = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}


def registered_routes(service) -> set[tuple[str, str]]:
    routes = web.RouteTableDef()
    add_routes(routes, service)
    return {(route.method.lower(), route.path) for route in routes}


def documented_routes(spec) -> set[tuple[str, str]]:
    return {(method, path) for path, item in spec["paths"].items() for method in item if method in HTTP_METHODS}


async def test_spec_is_served_and_covers_every_route_and_nothing_else(client, service):
    r = await client.get("/myspinbot/openapi.json")
    assert r.status == 200
    spec = await r.json()
    assert spec["openapi"].startswith("3.1")
    registered, documented = registered_routes(service), documented_routes(spec)
    assert registered - documented == set(), "routes missing from openapi.py"
    assert documented - registered == set(), "openapi.py documents routes that do not exist"
    for path, item in spec["paths"].items():
        for method, operation in item.items():
            assert operation["operationId"] and operation["responses"], (method, path)
            for name in [p for p in path.split("/") if p.startswith("{")]:
                assert any(p.get("name") == name[1:-1] and p.get("in") == "path" for p in operation.get("parameters", [])), (method, path, name)
    ids = [op["operationId"] for item in spec["paths"].values() for op in item.values()]
    assert len(ids) == len(set(ids))


def test_every_ref_resolves():
    spec = build_openapi(builtin_pipelines())

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


@pytest.fixture
def validate():
    jsonschema = pytest.importorskip("jsonschema")
    spec = build_openapi(builtin_pipelines())
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

    validate(await (await client.get("/myspinbot/jobs?limit=2")).json(), "JobList")
    error = await (await client.get("/myspinbot/jobs?limit=0")).json()
    validate(error, "Error")
    validate(queued, "Error", valid=False)
