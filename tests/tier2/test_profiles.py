"""Tier 2: character profiles through the job API of a real ComfyUI (``main.py --cpu``).

``POST /myspinbot/profiles`` with the real portrait fixture and a mirrored copy, and a voice
made of the real speech fixtures ("Front left", 0.3 s silence, "Front right", silence, "Front
left": each alone is under the 3 s a voice profile keeps); training runs 2 steps at 64 px in
fp32 on the tiny random SD1.5 checkpoint (``tiny_sd15.py``) → the profile is ``ready`` with its
LoRA in models/loras/myspinbot and the reference crop, both LoRA and voice uploaded to the S3
stand-in under ``loras/<id>/`` and ``voices/<id>/`` (presigned links in GET). An ``f5`` job with ``profile=<id>``,
``speech=espeak`` and a ``prompt`` then succeeds with no portrait or voice upload; deleting the
profile while that job is queued or running is refused (409 ``profile_in_use``), allowed once
it ended (files and LoRA gone). A profile whose only photo has no face ends ``failed`` with the
trainer's per-photo report.
"""

from __future__ import annotations

import io
import tempfile
import time
from pathlib import Path

import numpy as np
import requests
from PIL import Image

from tiny_sd15 import FILE_NAME, build_tiny_sd15

OPTIONS = {"checkpoint": FILE_NAME, "steps": "2", "rank": "4", "resolution": "64", "training_dtype": "fp32",
           "learning_rate": "0.005"}


def recording_wav(fixtures_dir: Path, order: str, gap_s: float) -> bytes:
    """WAV bytes of the fixture recordings in ``order`` (``l``: front left, ``r``: front right),
    each followed by ``gap_s`` of silence but the last."""
    from myspinbot.speech.audio_io import load_audio, write_wav

    said = {side: load_audio(fixtures_dir / f"speech_front_{name}.wav") for side, name in (("l", "left"), ("r", "right"))}
    rate = said["l"][1]
    gap = np.zeros((1, int(gap_s * rate)), np.float32)
    parts = [piece for side in order for piece in (said[side][0], gap)][:-1]
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "speech.wav"
        write_wav(path, np.concatenate(parts, axis=1), rate)
        return path.read_bytes()


def voice_wav(fixtures_dir: Path) -> bytes:
    return recording_wav(fixtures_dir, "lrl", 0.3)


def png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


def create(comfy, photos: list[tuple[str, bytes]], voice: bytes | None, name: str) -> dict:
    files = [(f"image_{i}", (filename, data, "image/png")) for i, (filename, data) in enumerate(photos, start=1)]
    data = {"name": name, **OPTIONS}
    if voice is not None:
        files.append(("voice_sample", ("voice.wav", voice, "audio/wav")))
        data["voice_transcript"] = "Front left. Front right. Front left."
    r = requests.post(comfy.url + "/myspinbot/profiles", files=files, data=data, timeout=120)
    assert r.status_code == 202, r.text
    return r.json()


def test_profile_trains_then_an_f5_job_uses_it_and_delete_waits(comfy_clone, fixtures_dir):
    comfy = comfy_clone
    models = comfy.scratch / "base" / "models"
    build_tiny_sd15(models / "checkpoints" / FILE_NAME)
    portrait = Image.open(fixtures_dir / "portrait_astronaut.png").convert("RGB")
    photos = [("astronaut.png", (fixtures_dir / "portrait_astronaut.png").read_bytes()),
              ("astronaut_mirrored.png", png(portrait.transpose(Image.FLIP_LEFT_RIGHT)))]
    profile = create(comfy, photos, voice_wav(fixtures_dir), "Eileen")
    assert profile["status"] == "training"
    job = comfy.wait_job(profile["training_job_id"], timeout=900)
    assert job["status"] == "succeeded", job
    ready = requests.get(comfy.url + profile["urls"]["self"], timeout=30).json()
    assert ready["status"] == "ready" and ready["has_reference_photo"], ready
    lora = models / "loras" / ready["lora_name"]
    assert lora.is_file()
    folder = comfy.input_dir / "myspinbot" / "profiles" / profile["id"]
    reference = Image.open(folder / "reference.png")
    assert reference.size == (64, 64)

    # Object storage is configured (the S3 stand-in): the LoRA and the voice go under loras/ and voices/.
    deadline = time.monotonic() + 120
    while not ((stored := requests.get(comfy.url + profile["urls"]["self"], timeout=30).json()["storage"] or {})
               .get("lora") and stored.get("voice")):
        assert time.monotonic() < deadline, "the profile's files never reached object storage"
        time.sleep(0.5)
    assert stored["lora"]["uri"].endswith(f"/loras/{profile['id']}/{lora.name}")
    assert f"/voices/{profile['id']}/voice_" in stored["voice"]["uri"]
    assert requests.get(stored["lora"]["presigned_url"], timeout=30).content == lora.read_bytes()

    r = requests.post(comfy.url + "/myspinbot/jobs", timeout=60, json={"pipeline": "f5", "inputs": {
        "profile": profile["id"], "prompt": "Introduce yourself as an astronaut.", "llm_model": "llama3.2",
        "length": 5, "speech": "espeak"}})  # the LLM (Ollama stand-in) writes the narration
    assert r.status_code == 202, r.text
    f5 = r.json()
    refused = requests.delete(comfy.url + profile["urls"]["self"], timeout=30)
    assert refused.status_code == 409 and refused.json()["error"]["code"] == "profile_in_use", refused.text
    done = comfy.wait_job(f5["id"], timeout=600)
    assert done["status"] == "succeeded", done
    assert [o["name"] for o in done["outputs"]] == ["video"]

    r = requests.delete(comfy.url + profile["urls"]["self"], timeout=30)
    assert r.status_code == 204, r.text
    assert not folder.exists() and not lora.exists()


def test_profile_without_a_face_fails_with_a_per_photo_report(comfy_clone):
    comfy = comfy_clone
    build_tiny_sd15(comfy.scratch / "base" / "models" / "checkpoints" / FILE_NAME)
    ramp = np.linspace(0, 255, 256, dtype=np.float32)
    wall = np.stack([np.tile(ramp, (256, 1)), np.tile(ramp[:, None], (1, 256)), np.full((256, 256), 90.0)], -1)
    profile = create(comfy, [("wall.png", png(Image.fromarray(wall.astype(np.uint8))))], None, "Nobody")
    job = comfy.wait_job(profile["training_job_id"], timeout=600)
    assert job["status"] == "failed", job
    failed = requests.get(comfy.url + profile["urls"]["self"], timeout=30).json()
    assert failed["status"] == "failed", failed
    [report] = failed["error"]["details"]["photos"]
    assert report["photo"] == "wall.png" and report["reason"] == "no_face", failed["error"]
