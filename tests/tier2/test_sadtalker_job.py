"""The ``sadtalker`` pipeline through the job API of a real ComfyUI (CPU): the models preflight,
then a job on full-size random SadTalker weights.

Models, written into the ``comfy_clone`` models tree:

- ``sadtalker/SadTalker_V0.0.2_256.safetensors`` and the two mapping checkpoints
  (``mapping_00229`` / ``mapping_00109-model.pth.tar``: the manifest's ``sadtalker_mapping`` is
  both files, so the preflight asks for both): full-size random weights in the official layouts
  (``sadtalker_layout``, as in ``test_sadtalker_node.py``), under the manifest's file names, so
  the models preflight passes on them;
- ``upscale_models/tiny_esrgan_x2_sadtalker.pth``: a tiny random x2 ESRGAN (8 filters, 1 block),
  a file of the user's own (no preflight).

The job: the real portrait fixture (512 x 512, one frontal face) and a one-word script spoken by
espeak-ng ("Hi.", about 0.63 s: 15 frames), capped at ``max_frames`` 2 because the renderer
costs tens of seconds per 256 px frame on this CPU (the node cuts the speech to the frames it
renders); SadTalker at 256 px (crop), upscaled x2, stored in S3-compatible storage. Random
weights draw meaningless faces: this checks the plumbing (job -> workflow -> nodes -> MP4 ->
storage) and that the MP4 covers its speech.
"""

from __future__ import annotations

import shutil
import urllib.request
from pathlib import Path

import pytest
import requests
import torch
from safetensors.torch import save_file
from sadtalker_layout import mapping_checkpoint, official_state

from myspinbot.video import probe_media

pytestmark = [pytest.mark.tier2, pytest.mark.slow]

BUCKET = "myspinbot-tier2-sadtalker"
FPS = 25.0
FRAMES = 2


def _models_dir(comfy) -> Path:
    return comfy.scratch / "base" / "models"


def _portrait(fixtures_dir: Path) -> dict:
    return {"portrait": ("portrait.png", (fixtures_dir / "portrait_astronaut.png").read_bytes(), "image/png")}


@pytest.fixture(scope="module")
def sadtalker_models(comfy_clone) -> dict[str, str]:
    """The random SadTalker weights (manifest file names) and a tiny upscaler; returns the job
    parameters naming the upscaler."""
    folder = _models_dir(comfy_clone) / "sadtalker"
    folder.mkdir(parents=True, exist_ok=True)
    save_file(official_state(seed=41), str(folder / "SadTalker_V0.0.2_256.safetensors"))
    mapping_checkpoint(folder / "mapping_00229-model.pth.tar", 70, seed=42)
    mapping_checkpoint(folder / "mapping_00109-model.pth.tar", 73, seed=43)  # the manifest's model has both
    from spandrel.architectures.ESRGAN import ESRGAN

    upscale = _models_dir(comfy_clone) / "upscale_models" / "tiny_esrgan_x2_sadtalker.pth"
    upscale.parent.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(6)
    net = ESRGAN(in_nc=3, out_nc=3, num_filters=8, num_blocks=1, scale=2)
    torch.save({k: v.contiguous() for k, v in net.state_dict().items()}, upscale)
    yield {"upscale_model": upscale.name}
    shutil.rmtree(folder, ignore_errors=True)


def test_sadtalker_without_its_models_is_409_models_missing(comfy_clone, fixtures_dir):
    shutil.rmtree(_models_dir(comfy_clone) / "sadtalker", ignore_errors=True)
    r = requests.post(comfy_clone.url + "/myspinbot/jobs", files=_portrait(fixtures_dir), timeout=60,
                      data={"pipeline": "sadtalker", "script": "Hi.", "speech": "espeak", "upscale": "false"})
    assert r.status_code == 409, r.text
    error = r.json()["error"]
    assert error["code"] == "models_missing"
    assert set(error["details"]["missing"]) == {"sadtalker_256", "sadtalker_mapping"}, error
    assert "install.py --models" in error["details"]["fetch"]


