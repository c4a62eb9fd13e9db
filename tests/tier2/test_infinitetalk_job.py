"""The infinitetalk pipeline end to end through the job API of a real ComfyUI (CPU), on tiny models.

Models, written into the ``comfy_clone`` models tree (``<scratch>/base/models``) under their own
file names, which the job names through its parameters (so the models preflight, which only
asks the manifest for files left at their defaults, has nothing to check):

- ``tiny_wan.py``'s random Wan2.1 I2V DiT (dim 160), InfiniteTalk patch, Wan VAE (width 4) and a
  random full-size wav2vec2-base (``diffusion_models/``, ``model_patches/``, ``vae/``,
  ``audio_encoders/``), loaded by core's loader nodes in the workflow;
- a tiny random x2 ESRGAN (spandrel's RRDBNet, 8 filters, 1 block) saved as ``.pth`` in
  ``upscale_models/``.

No text encoder (``text_conditioning=none``: the node makes zero umt5-width conditioning) and no
CLIP vision (``clip_vision_enabled=false``): core's CLIPLoader has no tiny umt5. The text-encoder
path is covered by an opt-in test (``MYSPINBOT_HEAVY_TESTS=1``) with a random full-size umt5-xxl
(``random_umt5.py``).

Speech (``speech_recording``): the real fixture recordings ``speech_front_left.wav`` + 0.25 s
silence + ``speech_front_right.wav`` + 0.4 s silence, repeated and cut to exactly 12.0 s at
48 kHz (``tiny_wan.fixture_speech``), written as a 16-bit WAV. 32x32, 25 fps, 1 step, cfg 1:
300 frames in 5 windows of 81 frames (9 motion frames), upscaled x2, stored in the S3 stand-in.
"""

from __future__ import annotations

import io
import json
import math
import os
import subprocess
import sys
import time
import urllib.request
import wave
from pathlib import Path

import numpy as np
import pytest
import requests

from myspinbot.video import load_audio, probe_media

pytestmark = [pytest.mark.tier2, pytest.mark.slow]

TINY = Path(__file__).resolve().parent / "tiny_wan.py"
FPS = 25
SECONDS = 12.0
BUCKET = "myspinbot-tier2-infinitetalk"


def _models_dir(comfy) -> Path:
    return comfy.scratch / "base" / "models"


@pytest.fixture(scope="module")
def tiny_models(comfy_clone) -> dict[str, str]:
    """The tiny models in ComfyUI's models tree; returns the job parameters naming them."""
    root = _models_dir(comfy_clone)
    proc = subprocess.run([sys.executable, str(TINY), "build", str(root)], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-4000:]
    sys.path.insert(0, str(TINY.parent))
    import torch
    from spandrel.architectures.ESRGAN import ESRGAN
    from tiny_wan import FILES

    upscale = root / "upscale_models" / "tiny_esrgan_x2_job.pth"
    upscale.parent.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(5)
    net = ESRGAN(in_nc=3, out_nc=3, num_filters=8, num_blocks=1, scale=2)
    torch.save({k: v.contiguous() for k, v in net.state_dict().items()}, upscale)
    return {"wan_model": FILES["diffusion_model"][1], "infinitetalk_patch": FILES["model_patch"][1],
            "vae": FILES["vae"][1], "audio_encoder": FILES["audio_encoder"][1], "upscale_model": upscale.name}


@pytest.fixture(scope="module")
def speech_12s() -> tuple[np.ndarray, int, bytes]:
    sys.path.insert(0, str(TINY.parent))
    from tiny_wan import SPEECH_RATE, fixture_speech

    speech = fixture_speech(SECONDS)  # float32 [1, 576000]
    assert speech.shape == (1, int(SECONDS * SPEECH_RATE))
    pcm = (np.clip(speech[0], -1.0, 1.0) * 32767.0).round().astype("<i2")
    return pcm[None].astype(np.float32) / 32767.0, SPEECH_RATE, _wav_bytes(pcm, SPEECH_RATE)


def _wav_bytes(pcm: np.ndarray, rate: int) -> bytes:
    """A mono 16-bit WAV file of ``pcm`` (int16 samples)."""
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(pcm.astype("<i2").tobytes())
    return buf.getvalue()


