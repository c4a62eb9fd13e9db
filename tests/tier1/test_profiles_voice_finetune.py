"""A profile's optional F5-TTS voice fine-tune over the composed job API (fake ComfyUI):
``voice_clips`` + ``voice_clip_transcripts`` on POST /profiles, the ``fine_tune_voice`` option
(refused under 30 s of clips), the train_profile prompt's "Fine-tune voice" node, the profile's
``voice_model`` once the job succeeds, and an f5 job with ``profile=<id>`` speaking with it.
The clips are the real speech fixtures joined with silence (about 16 s each)."""

from __future__ import annotations

import io
import json
import tempfile
from pathlib import Path

import aiohttp
import numpy as np
import pytest

from fake_host import place_models
from myspinbot.server.pipelines import F5_MODELS, node_by_title
from test_profiles_api import TINY, photos, voice_wav


def clip_wav(fixtures_dir, repeats: int) -> bytes:
    """'Front left', 'Front right' and 0.4 s of silence, ``repeats`` times (3.4 s each round)."""
    from myspinbot.speech.audio_io import load_audio, write_wav

    left, rate = load_audio(fixtures_dir / "speech_front_left.wav")
    right, _ = load_audio(fixtures_dir / "speech_front_right.wav")
    gap = np.zeros((1, int(0.4 * rate)), np.float32)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "clip.wav"
        write_wav(path, np.concatenate([left, gap, right, gap] * repeats, axis=1), rate)
        return path.read_bytes()


def form(fixtures_dir, clips: list[bytes], transcripts, **fields) -> aiohttp.FormData:
    data = aiohttp.FormData()
    data.add_field("name", "Eileen")
    for i, (filename, image) in enumerate(photos(fixtures_dir), start=1):
        data.add_field(f"image_{i}", io.BytesIO(image), filename=filename, content_type="image/png")
    data.add_field("voice_sample", io.BytesIO(voice_wav(fixtures_dir)), filename="voice.wav", content_type="audio/wav")
    data.add_field("voice_transcript", "Front left. Front right. Front left.")
    for i, clip in enumerate(clips, start=1):
        data.add_field(f"voice_clip_{i}", io.BytesIO(clip), filename=f"take{i}.wav", content_type="audio/wav")
    if transcripts is not None:
        data.add_field("voice_clip_transcripts", json.dumps(transcripts))
    for key, value in {"checkpoint": TINY, "steps": "3", "rank": "4", "resolution": "64", **fields}.items():
        data.add_field(key, value)
    return data


def said(repeats: int) -> str:
    return " ".join(["Front left. Front right."] * repeats)


async def test_fine_tuned_voice_is_trained_kept_and_used_by_f5_jobs(client, host, fixtures_dir):
    clip = clip_wav(fixtures_dir, 5)  # 17 s; two clips: 34 s
    place_models(host, F5_MODELS)  # the fine-tune's preflight
    r = await client.post("/myspinbot/profiles", data=form(fixtures_dir, [clip, clip], [said(5), said(5)],
                                                           fine_tune_voice="true", voice_steps="7"))
    assert r.status == 202, await r.text()
    profile = await r.json()
    assert profile["voice_model"] is None and profile["options"]["fine_tune_voice"] is True
    folder = host.input_dir / "myspinbot" / "profiles" / profile["id"] / "voice_clips"
    assert (folder / "metadata.csv").read_text().splitlines() == [f"clip_001.wav|{said(5)}", f"clip_002.wav|{said(5)}"]

    job = await (await client.get(profile["urls"]["training_job"])).json()
    prompt = host.prompts[job["id"]]
    tune = prompt[node_by_title(prompt, "Fine-tune voice")]
    assert tune["class_type"] == "MySpinBotFineTuneF5Voice"
    assert tune["inputs"]["folder"] == f"myspinbot/profiles/{profile['id']}/voice_clips"
    assert tune["inputs"]["output_name"] == f"profile_{profile['id']}"
    assert tune["inputs"]["steps"] == 7 and tune["inputs"]["resume"] is False

    host.run_success(job["id"], {node_by_title(prompt, "Save reference"): b"reference crop"})
    ready = await (await client.get(profile["urls"]["self"])).json()
    assert ready["status"] == "ready" and ready["voice_model"] == f"myspinbot/profile_{profile['id']}"

    r = await client.post("/myspinbot/jobs", json={"pipeline": "f5", "inputs": {"profile": profile["id"], "script": "Hi."}})
    assert r.status == 202, await r.text()
    p5 = host.prompts[(await r.json())["id"]]
    clone = p5[node_by_title(p5, "Voice clone")]["inputs"]
    assert clone["model"] == f"myspinbot/profile_{profile['id']}"
    assert clone["ref_text"] == "Front left. Front right. Front left."  # F5 still clones from the reference clip
    # a client's own model choice wins over the profile's
    r = await client.post("/myspinbot/jobs", json={"pipeline": "f5", "inputs": {
        "profile": profile["id"], "script": "Hi.", "voice_model": "F5TTS_v1_Base"}})
    assert r.status == 202, await r.text()
    p5 = host.prompts[(await r.json())["id"]]
    assert p5[node_by_title(p5, "Voice clone")]["inputs"]["model"] == "F5TTS_v1_Base"


