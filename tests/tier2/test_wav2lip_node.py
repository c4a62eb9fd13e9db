"""Tier 2: the Wav2Lip and lip-sync score nodes inside a real ComfyUI (``main.py --cpu``), driven
by API prompts.

A full-size Wav2Lip generator with random weights is saved the way the authors' training
scripts save ``wav2lip.pth`` (``{"state_dict": {"module." + key: ...}, "optimizer", "global_step",
"global_epoch"}``) into the test ComfyUI's ``models/wav2lip``; its output is meaningless, but
the loading path, the cost and the shapes are the real ones. The prompt is core ``LoadImage``
+ ``LoadAudio`` -> Load Wav2Lip -> Lip Sync -> core ``SaveVideo`` (and ``PreviewAny`` for the
faceless-frames text), on the real portrait and the 1.48 s speech fixture. A full-size SyncNet
with random weights (a ``torch.save``'d state dict, as ``syncnet_v2.model``) goes into
``models/syncnet`` for the score node, which then scores the lip-synced video.
"""

from __future__ import annotations

import math
import shutil

import numpy as np
import pytest
import torch
from PIL import Image

from comfy_ws import WsWatcher
from myspinbot.lipsync import SyncNet, Wav2Lip
from myspinbot.video.probe import probe_media
from myspinbot.video.reader import iter_video_frames
from myspinbot.video.writer import Mp4Writer

CLIENT = "tier2-wav2lip"
MODEL = "random_wav2lip.pth"
SYNCNET = "random_syncnet.model"


@pytest.fixture(scope="module")
def comfy(comfy_clone, fixtures_dir):
    models = comfy_clone.scratch / "base" / "models" / "wav2lip"
    models.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(11)
    state = Wav2Lip().state_dict()
    torch.save({"state_dict": {"module." + k: v for k, v in state.items()},
                "optimizer": {"state": {}, "param_groups": [{"lr": 1e-4, "params": [0, 1]}]},
                "global_step": 1234, "global_epoch": 5}, models / MODEL)
    (models.parent / "syncnet").mkdir(exist_ok=True)
    torch.save(SyncNet().state_dict(), models.parent / "syncnet" / SYNCNET)
    shutil.copyfile(fixtures_dir / "portrait_astronaut.png", comfy_clone.input_dir / "lipsync_portrait.png")
    shutil.copyfile(fixtures_dir / "speech_front_left.wav", comfy_clone.input_dir / "lipsync_speech.wav")
    Image.fromarray(np.full((128, 128, 3), 90, np.uint8)).save(comfy_clone.input_dir / "lipsync_wall.png")
    portrait = np.array(Image.open(fixtures_dir / "portrait_astronaut.png").convert("RGB"))
    with Mp4Writer(comfy_clone.input_dir / "lipsync_clip.mp4", 512, 512, 25.0, crf=4) as writer:
        for i in range(10):  # 0.4 s of the portrait, its frame index as a grey corner
            frame = portrait.copy()
            frame[:32, :32] = 20 * i
            writer.write(frame)
    return comfy_clone


def lipsync_prompt(image: str, model: str = MODEL, prefix: str = "lipsync/test") -> dict:
    return {
        "1": {"class_type": "LoadImage", "inputs": {"image": image}},
        "2": {"class_type": "LoadAudio", "inputs": {"audio": "lipsync_speech.wav"}},
        "3": {"class_type": "MySpinBotLoadWav2Lip", "inputs": {"model_name": model}},
        "4": {"class_type": "MySpinBotLipSyncWav2Lip", "inputs": {
            "wav2lip": ["3", 0], "audio": ["2", 0], "images": ["1", 0],
            "batch_size": 8, "pad_bottom": 10, "loop": "loop", "fps": 25.0}},
        "5": {"class_type": "SaveVideo", "inputs": {"video": ["4", 0], "filename_prefix": prefix,
                                                     "format": "mp4", "codec": "auto"}},
        "6": {"class_type": "PreviewAny", "inputs": {"source": ["4", 1]}},
    }


def _error(entry: dict) -> dict:
    return next(m[1] for m in entry["status"]["messages"] if m[0] == "execution_error")


def test_portrait_and_speech_become_an_mp4_covering_the_audio(comfy, fixtures_dir):
    progress: list[tuple[int, int]] = []

    def on_message(message: dict) -> None:
        if message.get("type") == "progress" and message["data"].get("node") == "4":
            progress.append((message["data"]["value"], message["data"]["max"]))

    with WsWatcher(comfy.url, client_id=CLIENT) as ws:
        ws.on_message = on_message
        entry = comfy.run_prompt(lipsync_prompt("lipsync_portrait.png"), CLIENT, timeout=600)
    assert entry["status"]["status_str"] == "success", entry["status"]["messages"]
    saved = sorted((comfy.output_dir / "lipsync").glob("test*.mp4"))
    assert len(saved) == 1, saved
    info = probe_media(saved[0])
    audio_s = probe_media(fixtures_dir / "speech_front_left.wav")["audio"]["duration_s"]
    video = info["video"]
    assert (video["width"], video["height"]) == (512, 512) and video["fps"] == pytest.approx(25.0)
    assert video["frame_count"] == math.ceil(audio_s * 25.0) == 38  # 1.48004 s
    assert abs(video["frame_count"] / 25.0 - audio_s) <= 1 / 25.0  # covers the audio within one frame
    assert info["audio"] is not None and info["audio"]["duration_s"] == pytest.approx(audio_s, abs=0.05)
    text = entry["outputs"]["6"]["text"][0]
    assert text == "0 of 38 frames without a face: every frame was lip-synced"
    assert progress and progress[-1] == (38, 38), progress  # one step per batch of 8
    assert [v for v, _ in progress] == sorted(v for v, _ in progress) and len(progress) >= 5
    made = list(comfy.temp_dir.rglob("myspinbot/lipsync_*"))  # ComfyUI's temp folder (<temp-directory>/temp)
    assert made and {p.suffix for p in made} == {".mp4"}, made  # outputs only: temporary inputs and spools are gone
    assert not [p for p in made if p.name.startswith("lipsync_in")], made


