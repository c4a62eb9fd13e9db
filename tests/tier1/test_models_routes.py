"""The model routes on a plain aiohttp app: listing, background download against the hub
stand-in with progress, error envelopes, capabilities and the job preflight helper."""

from __future__ import annotations

import asyncio
import threading

import pytest

from myspinbot.models.locate import ModelLocator, models_dir_folder_dirs
from myspinbot.models.manager import ModelManager
from myspinbot.models.manifest import load_manifest, parse_manifest, pipeline_models
from myspinbot.server.api_errors import ApiError
from myspinbot.server.models_routes import add_model_routes, ensure_pipeline_models
from myspinbot.server.registry import RouteRegistry
from openapi_check import checked_app
from test_models import CONFIG, REPO, WEIGHTS, tiny_manifest
from test_models_hub_standin import hub  # noqa: F401  (fixture)

NODES = ["MySpinBotSpeakEspeak", "MySpinBotAnimatePortraitLite", "MySpinBotVoiceCloneF5"]


@pytest.fixture
def manifest():
    return {**load_manifest(), **parse_manifest(tiny_manifest())}


@pytest.fixture
def models(tmp_path):
    return tmp_path / "models"


@pytest.fixture
def manager(manifest, models):
    return ModelManager(ModelLocator(models_dir_folder_dirs(models), manifest), manifest, models)


@pytest.fixture
def pipelines(manifest):
    return pipeline_models(manifest, ["lite", "f5", "tiny"])


@pytest.fixture
async def client(aiohttp_client, manager, pipelines):
    registry = RouteRegistry()
    add_model_routes(registry, manager, nodes=NODES, pipeline_models=pipelines,
                     engines=lambda: {"espeak": {"available": True}})
    return await aiohttp_client(checked_app(registry))


@pytest.fixture
def tiny_hub(hub):  # noqa: F811
    hub.add(REPO, "ckpt/weights.safetensors", WEIGHTS)
    hub.add(REPO, "config.json", CONFIG, lfs=False)
    return hub


async def test_list_models_reports_licences_status_and_urls(client, models):
    r = await client.get("/myspinbot/models")
    assert r.status == 200
    body = await r.json()
    by_name = {m["name"]: m for m in body["models"]}
    from myspinbot.models.manifest import load_manifest

    assert list(by_name) == [*load_manifest(), "TinyTTS"]  # the real manifest, in order, then the test's entry
    f5 = by_name["F5TTS_v1_Base"]
    assert f5["non_commercial"] is True and f5["licence"] == "CC-BY-NC-4.0" and "non-commercial" in f5["licence_notice"]
    assert f5["used_by"] == ["MySpinBotVoiceCloneF5", "f5"] and f5["size_bytes"] == 1348435761 + 13800
    assert f5["status"]["state"] == "missing" and f5["status"]["missing"] == ["model_1250000.safetensors", "vocab.txt"]
    assert f5["status"]["directory"] == str(models / "f5_tts" / "F5TTS_v1_Base")
    assert f5["download"] is None and f5["fetch_command"] == "python install.py --models F5TTS_v1_Base"
    assert f5["urls"] == {"self": "/myspinbot/models/F5TTS_v1_Base", "download": "/myspinbot/models/F5TTS_v1_Base/download"}
    assert by_name["vocos_mel_24khz"]["non_commercial"] is False
    assert body["folders"]["f5_tts"]["directories"] == [str(models / "f5_tts")]


async def test_download_runs_in_background_with_progress(client, manager, tiny_hub, models, monkeypatch):
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "DOWNLOAD_CHUNK_SIZE", 64 * 1024)
    tiny_hub.gate = threading.Event()  # the stand-in holds the bytes until the test lets them go
    r = await client.post("/myspinbot/models/TinyTTS/download")
    assert r.status == 202, await r.text()
    body = await r.json()
    assert body["status"] == "downloading" and body["urls"]["progress"] == "/myspinbot/models/TinyTTS"
    assert r.headers["Location"] == "/myspinbot/models/TinyTTS"
    assert body["non_commercial"] is True and "non-commercial" in body["licence_notice"]

    r = await client.post("/myspinbot/models/TinyTTS/download")
    assert r.status == 409
    assert (await r.json())["error"]["code"] == "download_in_progress"

    listed = {m["name"]: m for m in (await (await client.get("/myspinbot/models")).json())["models"]}
    running = listed["TinyTTS"]["download"]
    assert running["status"] in ("queued", "running") and running["total_bytes"] == len(WEIGHTS) + len(CONFIG)
    assert running["done_bytes"] < running["total_bytes"]

    tiny_hub.gate.set()
    seen = set()
    for _ in range(200):
        model = await (await client.get("/myspinbot/models/TinyTTS")).json()
        seen.add(model["download"]["done_bytes"])
        if model["download"]["status"] == "done":
            break
        await asyncio.sleep(0.02)
    download = model["download"]
    assert download["status"] == "done" and download["fraction"] == 1.0 and download["error"] is None
    assert download["done_bytes"] == download["total_bytes"] == len(WEIGHTS) + len(CONFIG)
    assert model["status"]["state"] == "present" and [f["sha256"] for f in model["status"]["files"]] == ["match", "match"]
    assert (models / "tiny_tts" / "TinyTTS_v1" / "weights.safetensors").read_bytes() == WEIGHTS

    r = await client.post("/myspinbot/models/TinyTTS/download")
    assert r.status == 200 and (await r.json())["status"] == "present"


