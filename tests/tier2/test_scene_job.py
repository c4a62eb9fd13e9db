"""The ``scene`` pipeline through the job API of a real ComfyUI (CPU), on random-weight models.

Models, written into the ``comfy_clone`` models tree under their own names (so the models
preflight, which only asks for the manifest's files, has nothing to check for them):

- ``checkpoints/tiny_sd15.safetensors``: ``tiny_sd15.py``'s SD1.5-architecture checkpoint (one
  UNet level, 26 M parameters; the full-size CLIP-L text encoder; a TAESD), loaded by core's
  ``CheckpointLoaderSimple``;
- ``wav2lip/random_wav2lip_scene.pth``: a full-size Wav2Lip generator with random weights, saved
  the way the authors' training saves ``wav2lip.pth`` (as in ``test_wav2lip_node.py``);
- ``upscale_models/tiny_esrgan_x2_scene.pth``: a tiny random x2 ESRGAN (8 filters, 1 block).

The text-to-image job: a prompt that the script writer (mode ``ollama_scene``, against the
Ollama protocol stand-in) turns into a narration and a stage description, the description
rendered by the tiny checkpoint at 64 x 64 in one step, ``motion=none`` (core detects no SVD
small enough for a default test; see the opt-in heavy test below), espeak-ng speech, Wav2Lip,
storage. A random checkpoint paints no face, so that job runs with ``require_face=false`` (the
picture is narrated as a voice-over); the job with a ``scene_image`` (the real portrait) has a
face, which Wav2Lip redraws, and is upscaled x2.

The SVD branch (``motion=svd``) runs only with ``MYSPINBOT_HEAVY_TESTS=1``: core detects no SVD
smaller than about 212 M UNet parameters plus the 632 M ViT-H image encoder and the full video VAE,
so ``tiny_svd.py`` writes that smallest SVD (about 1.9 GB in fp16) and the job makes 2 frames of
64 x 64 in one step.
"""

from __future__ import annotations

import os
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest
import requests
import torch

from myspinbot.lipsync import Wav2Lip
from myspinbot.video import probe_media

pytestmark = [pytest.mark.tier2, pytest.mark.slow]

HERE = Path(__file__).resolve().parent
BUCKET = "myspinbot-tier2-scene"
FPS = 25.0
HEAVY = os.environ.get("MYSPINBOT_HEAVY_TESTS") == "1"


def _models_dir(comfy) -> Path:
    return comfy.scratch / "base" / "models"


@pytest.fixture(scope="module")
def scene_models(comfy_clone) -> dict[str, str]:
    """The random models in ComfyUI's models tree; returns the job parameters naming them."""
    root = _models_dir(comfy_clone)
    checkpoint = root / "checkpoints" / "tiny_sd15.safetensors"
    if not checkpoint.exists():  # a subprocess: the builder imports ComfyUI's classes
        proc = subprocess.run([sys.executable, str(HERE / "tiny_sd15.py"), str(checkpoint)],
                              capture_output=True, text=True, timeout=900)
        assert proc.returncode == 0, proc.stderr[-4000:]
    wav2lip = root / "wav2lip" / "random_wav2lip_scene.pth"
    wav2lip.parent.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(13)
    state = Wav2Lip().state_dict()
    torch.save({"state_dict": {"module." + k: v for k, v in state.items()},
                "optimizer": {"state": {}, "param_groups": [{"lr": 1e-4, "params": [0, 1]}]},
                "global_step": 1, "global_epoch": 1}, wav2lip)
    from spandrel.architectures.ESRGAN import ESRGAN

    upscale = root / "upscale_models" / "tiny_esrgan_x2_scene.pth"
    upscale.parent.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(5)
    net = ESRGAN(in_nc=3, out_nc=3, num_filters=8, num_blocks=1, scale=2)
    torch.save({k: v.contiguous() for k, v in net.state_dict().items()}, upscale)
    return {"checkpoint": checkpoint.name, "wav2lip_model": wav2lip.name, "upscale_model": upscale.name}


def _download(comfy, job: dict, path: Path) -> dict:
    [video] = job["outputs"]
    assert video["name"] == "video" and video["content_type"] == "video/mp4"
    r = requests.get(comfy.url + video["url"], timeout=60)
    assert r.status_code == 200 and len(r.content) == video["size_bytes"]
    path.write_bytes(r.content)
    return video


def _covers_the_speech(path: Path, size: tuple[int, int]) -> dict:
    """The MP4 has H.264 video of ``size`` and AAC speech, and the video lasts as long as the speech
    (within one frame)."""
    info = probe_media(path)
    assert info["video_streams"] == 1 and info["audio_streams"] == 1, info
    assert info["video"]["codec"] == "h264" and info["audio"]["codec"] == "aac", info
    assert (info["video"]["width"], info["video"]["height"]) == size, info
    speech_s = info["audio"]["duration_s"]
    assert speech_s > 0.5, info  # espeak-ng said the narration
    assert abs(info["video"]["duration_s"] - speech_s) <= 1.0 / FPS, info
    assert info["video"]["frame_count"] == pytest.approx(speech_s * FPS, abs=1.0), info
    return info


def test_scene_without_the_models_is_409_models_missing(comfy_clone):
    r = requests.post(comfy_clone.url + "/myspinbot/jobs", timeout=60,
                      json={"pipeline": "scene", "inputs": {"prompt": "A weather report from a rooftop.", "speech": "espeak"}})
    assert r.status_code == 409, r.text
    error = r.json()["error"]
    assert error["code"] == "models_missing"
    assert {"sd15_pruned_emaonly_fp16", "svd_img2vid_xt", "wav2lip_gan"} <= set(error["details"]["missing"])
    assert "install.py --models" in error["details"]["fetch"]


