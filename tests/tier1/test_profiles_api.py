"""Character profiles over the composed job API (fake ComfyUI): POST /profiles with the real
portrait (+ a mirrored copy) and a voice made of the real speech fixtures, the train_profile
job it submits, the profile settled by that job's end (ready, or failed with a per-photo
report), an f5 job with ``profile=<id>`` and no portrait or voice, PATCH, and DELETE refused
while a job uses the profile. Every response is checked against the app's /openapi.json."""

from __future__ import annotations

import io
import tempfile
from pathlib import Path

import aiohttp
import numpy as np
from PIL import Image

from fake_host import place_models
from myspinbot.server.pipelines import F5_MODELS, node_by_title

TINY = "tiny_sd15.safetensors"  # not a manifest file: no preflight


def voice_wav(fixtures_dir) -> bytes:
    """'Front left', 0.3 s of silence, 'Front right', silence, 'Front left' (about 5 s): the real
    recordings joined, since each alone is under the 3 s a voice profile needs."""
    from myspinbot.speech.audio_io import load_audio, write_wav

    left, rate = load_audio(fixtures_dir / "speech_front_left.wav")
    right, _ = load_audio(fixtures_dir / "speech_front_right.wav")
    gap = np.zeros((1, int(0.3 * rate)), np.float32)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "voice.wav"
        write_wav(path, np.concatenate([left, gap, right, gap, left], axis=1), rate)
        return path.read_bytes()


def photos(fixtures_dir, faceless: bool = False) -> list[tuple[str, bytes]]:
    if faceless:
        flat = io.BytesIO()
        Image.new("RGB", (256, 256), (90, 120, 160)).save(flat, "PNG")
        return [("wall.png", flat.getvalue())]
    data = (fixtures_dir / "portrait_astronaut.png").read_bytes()
    flipped = io.BytesIO()
    Image.open(io.BytesIO(data)).transpose(Image.FLIP_LEFT_RIGHT).save(flipped, "PNG")
    return [("astronaut.png", data), ("astronaut_flipped.png", flipped.getvalue())]


def profile_form(fixtures_dir, name="Eileen", faceless=False, voice=True, **fields) -> aiohttp.FormData:
    form = aiohttp.FormData()
    form.add_field("name", name)
    for i, (filename, data) in enumerate(photos(fixtures_dir, faceless), start=1):
        form.add_field(f"image_{i}", io.BytesIO(data), filename=filename, content_type="image/png")
    if voice:
        form.add_field("voice_sample", io.BytesIO(voice_wav(fixtures_dir)), filename="voice.wav", content_type="audio/wav")
        form.add_field("voice_transcript", "Front left. Front right. Front left.")
    for key, value in {"checkpoint": TINY, "steps": "3", "rank": "4", "resolution": "64", **fields}.items():
        form.add_field(key, value)
    return form


async def create(client, fixtures_dir, **kwargs) -> dict:
    r = await client.post("/myspinbot/profiles", data=profile_form(fixtures_dir, **kwargs))
    assert r.status == 202, await r.text()
    return await r.json()


