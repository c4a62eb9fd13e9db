"""``/myspinbot/openapi.json`` documents exactly the routes a real ComfyUI serves for the pack, in
both load modes (tier 2).

Two independent looks at what ComfyUI serves:
- its live aiohttp router, listed by a test-only node pack loaded beside ours
  (``comfy_debug_nodes/``, through ``--extra-model-paths-config``): every route under
  ``/myspinbot`` and its ``/api`` mirror, HEAD left out (aiohttp adds one to every GET);
- a request to every documented method and path (well-formed path parameters): none may be
  the router's own 404/405, every answer has a documented status, and a JSON body validates
  against the documented schema.
"""

from __future__ import annotations

import re
from pathlib import Path

import jsonschema
import pytest
import requests
from comfy_process import ComfyProcess, comfyui_dir  # scripts/, on the path through conftest.py

DEBUG_NODES = Path(__file__).resolve().parent / "comfy_debug_nodes"
PREFIX = "/myspinbot"
JOB_UUID = "00000000-0000-4000-8000-000000000000"
SAMPLES = {"job_id": JOB_UUID, "asset_id": "0" * 64, "name": "video", "file": "app.js", "profile_id": JOB_UUID}


@pytest.fixture(scope="module", params=["clone", "base-directory"])
def comfy(request, tmp_path_factory):
    """ComfyUI in each load mode, with the route-listing test pack loaded beside the pack."""
    scratch = tmp_path_factory.mktemp(f"comfy-routes-{request.param}")
    config = scratch / "route_dump_paths.yaml"
    config.write_text(f"myspinbot_tests:\n  custom_nodes: {DEBUG_NODES}\n")
    proc = ComfyProcess(request.param, scratch, comfyui_dir(), env={"OLLAMA_HOST": "http://127.0.0.1:9"},
                        extra_args=("--extra-model-paths-config", str(config))).start()
    yield proc
    proc.stop()


def served(comfy) -> tuple[set[tuple[str, str]], set[tuple[str, str]]]:
    """(method, template) of the pack's routes in ComfyUI's router: plain, and under /api (folded)."""
    routes = requests.get(comfy.url + "/myspinbot-test/routes", timeout=30).json()
    plain, mirrored = set(), set()
    for route in routes:
        method, path = route["method"].lower(), route["path"]
        if method == "head":
            continue
        bare = path[len("/api"):] if path.startswith("/api/") else path
        if bare == PREFIX or bare.startswith(PREFIX + "/"):
            (mirrored if path.startswith("/api/") else plain).add((method, bare))
    return plain, mirrored


def test_the_document_matches_comfyuis_live_route_table(comfy):
    r = requests.get(comfy.url + PREFIX + "/openapi.json", timeout=30)
    assert r.status_code == 200, comfy.log_tail()
    spec = r.json()
    documented = {(method, path) for path, item in spec["paths"].items() for method in item}
    plain, mirrored = served(comfy)
    assert plain - documented == set(), "ComfyUI serves routes /openapi.json leaves out"
    assert documented - plain == set(), "/openapi.json documents routes ComfyUI does not serve"
    assert mirrored == plain, "the /api mirror differs"
    assert {path for _, path in documented} >= {f"{PREFIX}/models/{{name}}/download", f"{PREFIX}/capabilities",
                                                f"{PREFIX}/session", f"{PREFIX}/page/{{file}}"}


def concrete(template: str) -> str:
    return re.sub(r"\{(\w+)\}", lambda m: SAMPLES[m.group(1)], template)


def resolve(spec: dict, node: dict) -> dict:
    while "$ref" in node:
        target = spec
        for part in node["$ref"][2:].split("/"):
            target = target[part]
        node = target
    return node


@pytest.mark.parametrize("prefix", ["", "/api"])
def test_every_documented_route_answers_as_documented(comfy, prefix):
    spec = requests.get(comfy.url + PREFIX + "/openapi.json", timeout=30).json()
    for template, item in spec["paths"].items():
        for method, operation in item.items():
            r = requests.request(method.upper(), comfy.url + prefix + concrete(template), timeout=30,
                                 allow_redirects=False, stream=method == "get" and template.endswith("/events"))
            label = f"{method.upper()} {prefix}{template} → {r.status_code}"
            router_miss = r.status_code in (404, 405) and r.headers.get("Content-Type", "").startswith("text/plain")
            assert not router_miss, label
            documented = operation["responses"].get(str(r.status_code))
            assert documented is not None, f"{label}: not a documented status"
            content = resolve(spec, documented).get("content", {})
            if r.headers.get("Content-Type", "").startswith("application/json"):
                schema = {"allOf": [content["application/json"]["schema"]], "components": spec["components"]}
                errors = [e.message for e in jsonschema.Draft202012Validator(schema).iter_errors(r.json())]
                assert not errors, f"{label}: {errors[:3]}"
            r.close()
