"""Tier 2: the lip-sync ``quality`` block on job outputs, in a real ComfyUI.

A full-size SyncNet with random weights, saved as the official ``syncnet_v2.model`` is (a
``torch.save``'d state dict), goes into the test ComfyUI's ``models/syncnet``: a lite job
(espeak-ng speech, no weights) through ``POST /myspinbot/jobs`` then has a score node added
to its prompt and its video output carries ``quality`` with the offset, LSE-D and LSE-C
(meaningless numbers with random weights, but finite and from the real model path). With the
file removed, the next job's output has no ``quality`` and ``/capabilities`` says why. The
score node's skip mode (what jobs use) turns a video it cannot score into a reason, never a
failed prompt. The model file is removed again after this module (the ComfyUI is shared).
"""

from __future__ import annotations

import math
import shutil

import numpy as np
import pytest
import requests
import torch

from myspinbot.lipsync import SyncNet
from myspinbot.video.writer import Mp4Writer

CLIENT = "tier2-quality"
SCRIPT = "Hello. I am a talking portrait, and my lips are scored."


@pytest.fixture(scope="module")
def syncnet_file(comfy_clone):
    folder = comfy_clone.scratch / "base" / "models" / "syncnet"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "syncnet_v2.model"
    torch.manual_seed(5)
    torch.save(SyncNet().state_dict(), path)
    yield path
    path.unlink(missing_ok=True)


def submit_lite(comfy, fixtures_dir) -> dict:
    portrait = ("portrait_astronaut.png", (fixtures_dir / "portrait_astronaut.png").read_bytes(), "image/png")
    r = requests.post(comfy.url + "/myspinbot/jobs", data={"pipeline": "lite", "script": SCRIPT},
                      files={"portrait": portrait}, timeout=60)
    assert r.status_code == 202, r.text
    done = comfy.wait_job(r.json()["id"], timeout=600)
    assert done["status"] == "succeeded", done
    return done


def capabilities(comfy) -> dict:
    r = requests.get(comfy.url + "/myspinbot/capabilities", timeout=60)
    assert r.status_code == 200, r.text
    return r.json()["lipsync_score"]


def test_video_output_carries_the_lip_sync_score(comfy_clone, syncnet_file, fixtures_dir):
    report = capabilities(comfy_clone)
    assert report["enabled"] is True and report["file"] == "syncnet_v2.model" and report["reason"] is None
    done = submit_lite(comfy_clone, fixtures_dir)
    [video] = [o for o in done["outputs"] if o["name"] == "video"]
    quality = video["quality"]
    assert set(quality) == {"av_offset_frames", "lse_d", "lse_c"}, quality
    assert isinstance(quality["av_offset_frames"], int) and -15 <= quality["av_offset_frames"] <= 15
    assert all(isinstance(quality[k], float) and math.isfinite(quality[k]) for k in ("lse_d", "lse_c"))
    assert quality["lse_d"] > 0 and quality["lse_c"] >= 0
    # ComfyUI ran the score node the service added, on the job's own prompt.
    history = requests.get(f"{comfy_clone.url}/history/{done['id']}", timeout=10).json()[done["id"]]
    blocks = [out["myspinbot_quality"] for out in history["outputs"].values() if "myspinbot_quality" in out]
    assert len(blocks) == 1 and blocks[0][0]["offset_frames"] == quality["av_offset_frames"]
    assert blocks[0][0]["model"] == "syncnet_v2.model" and blocks[0][0]["windows"] > 10


def test_without_the_model_no_quality_and_capabilities_say_why(comfy_clone, syncnet_file, fixtures_dir):
    syncnet_file.unlink()
    report = capabilities(comfy_clone)
    assert report["enabled"] is False and report["file"] is None
    assert "python install.py --models syncnet_v2" in report["reason"] and "syncnet_v2.model" in report["reason"]
    assert report["missing_files"] == [str(syncnet_file)]
    done = submit_lite(comfy_clone, fixtures_dir)
    [video] = done["outputs"]
    assert "quality" not in video
    history = requests.get(f"{comfy_clone.url}/history/{done['id']}", timeout=10).json()[done["id"]]
    assert not [out for out in history["outputs"].values() if "myspinbot_quality" in out]


def test_skip_mode_turns_an_unscorable_video_into_a_reason(comfy_clone, fixtures_dir):
    # A grey clip with no face (and the speech given separately): skip mode reports why, the prompt succeeds.
    with Mp4Writer(comfy_clone.input_dir / "quality_wall.mp4", 128, 128, 25.0, crf=10) as writer:
        for _ in range(30):
            writer.write(np.full((128, 128, 3), 90, np.uint8))
    shutil.copyfile(fixtures_dir / "speech_front_left.wav", comfy_clone.input_dir / "quality_speech.wav")
    folder = comfy_clone.scratch / "base" / "models" / "syncnet"
    folder.mkdir(parents=True, exist_ok=True)
    torch.save(SyncNet().state_dict(), folder / "quality_random.model")
    prompt = {
        "1": {"class_type": "LoadVideo", "inputs": {"file": "quality_wall.mp4"}},
        "2": {"class_type": "LoadAudio", "inputs": {"audio": "quality_speech.wav"}},
        "3": {"class_type": "MySpinBotLipSyncScore", "inputs": {
            "video": ["1", 0], "audio": ["2", 0], "syncnet_model": "quality_random.model", "vshift": 15,
            "detect_every": 5, "batch_size": 20, "on_error": "skip"}},
    }
    entry = comfy_clone.run_prompt(prompt, CLIENT, timeout=300)  # the score node alone: it is an output node
    assert entry["status"]["status_str"] == "success", entry["status"]["messages"]
    [block] = entry["outputs"]["3"]["myspinbot_quality"]
    assert block["skipped"]["code"] == "no_face_detected" and block["skipped"]["message"], block
    prompt["3"]["inputs"]["on_error"] = "fail"  # the default: the same video fails the run with the code
    entry = comfy_clone.run_prompt(prompt, CLIENT, timeout=300)
    assert entry["status"]["status_str"] == "error"
    error = next(m[1] for m in entry["status"]["messages"] if m[0] == "execution_error")
    assert error["exception_message"].startswith("[no_face_detected] ")