def test_lip_synced_video_is_scored(comfy):  # right after the first test: ComfyUI reuses its lip sync
    prompt = lipsync_prompt("lipsync_portrait.png", prefix="lipsync/scored")
    prompt["7"] = {"class_type": "MySpinBotLipSyncScore", "inputs": {
        "video": ["4", 0], "syncnet_model": SYNCNET, "vshift": 15, "detect_every": 5, "batch_size": 20}}
    for node, output in (("8", 0), ("9", 1), ("10", 2), ("11", 4)):
        prompt[node] = {"class_type": "PreviewAny", "inputs": {"source": ["7", output]}}
    prompt["12"] = {"class_type": "SaveImage", "inputs": {"images": ["7", 3], "filename_prefix": "lipsync/curve"}}
    entry = comfy.run_prompt(prompt, CLIENT, timeout=600)
    assert entry["status"]["status_str"] == "success", entry["status"]["messages"]
    text = {node: entry["outputs"][node]["text"][0] for node in ("8", "9", "10", "11")}
    offset, lse_d, lse_c = int(text["8"]), float(text["9"]), float(text["10"])
    assert -15 <= offset <= 15 and lse_d > 0 and lse_c >= 0  # random weights: any offset
    assert text["11"].startswith(f"offset {offset:+d} frames, LSE-D ")
    assert "32 windows (38 frames at 25 fps" in text["11"]  # min(38 frames, 23681 samples // 640) - 5
    quality = entry["outputs"]["7"]["myspinbot_quality"]  # the block the job service can read from history
    assert len(quality) == 1 and quality[0]["metric"] == "syncnet" and quality[0]["model"] == SYNCNET
    assert (quality[0]["offset_frames"], quality[0]["windows"], quality[0]["frames"]) == (offset, 32, 38)
    assert quality[0]["lse_d"] == pytest.approx(lse_d, abs=1e-3) and len(quality[0]["conf_per_second"]) == 2
    saved = entry["outputs"]["12"]["images"][0]
    with Image.open(comfy.output_dir / saved["subfolder"] / saved["filename"]) as curve:
        assert curve.size == (720, 400)


def test_short_video_is_played_ping_pong(comfy):
    prompt = lipsync_prompt("lipsync_portrait.png", prefix="lipsync/clip")
    prompt["1"] = {"class_type": "LoadVideo", "inputs": {"file": "lipsync_clip.mp4"}}
    prompt["4"]["inputs"].pop("images")
    prompt["4"]["inputs"].update(video=["1", 0], loop="ping_pong")
    entry = comfy.run_prompt(prompt, CLIENT, timeout=600)
    assert entry["status"]["status_str"] == "success", entry["status"]["messages"]
    saved = sorted((comfy.output_dir / "lipsync").glob("clip*.mp4"))
    assert len(saved) == 1 and probe_media(saved[0])["video"]["frame_count"] == 38
    marks = [int(round(float(f[8:24, 8:24].mean()) / 20)) for f in iter_video_frames(saved[0])]
    assert marks[:20] == [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0, 1]


def test_no_face_is_no_face_detected(comfy):
    entry = comfy.run_prompt(lipsync_prompt("lipsync_wall.png", prefix="lipsync/wall"), CLIENT, timeout=300)
    assert entry["status"]["status_str"] == "error"
    error = _error(entry)
    assert error["node_type"] == "MySpinBotLipSyncWav2Lip"
    assert error["exception_message"].startswith("[no_face_detected] no face found in the image")


def test_missing_official_checkpoint_names_the_file_and_the_fetch_command(comfy):
    entry = comfy.run_prompt(lipsync_prompt("lipsync_portrait.png", model="wav2lip_gan.pth"), CLIENT, timeout=300)
    assert entry["status"]["status_str"] == "error"
    error = _error(entry)
    assert error["node_type"] == "MySpinBotLoadWav2Lip"
    message = error["exception_message"]
    assert message.startswith("[models_missing]") and "wav2lip_gan.pth" in message
    assert "python install.py --models wav2lip_gan" in message and "non-commercial" in message


def test_missing_syncnet_names_the_fetch_command(comfy):
    prompt = {
        "1": {"class_type": "LoadVideo", "inputs": {"file": "lipsync_clip.mp4"}},
        "2": {"class_type": "MySpinBotLipSyncScore", "inputs": {
            "video": ["1", 0], "syncnet_model": "syncnet_v2.model", "vshift": 15, "detect_every": 5, "batch_size": 20}},
        "3": {"class_type": "PreviewAny", "inputs": {"source": ["2", 4]}},
    }
    entry = comfy.run_prompt(prompt, CLIENT, timeout=300)
    error = _error(entry)
    assert error["node_type"] == "MySpinBotLipSyncScore"
    assert error["exception_message"].startswith("[models_missing]")
    assert "python install.py --models syncnet_v2" in error["exception_message"]
