"""The shipped workflows agree with the nodes a real ComfyUI reports (workflow-as-test)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import requests

REPO = Path(__file__).resolve().parents[2]
UI_WORKFLOWS = sorted((REPO / "workflows").glob("*.json"))
API_WORKFLOWS = sorted((REPO / "workflows" / "api").glob("*.json"))
FRONTEND_ONLY = {"Note", "MarkdownNote", "Reroute", "PrimitiveNode"}


@pytest.fixture(scope="module")
def object_info(comfy_clone):
    return requests.get(comfy_clone.url + "/object_info", timeout=30).json()


def _inputs(info: dict) -> dict:
    return {**info["input"].get("required", {}), **info["input"].get("optional", {})}


def _check_value(spec, value, where):
    kind, opts = spec[0], (spec[1] if len(spec) > 1 else {}) or {}
    if isinstance(kind, list) or kind == "COMBO":
        options = kind if isinstance(kind, list) else opts.get("options", [])
        assert value in options, f"{where}: {value!r} not in {options[:10]}"
    elif kind in ("INT", "FLOAT"):
        assert isinstance(value, (int, float)) and not isinstance(value, bool), where
        assert opts.get("min", value) <= value <= opts.get("max", value), f"{where}: {value} out of range"
    elif kind == "BOOLEAN":
        assert isinstance(value, bool), where
    elif kind == "STRING":
        assert isinstance(value, str), where


@pytest.mark.parametrize("path", UI_WORKFLOWS, ids=lambda p: p.name)
def test_ui_workflow_matches_object_info(path, object_info):
    workflow = json.loads(path.read_text())
    nodes = {n["id"]: n for n in workflow["nodes"]}
    for node in nodes.values():
        if node["type"] in FRONTEND_ONLY:
            continue
        assert node["type"] in object_info, f"{path.name}: unknown node type {node['type']}"
        info = object_info[node["type"]]
        if node["type"].startswith("MySpinBot"):
            widgets = [name for name in info["input_order"]["required"] + info["input_order"].get("optional", [])
                       if not isinstance(_inputs(info)[name][0], str) or _inputs(info)[name][0] in ("INT", "FLOAT", "STRING", "BOOLEAN", "COMBO")]
            assert len(widgets) == len(node["widgets_values"]), f"{path.name}: {node['type']} widgets {widgets}"
            for name, value in zip(widgets, node["widgets_values"]):
                _check_value(_inputs(info)[name], value, f"{path.name}:{node['type']}.{name}")
    for link_id, origin, origin_slot, target, target_slot, link_type in workflow["links"]:
        out_type = object_info[nodes[origin]["type"]]["output"][origin_slot]
        target_input = nodes[target]["inputs"][target_slot]
        in_type = _inputs(object_info[nodes[target]["type"]])[target_input["name"]][0]
        assert out_type == link_type == in_type == target_input["type"], f"{path.name}: link {link_id}"


@pytest.mark.parametrize("path", API_WORKFLOWS, ids=lambda p: p.name)
def test_api_workflow_matches_object_info(path, object_info):
    prompt = json.loads(path.read_text())
    for node_id, node in prompt.items():
        info = object_info.get(node["class_type"])
        assert info is not None, f"{path.name}: unknown node type {node['class_type']}"
        specs = _inputs(info)
        for name, value in node["inputs"].items():
            if isinstance(value, list):
                source = prompt[value[0]]
                assert object_info[source["class_type"]]["output"][value[1]] == specs[name][0], f"{path.name}:{node_id}.{name}"
            elif name in specs and node["class_type"].startswith("MySpinBot"):
                _check_value(specs[name], value, f"{path.name}:{node_id}.{name}")
        assert node.get("_meta", {}).get("title"), f"{path.name}:{node_id} needs a title (parameters bind by title)"