async def test_without_fine_tune_voice_the_clips_are_kept_but_not_trained(client, host, fixtures_dir):
    clip = clip_wav(fixtures_dir, 2)
    r = await client.post("/myspinbot/profiles", data=form(fixtures_dir, [clip], [said(2)]))
    assert r.status == 202, await r.text()
    profile = await r.json()
    prompt = host.prompts[profile["training_job_id"]]
    assert all(node["class_type"] != "MySpinBotFineTuneF5Voice" for node in prompt.values())
    host.run_success(profile["training_job_id"], {node_by_title(prompt, "Save reference"): b"crop"})
    ready = await (await client.get(profile["urls"]["self"])).json()
    assert ready["status"] == "ready" and ready["voice_model"] is None
    # the clips were kept: training again with fine_tune_voice submits the fine-tune
    place_models(host, F5_MODELS)
    r = await client.post(f"{profile['urls']['self']}/train", json={"options": {"fine_tune_voice": True}})
    assert r.status == 202, await r.text()
    retrain = host.prompts[(await r.json())["training_job_id"]]
    assert retrain[node_by_title(retrain, "Fine-tune voice")]["inputs"]["output_name"] == f"profile_{profile['id']}"


async def test_bad_voice_clip_submissions_are_refused_and_nothing_is_kept(client, host, fixtures_dir):
    short = clip_wav(fixtures_dir, 2)  # 7 s
    cases = [
        (form(fixtures_dir, [short, short], [said(2), said(2)], fine_tune_voice="true"), "voice_clips_too_short"),
        (form(fixtures_dir, [], None, fine_tune_voice="true"), "missing_voice_clips"),
        (form(fixtures_dir, [short], [said(2), "extra"]), "invalid_parameter"),
        (form(fixtures_dir, [short], None), "invalid_parameter"),
        (form(fixtures_dir, [short], [" "]), "invalid_parameter"),
        (form(fixtures_dir, [clip_wav(fixtures_dir, 10)], [said(10)]), "invalid_voice_clip"),  # 34 s: over 30 s
        (form(fixtures_dir, [b"not audio at all"], ["Hello."]), "invalid_voice_clip"),
    ]
    for data, code in cases:
        r = await client.post("/myspinbot/profiles", data=data)
        body = await r.json()
        assert r.status == 422 and body["error"]["code"] == code, body
    assert (await (await client.get("/myspinbot/profiles")).json())["profiles"] == []
    profiles_dir = host.input_dir / "myspinbot" / "profiles"
    assert not profiles_dir.exists() or not any(profiles_dir.iterdir())
    r = await client.post("/myspinbot/jobs", json={"pipeline": "f5", "inputs": {
        "script": "Hi.", "speech": "espeak", "voice_model": "../../etc", "portrait": "x.png"}})
    assert r.status == 422


async def test_json_submission_takes_clip_assets(client, host, fixtures_dir):
    async def upload(data: bytes, filename: str, content_type: str) -> str:
        body = aiohttp.FormData()
        body.add_field("file", io.BytesIO(data), filename=filename, content_type=content_type)
        r = await client.post("/myspinbot/assets", data=body)
        assert r.status in (200, 201), await r.text()
        return (await r.json())["asset_id"]

    place_models(host, F5_MODELS)
    images = [await upload(data, name, "image/png") for name, data in photos(fixtures_dir)]
    clip = await upload(clip_wav(fixtures_dir, 5), "take.wav", "audio/wav")
    other = await upload(clip_wav(fixtures_dir, 4), "take2.wav", "audio/wav")
    r = await client.post("/myspinbot/profiles", json={
        "name": "Eileen", "images": images, "voice_clips": [clip, other],
        "voice_clip_transcripts": [said(5), said(4)],
        "options": {"checkpoint": TINY, "steps": 3, "resolution": 64, "fine_tune_voice": True}})
    assert r.status == 202, await r.text()
    profile = await r.json()
    prompt = host.prompts[profile["training_job_id"]]
    assert prompt[node_by_title(prompt, "Fine-tune voice")]["inputs"]["folder"].endswith("/voice_clips")


@pytest.mark.parametrize("name", ["f5", "infinitetalk", "sadtalker", "scene"])
def test_every_voice_cloning_pipeline_takes_the_profiles_fine_tuned_voice(name):
    from myspinbot.server.api_errors import ApiError
    from myspinbot.server.pipelines import builtin_pipelines
    from myspinbot.server.pipelines.common import ProfileInputs, apply_profile

    pipeline = builtin_pipelines()[name]
    profile = ProfileInputs("p1", "v.wav", "Hi.", "ref.png", None, None, voice_model="myspinbot/profile_p1")
    raw = {"script": "Hello.", "scene": "a room"} if name == "scene" else {"script": "Hello."}
    values = apply_profile(pipeline, raw, profile)
    assert values["voice_model"] == "myspinbot/profile_p1"
    assert apply_profile(pipeline, {"script": "Hello.", "voice_model": "F5TTS_v1_Base"}, profile)["voice_model"] == \
        "F5TTS_v1_Base"  # the client's choice wins
    built = pipeline.build(pipeline.coerce(values), "myspinbot/x/video")
    clone = next(n for n in built.prompt.values() if n.get("_meta", {}).get("title") == "Voice clone")
    assert clone["inputs"]["model"] == "myspinbot/profile_p1"
    with pytest.raises(ApiError) as err:
        pipeline.coerce({**values, "voice_model": "../../etc"})
    assert err.value.code == "invalid_parameter"