def test_12s_infinitetalk_job_succeeds_with_local_and_stored_video(comfy_clone, s3_standin, fixtures_dir, tiny_models,
                                                                    speech_12s, tmp_path):
    speech, rate, wav_bytes = speech_12s
    data = {"pipeline": "infinitetalk", **tiny_models, "text_conditioning": "none", "clip_vision_enabled": "false",
            "width": "32", "height": "32", "steps": "1", "cfg": "1", "audio_cfg": "1", "seed": "0",
            "upscale": "true", "storage": "true", "bucket": BUCKET}
    files = {"portrait": ("portrait.png", (fixtures_dir / "portrait_astronaut.png").read_bytes(), "image/png"),
             "speech_recording": ("speech_12s.wav", wav_bytes, "audio/wav")}
    t0 = time.monotonic()
    r = requests.post(comfy_clone.url + "/myspinbot/jobs", data=data, files=files, timeout=60)
    assert r.status_code == 202, r.text
    done, stages = comfy_clone.wait_job_stages(r.json()["id"], timeout=900)
    elapsed = time.monotonic() - t0
    print(f"infinitetalk job: {elapsed:.1f} s, stages {stages}")
    assert done["status"] == "succeeded", json.dumps(done, indent=1)[-4000:] + "\n" + comfy_clone.log_tail(60)
    # progress went through the animation and then the upscaling (ComfyUI may run the upscale
    # model's loader, which belongs to the upscale stage, before anything else)
    assert "animate" in stages and "upscale" in stages, stages
    assert "upscale" in stages[stages.index("animate"):], stages

    # 3+ windows (300 frames: 81 + 3 x 72 + a tail window)
    log = comfy_clone.log_text()
    assert "InfiniteTalk: window 3/" in log and "window 5/5 done (frames 297-299, 3 new)" in log, comfy_clone.log_tail(60)

    # the video output: the local file ...
    [video] = done["outputs"]
    assert video["name"] == "video"
    local = requests.get(comfy_clone.url + video["url"], timeout=60)
    assert local.status_code == 200 and local.content
    path = tmp_path / "infinitetalk.mp4"
    path.write_bytes(local.content)
    # ... and the same bytes in the object store
    storage = video["storage"]
    assert storage["uri"].startswith(f"s3://{BUCKET}/"), storage
    with urllib.request.urlopen(storage["presigned_url"], timeout=30) as response:
        stored = response.read()
    assert stored == local.content

    # as long as the audio (to within one frame), upscaled x2, the audio intact
    info = probe_media(path)
    assert info["video_streams"] == 1 and info["audio_streams"] == 1, info
    assert info["video"]["codec"] == "h264" and (info["video"]["width"], info["video"]["height"]) == (64, 64), info
    assert info["video"]["frame_count"] == math.ceil(SECONDS * FPS), info
    assert abs(info["video"]["duration_s"] - SECONDS) <= 1.0 / FPS, info
    assert abs(info["audio"]["duration_s"] - SECONDS) <= 1.0 / FPS, info
    track, track_rate = load_audio(path)
    assert track_rate == rate and abs(track.shape[-1] - speech.shape[-1]) <= rate // FPS
    n = min(track.shape[-1], speech.shape[-1])
    a, b = track.mean(axis=0)[:n], speech.mean(axis=0)[:n]
    best = max(float(np.corrcoef(a[max(0, s):n + min(0, s)], b[max(0, -s):n - max(0, s)])[0, 1])
               for s in range(-2048, 2049, 32))
    assert best > 0.9, f"the video's audio is not the speech recording (r = {best:.3f})"
    tail = slice(n - rate, n)
    assert np.sqrt(np.mean(a[tail] ** 2)) > 0.5 * np.sqrt(np.mean(b[tail] ** 2))


HEAVY = os.environ.get("MYSPINBOT_HEAVY_TESTS") == "1"


@pytest.mark.skipif(not HEAVY, reason="set MYSPINBOT_HEAVY_TESTS=1: writes a random full-size umt5-xxl "
                    "(5.7 GB, ~11 GB RAM) and encodes two prompts on the CPU (~3 min)")
def test_text_encoder_path_with_a_random_full_size_umt5(comfy_clone, fixtures_dir, tiny_models, speech_12s, tmp_path):
    """``text_conditioning=encoder``: core's CLIPLoader (wan) + CLIPTextEncode feed InfiniteTalk (cfg 2)."""
    umt5 = _models_dir(comfy_clone) / "text_encoders" / "random_umt5_xxl_fp8.safetensors"
    proc = subprocess.run([sys.executable, str(TINY.parent / "random_umt5.py"), str(umt5)], capture_output=True,
                          text=True, timeout=1200)
    assert proc.returncode == 0, proc.stderr[-4000:]
    try:
        speech, rate, _ = speech_12s
        wav_2s = _wav_bytes((speech[0, : 2 * rate] * 32767.0).round(), rate)
        data = {"pipeline": "infinitetalk", **tiny_models, "text_encoder": umt5.name, "text_conditioning": "encoder",
                "positive_prompt": "a portrait of a person talking", "negative_prompt": "blurry, static",
                "clip_vision_enabled": "false", "width": "32", "height": "32", "steps": "1", "cfg": "2",
                "audio_cfg": "1", "seed": "0", "upscale": "false", "storage": "false"}
        files = {"portrait": ("portrait.png", (fixtures_dir / "portrait_astronaut.png").read_bytes(), "image/png"),
                 "speech_recording": ("speech_2s.wav", wav_2s, "audio/wav")}
        r = requests.post(comfy_clone.url + "/myspinbot/jobs", data=data, files=files, timeout=60)
        assert r.status_code == 202, r.text
        done, stages = comfy_clone.wait_job_stages(r.json()["id"], timeout=900)
        assert done["status"] == "succeeded", json.dumps(done, indent=1)[-4000:] + "\n" + comfy_clone.log_tail(60)
        assert "load" in stages and "animate" in stages, stages
        [video] = done["outputs"]
        path = tmp_path / "encoder.mp4"
        path.write_bytes(requests.get(comfy_clone.url + video["url"], timeout=60).content)
        info = probe_media(path)
        assert info["video"]["frame_count"] == 2 * FPS and abs(info["video"]["duration_s"] - 2.0) <= 1.0 / FPS, info
    finally:
        umt5.unlink(missing_ok=True)