def test_script_to_talking_head_upscaled_and_stored(comfy_clone, s3_standin, fixtures_dir, sadtalker_models,
                                                      tmp_path):
    data = {"pipeline": "sadtalker", "script": "Hi.", "speech": "espeak", "seed": "5", "pose_style": "7",
            "max_frames": str(FRAMES), "batch_size": str(FRAMES), "upscale": "true", "upscale_factor": "0",
            "upscale_model": sadtalker_models["upscale_model"], "storage": "true", "bucket": BUCKET}
    r = requests.post(comfy_clone.url + "/myspinbot/jobs", data=data, files=_portrait(fixtures_dir), timeout=60)
    assert r.status_code == 202, r.text
    done, stages = comfy_clone.wait_job_stages(r.json()["id"], timeout=900)
    assert done["status"] == "succeeded", f"{done}\n{comfy_clone.log_tail(60)}"
    assert "animate" in stages, stages

    [video] = done["outputs"]
    assert video["name"] == "video" and video["content_type"] == "video/mp4"
    body = requests.get(comfy_clone.url + video["url"], timeout=60)
    assert body.status_code == 200 and len(body.content) == video["size_bytes"]
    path = tmp_path / "sadtalker.mp4"
    path.write_bytes(body.content)
    info = probe_media(path)
    assert info["video_streams"] == 1 and info["audio_streams"] == 1, info
    assert info["video"]["codec"] == "h264" and info["audio"]["codec"] == "aac", info
    assert (info["video"]["width"], info["video"]["height"]) == (512, 512), info  # the 256 px face, x2
    assert info["video"]["frame_count"] == FRAMES, info
    # the speech, cut to the frames rendered, is muxed; the video covers it within one frame
    speech_s = info["audio"]["duration_s"]
    assert speech_s == pytest.approx(FRAMES / FPS, abs=0.03), info
    assert abs(info["video"]["duration_s"] - speech_s) <= 1.0 / FPS, info

    storage = video["storage"]
    assert storage["uri"].startswith(f"s3://{BUCKET}/"), storage
    with urllib.request.urlopen(storage["presigned_url"], timeout=30) as response:
        assert response.read() == path.read_bytes()


def test_speech_recording_still_full_portrait(comfy_clone, fixtures_dir, sadtalker_models, tmp_path):
    """A real recording ("Front left", 1.48 s) animated as is, capped at 2 frames, in still mode
    with ``preprocess=full`` (the 73-coefficient mapping; the face pasted back into the whole
    512 x 512 portrait); no upscaling, no storage (core's SaveVideo)."""
    files = {**_portrait(fixtures_dir),
             "speech_recording": ("speech.wav", (fixtures_dir / "speech_front_left.wav").read_bytes(), "audio/wav")}
    data = {"pipeline": "sadtalker", "preprocess": "full", "still": "true", "max_frames": "2", "batch_size": "2",
            "upscale": "false", "storage": "false"}
    r = requests.post(comfy_clone.url + "/myspinbot/jobs", data=data, files=files, timeout=60)
    assert r.status_code == 202, r.text
    done, _ = comfy_clone.wait_job_stages(r.json()["id"], timeout=900)
    assert done["status"] == "succeeded", f"{done}\n{comfy_clone.log_tail(60)}"
    [video] = done["outputs"]
    path = tmp_path / "sadtalker_full.mp4"
    path.write_bytes(requests.get(comfy_clone.url + video["url"], timeout=60).content)
    info = probe_media(path)
    assert (info["video"]["width"], info["video"]["height"]) == (512, 512), info  # the whole portrait
    assert info["video"]["frame_count"] == 2 and info["audio"]["duration_s"] == pytest.approx(2 / FPS, abs=0.03), info
    assert abs(info["video"]["duration_s"] - info["audio"]["duration_s"]) <= 1.0 / FPS, info