async def test_create_train_ready_then_f5_job_with_the_profile(client, host, api, fixtures_dir):
    profile = await create(client, fixtures_dir)
    assert profile["status"] == "training" and profile["name"] == "Eileen" and profile["lora_name"] is None
    assert profile["photos"] == [{"name": "astronaut.png"}, {"name": "astronaut_flipped.png"}]
    assert profile["voice"] == {"transcript": "Front left. Front right. Front left."}
    assert profile["options"] == {"checkpoint": TINY, "steps": 3, "rank": 4, "resolution": 64}
    folder = host.input_dir / "myspinbot" / "profiles" / profile["id"]
    assert sorted(p.name for p in (folder / "photos").iterdir()) == ["photo_01.png", "photo_02.png"]
    [voice] = folder.glob("voice_*.wav")
    from myspinbot.speech.audio_io import load_audio

    samples, rate = load_audio(voice)
    assert rate == 24000 and 3.0 <= samples.shape[1] / rate <= 12.0

    job = await (await client.get(profile["urls"]["training_job"])).json()
    assert job["pipeline"] == "train_profile" and job["status"] == "queued"
    prompt = host.prompts[job["id"]]
    trainer = prompt[node_by_title(prompt, "Train LoRA")]["inputs"]
    assert trainer["folder"] == f"myspinbot/profiles/{profile['id']}/photos"
    assert trainer["lora_name"] == f"profile_{profile['id']}" and trainer["steps"] == 3 and trainer["save_every"] == 0
    assert prompt[node_by_title(prompt, "Checkpoint")]["inputs"]["ckpt_name"] == TINY

    # Not ready yet: a job naming it is refused.
    place_models(host, F5_MODELS)
    r = await client.post("/myspinbot/jobs", json={"pipeline": "f5", "inputs": {"profile": profile["id"], "script": "Hi."}})
    assert r.status == 409 and (await r.json())["error"]["code"] == "profile_not_ready"

    host.run_success(job["id"], {node_by_title(prompt, "Save reference"): b"reference crop"})
    ready = await (await client.get(profile["urls"]["self"])).json()
    assert ready["status"] == "ready" and ready["has_reference_photo"] and ready["error"] is None
    assert ready["lora_name"] == f"myspinbot/profile_{profile['id']}.safetensors"
    assert (folder / "reference.png").read_bytes() == b"reference crop"
    listed = await (await client.get("/myspinbot/profiles")).json()
    assert [p["id"] for p in listed["profiles"]] == [profile["id"]]

    # An f5 job with the profile: no portrait, no voice sample, no transcript.
    r = await client.post("/myspinbot/jobs", json={"pipeline": "f5", "inputs": {"profile": profile["id"], "script": "Hi."}})
    assert r.status == 202, await r.text()
    f5 = await r.json()
    p5 = host.prompts[f5["id"]]
    assert p5[node_by_title(p5, "Portrait")]["inputs"]["image"] == f"myspinbot/profiles/{profile['id']}/reference.png"
    assert p5[node_by_title(p5, "Voice sample")]["inputs"]["audio"] == \
        f"myspinbot/profiles/{profile['id']}/{voice.name}"
    assert p5[node_by_title(p5, "Voice clone")]["inputs"]["ref_text"] == "Front left. Front right. Front left."
    # ... and not with a portrait of its own as well
    r = await client.post("/myspinbot/jobs", json={"pipeline": "f5", "inputs": {
        "profile": profile["id"], "script": "Hi.", "voice_transcript": "x"}})
    assert r.status == 422 and (await r.json())["error"]["code"] == "conflicting_inputs"

    # Deleting it while that job is queued is refused; once the job ends it is allowed.
    r = await client.delete(profile["urls"]["self"])
    body = await r.json()
    assert r.status == 409 and body["error"]["code"] == "profile_in_use" and body["error"]["details"]["jobs"] == [f5["id"]]
    assert folder.is_dir()
    await client.post(f5["urls"]["cancel"])
    r = await client.delete(profile["urls"]["self"])
    assert r.status == 204 and not folder.exists()
    assert (await client.get(profile["urls"]["self"])).status == 404


async def test_faceless_photos_fail_with_a_per_photo_report(client, host, fixtures_dir):
    profile = await create(client, fixtures_dir, faceless=True, voice=False)
    assert profile["voice"] is None
    job_id = profile["training_job_id"]
    host.emit("execution_start", prompt_id=job_id)
    host.emit("execution_error", prompt_id=job_id, node_type="MySpinBotTrainCharacterLora",
              exception_type="myspinbot.errors.InvalidInputError",
              exception_message="[invalid_input] no photo is usable for training:\n0 of 1 photos kept, 0 training "
                                "images\ndropped photo_01.png: no face found in the photo")
    host.emit("executing", node=None, prompt_id=job_id)
    failed = await (await client.get(profile["urls"]["self"])).json()
    assert failed["status"] == "failed" and failed["error"]["code"] == "invalid_input"
    assert failed["error"]["details"]["photos"] == [{"photo": "wall.png", "file": "photo_01.png", "reason": "no_face",
                                                     "message": "no face found in the photo"}]
    assert failed["error"]["details"]["job_id"] == job_id


