"""Tier 2: the SadTalker nodes inside a real ComfyUI (``main.py --cpu``), driven by an API prompt.

Full-size random weights in the official layouts go into the test ComfyUI's
``models/sadtalker``: ``SadTalker_V0.0.2_256.safetensors`` (1,305 tensors, five prefixes,
``sadtalker_layout``) and ``mapping_00229-model.pth.tar`` (a training checkpoint with a
``mapping`` entry). The prompt is core ``LoadImage`` + ``LoadAudio`` -> Load SadTalker ->
SadTalker -> core ``SaveVideo`` (and ``PreviewAny`` for the coefficients), on the real portrait
and the 1.48 s speech fixture, with ``max_frames`` 2: the renderer costs tens of seconds per
256 px frame on this CPU. Random weights draw meaningless faces: this checks the plumbing
(strict loading through the node, model management, VIDEO output, progress, JSON).
"""

from __future__ import annotations

import json
import shutil

import pytest
from safetensors.torch import save_file
from sadtalker_layout import mapping_checkpoint, official_state

from comfy_ws import WsWatcher
from myspinbot.video.probe import probe_media

CLIENT = "tier2-sadtalker"
CHECKPOINT = "SadTalker_V0.0.2_256.safetensors"
MAPPING = "mapping_00229-model.pth.tar"


@pytest.fixture(scope="module")
def comfy(comfy_clone, fixtures_dir):
    models = comfy_clone.scratch / "base" / "models" / "sadtalker"
    models.mkdir(parents=True, exist_ok=True)
    save_file(official_state(seed=31), str(models / CHECKPOINT))
    mapping_checkpoint(models / MAPPING, 70, seed=32)
    shutil.copyfile(fixtures_dir / "portrait_astronaut.png", comfy_clone.input_dir / "sadtalker_portrait.png")
    shutil.copyfile(fixtures_dir / "speech_front_left.wav", comfy_clone.input_dir / "sadtalker_speech.wav")
    return comfy_clone


def sadtalker_prompt(**settings) -> dict:
    inputs = {"sadtalker": ["3", 0], "image": ["1", 0], "audio": ["2", 0], "size": "256", "preprocess": "crop",
              "still": False, "pose_style": 3, "expression_scale": 1.0, "seed": 7, "batch_size": 1, "max_frames": 2}
    inputs.update(settings)
    return {
        "1": {"class_type": "LoadImage", "inputs": {"image": "sadtalker_portrait.png"}},
        "2": {"class_type": "LoadAudio", "inputs": {"audio": "sadtalker_speech.wav"}},
        "3": {"class_type": "MySpinBotLoadSadTalker", "inputs": {"checkpoint": CHECKPOINT, "mapping": MAPPING}},
        "4": {"class_type": "MySpinBotSadTalker", "inputs": inputs},
        "5": {"class_type": "SaveVideo", "inputs": {"video": ["4", 0], "filename_prefix": "sadtalker/test",
                                                     "format": "mp4", "codec": "auto"}},
        "6": {"class_type": "PreviewAny", "inputs": {"source": ["4", 1]}},
    }


def test_portrait_and_speech_become_a_talking_head(comfy):
    progress: list[tuple[int, int]] = []

    def on_message(message: dict) -> None:
        if message.get("type") == "progress" and message["data"].get("node") == "4":
            progress.append((message["data"]["value"], message["data"]["max"]))

    with WsWatcher(comfy.url, client_id=CLIENT) as ws:
        ws.on_message = on_message
        entry = comfy.run_prompt(sadtalker_prompt(), CLIENT, timeout=900)
    assert entry["status"]["status_str"] == "success", entry["status"]["messages"]
    saved = sorted((comfy.output_dir / "sadtalker").glob("test*.mp4"))
    assert len(saved) == 1, saved
    info = probe_media(saved[0])
    assert info["video"]["frame_count"] == 2 and info["video"]["fps"] == pytest.approx(25.0)
    assert info["video"]["width"] == 256 and info["video"]["height"] % 2 == 0
    assert info["audio"] is not None and info["audio"]["duration_s"] == pytest.approx(0.08, abs=0.03)
    data = json.loads(entry["outputs"]["6"]["text"][0])
    assert data["frames"] == 2 and len(data["coeffs"]) == 2 and len(data["coeffs"][0]) == 70
    assert len(data["source_coeffs"]) == 73 and len(data["points"]) == 5
    assert progress and progress[-1] == (2, 2), progress


def test_full_mode_with_the_crop_mapping_is_refused(comfy):
    entry = comfy.run_prompt(sadtalker_prompt(preprocess="full"), CLIENT, timeout=600)
    assert entry["status"]["status_str"] == "error"
    error = next(m[1] for m in entry["status"]["messages"] if m[0] == "execution_error")
    assert error["exception_message"].startswith("[invalid_input]") and "mapping_00109" in error["exception_message"]


def test_landmark_source_is_an_optional_choice(comfy):
    import requests

    info = requests.get(comfy.url + "/object_info/MySpinBotSadTalker", timeout=30).json()["MySpinBotSadTalker"]
    spec = info["input"]["optional"]["landmarks"]
    assert spec[1]["default"] == "auto" and "landmarks" not in info["input"]["required"]
    assert spec[0] == ["auto", "mtcnn", "retinaface_fan"] or spec[1].get("options") == ["auto", "mtcnn", "retinaface_fan"]


def test_retinaface_fan_without_its_files_names_them(comfy):
    """models/facexlib is empty here: asking for the authors' landmarks is models_missing (auto,
    the default, used MTCNN in the test above)."""
    entry = comfy.run_prompt(sadtalker_prompt(landmarks="retinaface_fan"), CLIENT, timeout=600)
    assert entry["status"]["status_str"] == "error"
    error = next(m[1] for m in entry["status"]["messages"] if m[0] == "execution_error")
    message = error["exception_message"]
    assert message.startswith("[models_missing]") and "detection_Resnet50_Final.pth" in message
    assert "alignment_WFLW_4HG.pth" in message and "models/facexlib" in message
