"""Tier 2: a character profile with a fine-tuned F5-TTS voice, through the job API of a real
ComfyUI (``main.py --cpu``).

``POST /myspinbot/profiles`` with the real portrait (+ a mirrored copy), the voice sample of
``test_profiles`` and two voice clips of about 17 s each made of the real speech fixtures
("Front left", "Front right" and silences, five times), ``fine_tune_voice`` on with 2 steps:
the train_profile job trains the LoRA on the tiny SD1.5 checkpoint and fine-tunes the tiny F5
(``tiny_f5``) → the profile is ``ready`` with ``voice_model`` = ``myspinbot/profile_<id>``, whose
checkpoint is in ``models/f5_tts/myspinbot/``; an ``f5`` job with ``profile=<id>`` then speaks
with that voice (speech=f5, a finished script) and succeeds; deleting the profile removes the
fine-tuned voice too.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import requests
from PIL import Image
from safetensors import safe_open

pytest.importorskip("f5_tts", reason="f5-tts is not installed (python install.py --extras f5)")

from test_profiles import OPTIONS, png, recording_wav, voice_wav  # noqa: E402
from tiny_f5 import build_tiny_f5  # noqa: E402
from tiny_sd15 import FILE_NAME, build_tiny_sd15  # noqa: E402

SAID = " ".join(["Front left. Front right."] * 5)


def clip_wav(fixtures_dir: Path) -> bytes:
    return recording_wav(fixtures_dir, "lr" * 5, 0.4)


def test_profile_fine_tunes_its_voice_and_f5_jobs_speak_with_it(comfy_clone, fixtures_dir):
    comfy = comfy_clone
    models = comfy.scratch / "base" / "models"
    build_tiny_sd15(models / "checkpoints" / FILE_NAME)
    build_tiny_f5(models, vocos_bin=True, sidecar_config=True)
    portrait = Image.open(fixtures_dir / "portrait_astronaut.png").convert("RGB")
    clip = clip_wav(fixtures_dir)
    files = [("image_1", ("astronaut.png", (fixtures_dir / "portrait_astronaut.png").read_bytes(), "image/png")),
             ("image_2", ("mirrored.png", png(portrait.transpose(Image.FLIP_LEFT_RIGHT)), "image/png")),
             ("voice_sample", ("voice.wav", voice_wav(fixtures_dir), "audio/wav")),
             ("voice_clip_1", ("take1.wav", clip, "audio/wav")), ("voice_clip_2", ("take2.wav", clip, "audio/wav"))]
    data = {"name": "Eileen", **OPTIONS, "voice_transcript": "Front left. Front right. Front left.",
            "voice_clip_transcripts": f'["{SAID}", "{SAID}"]', "fine_tune_voice": "true", "voice_steps": "2"}
    r = requests.post(comfy.url + "/myspinbot/profiles", files=files, data=data, timeout=120)
    assert r.status_code == 202, r.text
    profile = r.json()
    job = comfy.wait_job(profile["training_job_id"], timeout=1200)
    assert job["status"] == "succeeded", job
    ready = requests.get(comfy.url + profile["urls"]["self"], timeout=30).json()
    assert ready["status"] == "ready" and ready["voice_model"] == f"myspinbot/profile_{profile['id']}", ready
    voice_dir = models / "f5_tts" / ready["voice_model"]
    checkpoint = voice_dir / f"profile_{profile['id']}.safetensors"
    with safe_open(str(checkpoint), framework="pt") as f:
        meta = f.metadata()
    assert meta["steps"] == "2" and meta["clips"] == "2" and float(meta["seconds"]) > 30

    r = requests.post(comfy.url + "/myspinbot/jobs", timeout=60, json={"pipeline": "f5", "inputs": {
        "profile": profile["id"], "script": "Hello from the fine-tuned voice.", "speech": "f5"}})
    assert r.status_code == 202, r.text
    job_id = r.json()["id"]
    done = comfy.wait_job(job_id, timeout=900)
    assert done["status"] == "succeeded", done
    prompt = requests.get(f"{comfy.url}/history/{job_id}", timeout=30).json()[job_id]["prompt"][2]
    [clone] = [n for n in prompt.values() if n["class_type"] == "MySpinBotVoiceCloneF5"]
    assert clone["inputs"]["model"] == ready["voice_model"]

    r = requests.delete(comfy.url + profile["urls"]["self"], timeout=30)
    assert r.status_code == 204, r.text
    assert not voice_dir.exists()