def test_prompt_to_scene_to_lip_synced_mp4(comfy_clone, s3_standin, ollama_standin, scene_models, tmp_path):
    before = len(ollama_standin.chats())
    inputs = {"prompt": "A cheerful cook welcomes viewers to a cooking channel.", "llm_model": "llama3.2",
              "length": 5, "speech": "espeak", "motion": "none", "width": 64, "height": 64, "steps": 1, "cfg": 1,
              "seed": 3, "require_face": False, "upscale": False, "storage": True, "bucket": BUCKET,
              "checkpoint": scene_models["checkpoint"], "wav2lip_model": scene_models["wav2lip_model"]}
    r = requests.post(comfy_clone.url + "/myspinbot/jobs", json={"pipeline": "scene", "inputs": inputs}, timeout=60)
    assert r.status_code == 202, r.text
    done, stages = comfy_clone.wait_job_stages(r.json()["id"], timeout=900)
    assert done["status"] == "succeeded", f"{done}\n{comfy_clone.log_tail(60)}"
    assert {"scene", "lipsync"} <= set(stages) and "motion" not in stages, stages  # espeak is too quick to poll

    # the script writer asked the LLM for a narration and a text-to-image stage description
    [chat] = ollama_standin.chats()[before:]
    assert "text-to-image prompt" in chat["messages"][0]["content"] and chat["options"]["seed"] == 3
    assert "frames without a face (passed through unchanged)" in comfy_clone.log_text()  # the voice-over

    path = tmp_path / "scene.mp4"
    video = _download(comfy_clone, done, path)
    _covers_the_speech(path, (64, 64))
    storage = video["storage"]
    assert storage["uri"].startswith(f"s3://{BUCKET}/"), storage
    with urllib.request.urlopen(storage["presigned_url"], timeout=30) as response:
        assert response.read() == path.read_bytes()


def test_scene_image_with_a_face_is_lip_synced_and_upscaled(comfy_clone, fixtures_dir, scene_models, tmp_path):
    files = {"scene_image": ("portrait.png", (fixtures_dir / "portrait_astronaut.png").read_bytes(), "image/png")}
    data = {"pipeline": "scene", "script": "Hello there. Welcome to the scene pipeline.", "speech": "espeak",
            "motion": "none", "upscale": "true", "upscale_factor": "0", "storage": "false",
            "wav2lip_model": scene_models["wav2lip_model"], "upscale_model": scene_models["upscale_model"]}
    r = requests.post(comfy_clone.url + "/myspinbot/jobs", data=data, files=files, timeout=60)
    assert r.status_code == 202, r.text  # no checkpoint named: a given picture needs none (no preflight)
    done, stages = comfy_clone.wait_job_stages(r.json()["id"], timeout=900)
    assert done["status"] == "succeeded", f"{done}\n{comfy_clone.log_tail(60)}"
    assert "lipsync" in stages and "upscale" in stages, stages
    path = tmp_path / "portrait_scene.mp4"
    _download(comfy_clone, done, path)
    info = _covers_the_speech(path, (1024, 1024))  # the 512 x 512 portrait, x2
    frames = info["video"]["frame_count"]
    assert f"0 of {frames} frames without a face: every frame was lip-synced" in comfy_clone.log_text()


@pytest.mark.skipif(not HEAVY, reason="set MYSPINBOT_HEAVY_TESTS=1: writes the smallest SVD core detects (a 212 M "
                    "UNet, the 632 M ViT-H image encoder and the full video VAE, about 1.9 GB in fp16, ~8 GB RAM) "
                    "and samples 2 frames of 64 x 64 in one step on the CPU")
def test_svd_motion_with_the_smallest_svd(comfy_clone, fixtures_dir, scene_models, tmp_path):
    """``motion=svd``: ImageOnlyCheckpointLoader -> SVD_img2vid_Conditioning -> VideoLinearCFGGuidance
    -> KSampler -> VAEDecode, the frames played ping-pong by the lip sync to the speech length."""
    svd = _models_dir(comfy_clone) / "checkpoints" / "tiny_svd.safetensors"
    if not svd.exists():
        proc = subprocess.run([sys.executable, str(HERE / "tiny_svd.py"), str(svd)], capture_output=True,
                              text=True, timeout=1800)
        assert proc.returncode == 0, proc.stderr[-4000:]
    files = {"scene_image": ("portrait.png", (fixtures_dir / "portrait_astronaut.png").read_bytes(), "image/png")}
    data = {"pipeline": "scene", "script": "Hello from a moving picture.", "speech": "espeak", "motion": "svd",
            "svd_checkpoint": svd.name, "motion_frames": "2", "motion_steps": "1", "width": "64", "height": "64",
            "motion_bucket_id": "40", "augmentation_level": "0.02", "require_face": "false",
            "upscale": "false", "storage": "false", "wav2lip_model": scene_models["wav2lip_model"]}
    r = requests.post(comfy_clone.url + "/myspinbot/jobs", data=data, files=files, timeout=60)
    assert r.status_code == 202, r.text
    done, stages = comfy_clone.wait_job_stages(r.json()["id"], timeout=1800)
    assert done["status"] == "succeeded", f"{done}\n{comfy_clone.log_tail(60)}"
    assert "motion" in stages and "lipsync" in stages, stages
    path = tmp_path / "svd_scene.mp4"
    _download(comfy_clone, done, path)
    _covers_the_speech(path, (64, 64))
