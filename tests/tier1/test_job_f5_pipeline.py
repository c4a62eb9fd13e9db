"""The f5 pipeline on the job API with a fake ComfyUI host: binding, the espeak fallback and the
models preflight."""

from __future__ import annotations

import pytest

from fake_host import FakeHost, compose_app
from myspinbot.server.api_errors import ApiError
from myspinbot.server.pipelines import node_by_title


@pytest.fixture
def missing_models():
    return set()


@pytest.fixture
async def setup(aiohttp_client, tmp_path, missing_models):
    host = FakeHost(tmp_path)

    def require_models(names):
        absent = [n for n in names if n in missing_models]
        if absent:
            raise ApiError(409, "models_missing", "missing", {"missing": absent})

    api = compose_app(host, models=None)  # no model manager: the preflight is this stand-in
    api.service.require_models = require_models
    return host, await aiohttp_client(api.app)


async def upload(client, fixtures_dir, name):
    data = {"file": open(fixtures_dir / name, "rb")}
    r = await client.post("/myspinbot/assets", data=data)
    assert r.status in (200, 201), await r.text()
    return (await r.json())["asset_id"]


async def submit(client, fixtures_dir, **inputs):
    portrait = await upload(client, fixtures_dir, "portrait_astronaut.png")
    voice = await upload(client, fixtures_dir, "speech_front_left.wav")
    body = {"pipeline": "f5", "inputs": {"portrait": {"asset_id": portrait}, "voice_sample": {"asset_id": voice},
                                         "voice_transcript": "Front left", **inputs}}
    return await client.post("/myspinbot/jobs", json=body)


async def test_script_is_spoken_verbatim_in_the_cloned_voice(setup, fixtures_dir):
    host, client = setup
    r = await submit(client, fixtures_dir, script="Hello there.", seed=3)
    assert r.status == 202, await r.text()
    prompt = host.prompts[(await r.json())["id"]]
    writer = prompt[node_by_title(prompt, "Script writer")]["inputs"]
    assert writer["mode"] == "verbatim" and writer["prompt"] == "Hello there." and writer["seed"] == 3
    clone = node_by_title(prompt, "Voice clone")
    assert prompt[clone]["inputs"]["ref_text"] == "Front left" and prompt[clone]["inputs"]["seed"] == 3
    assert prompt[node_by_title(prompt, "Animate portrait")]["inputs"]["audio"] == [clone, 0]
    assert "MySpinBotSpeakEspeak" not in {n["class_type"] for n in prompt.values()}


async def test_espeak_fallback_needs_no_voice_sample_and_no_weights(setup, fixtures_dir, missing_models):
    host, client = setup
    missing_models.update({"F5TTS_v1_Base", "vocos_mel_24khz"})
    portrait = await upload(client, fixtures_dir, "portrait_astronaut.png")
    r = await client.post("/myspinbot/jobs", json={"pipeline": "f5", "inputs": {
        "portrait": {"asset_id": portrait}, "prompt": "Say hello", "speech": "espeak", "voice": "de"}})
    assert r.status == 202, await r.text()
    prompt = host.prompts[(await r.json())["id"]]
    assert prompt[node_by_title(prompt, "Script writer")]["inputs"]["mode"] == "ollama"
    speak = node_by_title(prompt, "Fallback speech")
    assert prompt[node_by_title(prompt, "Animate portrait")]["inputs"]["audio"] == [speak, 0]
    assert {"MySpinBotVoiceCloneF5", "LoadAudio"}.isdisjoint({n["class_type"] for n in prompt.values()})


async def test_missing_weights_fail_before_queueing(setup, fixtures_dir, missing_models):
    host, client = setup
    missing_models.add("F5TTS_v1_Base")
    r = await submit(client, fixtures_dir, script="Hello there.")
    assert r.status == 409
    assert (await r.json())["error"]["details"]["missing"] == ["F5TTS_v1_Base"]
    assert host.prompts == {}


@pytest.mark.parametrize("inputs, code", [
    ({}, "missing_script"),
    ({"script": "a", "prompt": "b"}, "conflicting_inputs"),
    ({"script": "a", "speech": "robot"}, "invalid_parameter"),
    ({"script": "a", "voice_transcript": ""}, "missing_voice_sample"),
])
async def test_bad_f5_inputs(setup, fixtures_dir, inputs, code):
    host, client = setup
    r = await submit(client, fixtures_dir, **inputs)
    assert r.status == 422 and (await r.json())["error"]["code"] == code