async def test_failed_download_shows_the_error_code(client, manager, hub, models):  # noqa: F811
    hub.add(REPO, "ckpt/weights.safetensors", WEIGHTS)
    hub.add(REPO, "config.json", b"not the config", lfs=False)
    r = await client.post("/myspinbot/models/TinyTTS/download")
    assert r.status == 202
    download = (await manager.wait("TinyTTS")).to_json()
    assert download["status"] == "failed" and download["error"]["code"] == "model_checksum_mismatch"
    model = await (await client.get("/myspinbot/models/TinyTTS")).json()
    assert model["download"]["error"]["code"] == "model_checksum_mismatch"
    assert not models.exists() or list(models.rglob("*")) == []


async def test_unknown_model_is_a_404_envelope(client):
    for method, path in (("POST", "/myspinbot/models/nope/download"), ("GET", "/myspinbot/models/nope")):
        r = await client.request(method, path)
        assert r.status == 404
        error = (await r.json())["error"]
        assert error["code"] == "unknown_model" and "nope" in error["message"] and "F5TTS_v1_Base" in error["details"]["models"]


async def test_offline_download_is_a_503_envelope_listing_the_files(client, models, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    r = await client.post("/myspinbot/models/F5TTS_v1_Base/download")
    assert r.status == 503
    error = (await r.json())["error"]
    assert error["code"] == "offline"
    assert str(models / "f5_tts" / "F5TTS_v1_Base" / "model_1250000.safetensors") in error["message"]
    assert error["details"]["missing"] == ["model_1250000.safetensors", "vocab.txt"]
    assert "non-commercial" in error["message"]


async def test_hand_placed_conflict_is_a_409(client, models):
    model_dir = models / "tiny_tts" / "TinyTTS_v1"
    model_dir.mkdir(parents=True)
    (model_dir / "weights.safetensors").write_bytes(b"custom")
    r = await client.post("/myspinbot/models/TinyTTS/download")
    assert r.status == 409 and (await r.json())["error"]["code"] == "model_conflict"


async def test_capabilities_report_pipelines_models_and_device(client, models):
    model_dir = models / "tiny_tts" / "TinyTTS_v1"
    model_dir.mkdir(parents=True)
    (model_dir / "weights.safetensors").write_bytes(b"a custom fine-tune")
    (model_dir / "config.json").write_bytes(CONFIG)
    r = await client.get("/myspinbot/capabilities")
    assert r.status == 200
    body = await r.json()
    assert body["nodes"] == NODES and body["engines"] == {"espeak": {"available": True}}
    pipes = body["pipelines"]
    assert pipes["lite"]["ready"] is True and pipes["lite"]["missing"] == []
    assert pipes["f5"]["ready"] is False and pipes["f5"]["missing"] == ["F5TTS_v1_Base", "vocos_mel_24khz"]
    assert pipes["f5"]["errors"][0]["code"] == "models_missing"
    assert pipes["tiny"]["ready"] is True and pipes["tiny"]["warnings"][0]["code"] == "model_modified"
    f5 = body["models"]["F5TTS_v1_Base"]
    assert f5["present"] is False and f5["non_commercial"] is True and f5["expected_size_bytes"] == 1348435761 + 13800
    assert body["models"]["TinyTTS"]["state"] == "modified"
    device = body["device"]
    assert device["device"] in ("cpu", "cuda", "mps") and device["memory"]["total_bytes"] > 0
    assert body["offline"] is False


async def test_api_prefix_is_mirrored_in_urls(aiohttp_client, manager):
    registry = RouteRegistry()
    add_model_routes(registry, manager)
    client = await aiohttp_client(checked_app(registry, mirror=True))  # what ComfyUI does: every route again under /api
    body = await (await client.get("/api/myspinbot/models")).json()
    assert body["models"][0]["urls"]["self"] == "/api/myspinbot/models/F5TTS_v1_Base"


def test_job_preflight_helper_fails_before_queueing(manager, pipelines):
    ensure_pipeline_models(manager, "lite", pipelines)  # weightless: nothing needed
    with pytest.raises(ApiError) as info:
        ensure_pipeline_models(manager, "f5", pipelines)
    err = info.value
    assert err.status == 409 and err.code == "models_missing"
    assert err.details["missing"] == ["F5TTS_v1_Base", "vocos_mel_24khz"]
    assert "python install.py --models F5TTS_v1_Base vocos_mel_24khz" in err.message