async def test_canceled_training_fails_the_profile_and_delete_waits_for_training(client, host, fixtures_dir):
    profile = await create(client, fixtures_dir, voice=False)
    r = await client.delete(profile["urls"]["self"])
    assert r.status == 409 and (await r.json())["error"]["details"]["jobs"] == [profile["training_job_id"]]
    await client.post(f"/myspinbot/jobs/{profile['training_job_id']}/cancel")
    failed = await (await client.get(profile["urls"]["self"])).json()
    assert failed["status"] == "failed" and failed["error"]["code"] == "training_canceled"

    # Trained again, with more steps: a new train_profile job.
    r = await client.post(profile["urls"]["self"] + "/train", json={"options": {"steps": 5}})
    assert r.status == 202, await r.text()
    again = await r.json()
    assert again["status"] == "training" and again["error"] is None
    assert again["training_job_id"] != profile["training_job_id"] and again["options"]["steps"] == 5
    prompt = host.prompts[again["training_job_id"]]
    assert prompt[node_by_title(prompt, "Train LoRA")]["inputs"]["steps"] == 5
    r = await client.post(profile["urls"]["self"] + "/train")  # its new training is queued
    assert r.status == 409 and (await r.json())["error"]["code"] == "profile_in_use"


async def test_patch_renames_and_replaces_the_voice(client, host, fixtures_dir):
    profile = await create(client, fixtures_dir)
    r = await client.patch(profile["urls"]["self"], json={"name": "Collins"})
    assert r.status == 200 and (await r.json())["name"] == "Collins"
    form = aiohttp.FormData()
    form.add_field("voice_sample", io.BytesIO(voice_wav(fixtures_dir)), filename="v.wav", content_type="audio/wav")
    form.add_field("voice_transcript", "Front left, front right, front left.")
    r = await client.patch(profile["urls"]["self"], data=form)  # its training job is queued: it uses the profile
    assert r.status == 409 and (await r.json())["error"]["code"] == "profile_in_use"
    await client.post(profile["urls"]["training_job"] + "/cancel")
    form = aiohttp.FormData()
    form.add_field("voice_sample", io.BytesIO(voice_wav(fixtures_dir)), filename="v.wav", content_type="audio/wav")
    form.add_field("voice_transcript", "Front left, front right, front left.")
    r = await client.patch(profile["urls"]["self"], data=form)
    assert r.status == 200 and (await r.json())["voice"]["transcript"] == "Front left, front right, front left."
    folder = host.input_dir / "myspinbot" / "profiles" / profile["id"]
    assert len(list(folder.glob("voice_*.wav"))) == 1


async def test_refusals(client, host, fixtures_dir):
    r = await client.post("/myspinbot/profiles", data=profile_form(fixtures_dir, name=" "))
    assert r.status == 422 and (await r.json())["error"]["code"] == "missing_name"
    r = await client.post("/myspinbot/profiles", data=profile_form(fixtures_dir, bogus="1"))
    assert r.status == 422 and (await r.json())["error"]["code"] == "unknown_parameter"
    form = profile_form(fixtures_dir, voice=False)
    short = (fixtures_dir / "speech_front_left.wav").read_bytes()  # 1.5 s: too little speech
    form.add_field("voice_sample", io.BytesIO(short), filename="short.wav", content_type="audio/wav")
    form.add_field("voice_transcript", "Front left")
    r = await client.post("/myspinbot/profiles", data=form)
    body = await r.json()
    assert r.status == 422 and body["error"]["code"] == "invalid_voice_sample"
    assert body["error"]["details"]["reason"] == "voice_too_short"
    assert not list((host.input_dir / "myspinbot" / "profiles").glob("*"))  # nothing kept
    r = await client.post("/myspinbot/profiles", json={"name": "x", "images": []})
    assert r.status == 422 and (await r.json())["error"]["code"] == "missing_images"
    r = await client.post("/myspinbot/jobs", json={"pipeline": "f5", "inputs": {
        "profile": "00000000-0000-4000-8000-000000000000", "script": "Hi."}})
    assert r.status == 422 and (await r.json())["error"]["code"] == "profile_not_found"
    assert (await client.get("/myspinbot/profiles/nope")).status == 404


