"""The UI workflows' ``properties.models`` (ComfyUI's missing-model dialog) agree with the manifest.

Every download a workflow offers is a manifest file: same file name, same ``models/`` folder,
and a Hugging Face URL built from the manifest's repo, revision (or ``main``) and path. Every
model a pipeline needs is offered by its UI workflow.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from myspinbot.models.manifest import load_manifest, models_used_by

REPO = Path(__file__).resolve().parents[2]
UI_WORKFLOWS = sorted((REPO / "workflows").glob("*.json"))


def _offered(path: Path) -> list[dict]:
    workflow = json.loads(path.read_text())
    return [m for node in workflow["nodes"] for m in node.get("properties", {}).get("models", [])]


def _manifest_files() -> dict[str, tuple]:
    return {f.filename: (entry, f) for entry in load_manifest().values() for f in entry.files}


@pytest.mark.parametrize("path", UI_WORKFLOWS, ids=lambda p: p.name)
def test_offered_downloads_are_manifest_files(path):
    files = _manifest_files()
    for model in _offered(path):
        assert model["name"] in files, f"{path.name}: {model['name']} is not in the manifest"
        entry, file = files[model["name"]]
        assert model["directory"] == entry.folder and not entry.subdir, model["name"]
        allowed = {f"https://huggingface.co/{entry.repo_id}/resolve/{rev}/{file.repo_path}"
                   for rev in filter(None, ("main", entry.revision))}
        assert model["url"] in allowed, (model["name"], model["url"], allowed)


def test_infinitetalk_workflow_offers_every_model_its_pipeline_needs():
    offered = {m["name"] for m in _offered(REPO / "workflows" / "myspinbot_infinitetalk.json")}
    manifest = load_manifest()
    for name in models_used_by(manifest, "infinitetalk"):
        assert {f.filename for f in manifest[name].files} <= offered, name


def test_scene_workflow_offers_every_model_its_pipeline_needs():
    offered = {m["name"] for m in _offered(REPO / "workflows" / "myspinbot_scene.json")}
    manifest = load_manifest()
    needed = models_used_by(manifest, "scene")
    assert {"sd15_pruned_emaonly_fp16", "svd_img2vid_xt", "wav2lip_gan", "RealESRGAN_x4plus"} <= set(needed)
    for name in needed:
        assert {f.filename for f in manifest[name].files} <= offered, name


def test_sadtalker_workflow_offers_every_model_its_pipeline_needs():
    offered = {m["name"] for m in _offered(REPO / "workflows" / "myspinbot_sadtalker.json")}
    manifest = load_manifest()
    needed = models_used_by(manifest, "sadtalker")
    assert {"sadtalker_256", "sadtalker_512", "sadtalker_mapping", "RealESRGAN_x4plus"} <= set(needed)
    for name in needed:
        assert {f.filename for f in manifest[name].files} <= offered, name
