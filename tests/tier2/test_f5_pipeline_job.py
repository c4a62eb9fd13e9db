"""The f5 pipeline through the job API of a real ComfyUI: the models preflight, then a job on
tiny random F5-TTS/Vocos weights placed in ComfyUI's models/ folder (a script spoken verbatim in
the cloned voice; speech=espeak as the weightless fallback)."""

from __future__ import annotations

import shutil

import pytest
import requests

pytest.importorskip("f5_tts", reason="f5-tts is not installed (python install.py --extras f5)")

from myspinbot.video import probe_media  # noqa: E402
from tiny_f5 import build_tiny_f5  # noqa: E402


def models_dir(comfy):
    return comfy.scratch / "base" / "models"


def files(fixtures_dir):
    return {"portrait": ("portrait.png", (fixtures_dir / "portrait_astronaut.png").read_bytes(), "image/png"),
            "voice_sample": ("voice.wav", (fixtures_dir / "speech_front_left.wav").read_bytes(), "audio/wav")}


def test_capabilities_and_models_report_what_is_missing(comfy_clone):
    for folder in ("f5_tts", "vocoders"):
        shutil.rmtree(models_dir(comfy_clone) / folder, ignore_errors=True)
    caps = requests.get(comfy_clone.url + "/myspinbot/capabilities", timeout=30).json()
    assert "MySpinBotVoiceCloneF5" in str(caps) and "F5TTS_v1_Base" in str(caps)
    models = requests.get(comfy_clone.url + "/myspinbot/models", timeout=30).json()
    assert "F5TTS_v1_Base" in str(models) and "CC-BY-NC" in str(models)


def test_job_without_weights_fails_before_queueing(comfy_clone, fixtures_dir):
    for folder in ("f5_tts", "vocoders"):
        shutil.rmtree(models_dir(comfy_clone) / folder, ignore_errors=True)
    r = requests.post(comfy_clone.url + "/myspinbot/jobs", files=files(fixtures_dir), timeout=60,
                      data={"pipeline": "f5", "script": "Hello there.", "voice_transcript": "Front left"})
    assert r.status_code == 409, r.text
    error = r.json()["error"]
    assert error["code"] == "models_missing" and "F5TTS_v1_Base" in error["details"]["missing"]
    assert "install.py --models" in error["details"]["fetch"]
    # The weightless fallback still runs with no weights at all.
    r = requests.post(comfy_clone.url + "/myspinbot/jobs", files={"portrait": files(fixtures_dir)["portrait"]}, timeout=60,
                      data={"pipeline": "f5", "script": "Hello there, no weights needed.", "speech": "espeak"})
    assert r.status_code == 202, r.text
    done = comfy_clone.wait_job(r.json()["id"])
    assert done["status"] == "succeeded", done


def test_job_with_tiny_weights_speaks_the_script_in_the_cloned_voice(comfy_clone, fixtures_dir, tmp_path):
    build_tiny_f5(models_dir(comfy_clone), vocos_bin=True, sidecar_config=True)
    r = requests.post(comfy_clone.url + "/myspinbot/jobs", files=files(fixtures_dir), timeout=60,
                      data={"pipeline": "f5", "script": "Hello there. This is my cloned voice.", "voice_transcript": "Front left"})
    assert r.status_code == 202, r.text
    done = comfy_clone.wait_job(r.json()["id"], timeout=400)
    assert done["status"] == "succeeded", done
    [video] = done["outputs"]
    path = tmp_path / "f5.mp4"
    path.write_bytes(requests.get(comfy_clone.url + video["url"], timeout=60).content)
    info = probe_media(path)
    assert info["audio"]["sample_rate"] == 24000 and info["video"]["codec"] == "h264"
    assert abs(info["video"]["duration_s"] - info["audio"]["duration_s"]) <= 1 / 25 + 0.03