async def test_ready_profile_files_go_to_object_storage_with_presigned_links(client, host, api, fixtures_dir,
                                                                             monkeypatch):
    """With MYSPINBOT_S3_* set (moto's S3 server standing in for MinIO), a ready profile's voice clip
    is uploaded under voices/<id>/ and GET /profiles/{id} links to it (the LoRA under loras/<id>/
    too where ComfyUI's loras folder exists: tier 2)."""
    import asyncio
    import urllib.request

    from s3_standin import S3StandIn

    s3 = S3StandIn().start()
    try:
        for name, value in {"ENDPOINT": s3.endpoint, "ACCESS_KEY": "MSBACCESSKEY7Q2Z", "SECRET_KEY": "msb-secret-0123",
                            "REGION": "us-east-1", "RETRIES": "2", "BACKOFF_S": "0.01"}.items():
            monkeypatch.setenv(f"MYSPINBOT_S3_{name}", value)
        profile = await create(client, fixtures_dir)
        prompt = host.prompts[profile["training_job_id"]]
        host.run_success(profile["training_job_id"], {node_by_title(prompt, "Save reference"): b"crop"})
        await asyncio.gather(*api.profiles.uploads)
        body = await (await client.get(profile["urls"]["self"])).json()
        voice = body["storage"]["voice"]
        [local] = (host.input_dir / "myspinbot" / "profiles" / profile["id"]).glob("voice_*.wav")
        assert voice["uri"] == f"s3://myspinbot/voices/{profile['id']}/{local.name}"
        fetched = await asyncio.to_thread(lambda: urllib.request.urlopen(voice["presigned_url"], timeout=10).read())
        assert fetched == local.read_bytes()
        listed = await (await client.get("/myspinbot/profiles")).json()
        assert "storage" not in listed["profiles"][0]
        # A fine-tuned voice's checkpoint goes under voices/<id>/ too (its file found in ComfyUI's
        # models folder in a real ComfyUI: stood in for here).
        from dataclasses import replace

        from myspinbot.server.profiles import files as profile_files

        tuned = host.input_dir / f"profile_{profile['id']}.safetensors"
        tuned.write_bytes(b"fine-tuned voice")
        monkeypatch.setattr(profile_files, "voice_model_file", lambda name: tuned if name else None)
        api.store.profiles.save(replace(api.store.profiles.get(profile["id"]), voice_model=f"myspinbot/{tuned.stem}"))
        api.profiles.store_files_later(profile["id"])
        await asyncio.gather(*api.profiles.uploads)
        body = await (await client.get(profile["urls"]["self"])).json()
        assert body["storage"]["voice_model"]["uri"] == f"s3://myspinbot/voices/{profile['id']}/{tuned.name}"
        assert body["storage"]["voice"] == voice | {"presigned_url": body["storage"]["voice"]["presigned_url"]}
        fetched = await asyncio.to_thread(
            lambda: urllib.request.urlopen(body["storage"]["voice_model"]["presigned_url"], timeout=10).read())
        assert fetched == b"fine-tuned voice"
        # Deleting the profile removes the stored object too.
        assert (await client.delete(profile["urls"]["self"])).status == 204
        from myspinbot.storage import head, load_settings

        settings = load_settings(comfy_settings={})
        for stored in (voice, body["storage"]["voice_model"]):
            assert await asyncio.to_thread(head, settings, "myspinbot", stored["uri"].split("/", 3)[3]) is None
    finally:
        s3.stop()
