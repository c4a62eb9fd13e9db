"""Tier 2: "MySpinBot Fine-tune F5-TTS Voice" inside a real ComfyUI (``main.py --cpu``).

The base is the tiny random F5-TTS of ``tiny_f5`` (its architecture in a model_config.yaml beside
the checkpoint) in the test ComfyUI's ``models/f5_tts``; the clips are the real recordings of the
fixtures ("Front left", "Front right") in a folder under ``input/`` with a ``metadata.csv``.
Two steps are trained, the voice clone node speaks with the result in the same prompt (the
fine-tune's COMBO output linked to its ``model``), the dropdown lists the new voice, and a second
run continues from the saved step.
"""

from __future__ import annotations

import re
import shutil
import threading

import numpy as np
import pytest
import requests
from safetensors import safe_open

pytest.importorskip("f5_tts", reason="f5-tts is not installed (python install.py --extras f5)")

from comfy_ws import WsWatcher  # noqa: E402
from myspinbot.speech import load_audio  # noqa: E402
from tiny_f5 import REF_TEXT, build_tiny_f5  # noqa: E402

CLIENT = "tier2-f5-finetune"
NAME = "tiny_voice"


@pytest.fixture(scope="module")
def comfy(comfy_clone, fixtures_dir):
    build_tiny_f5(comfy_clone.scratch / "base" / "models", vocos_bin=True, sidecar_config=True)
    clips = comfy_clone.input_dir / "f5_voice"
    clips.mkdir(exist_ok=True)
    shutil.copyfile(fixtures_dir / "speech_front_left.wav", clips / "left.wav")
    shutil.copyfile(fixtures_dir / "speech_front_right.wav", clips / "right.wav")
    (clips / "metadata.csv").write_text("left.wav|Front left\nright.wav|Front right\n", encoding="utf-8")
    shutil.copyfile(fixtures_dir / "speech_front_left.wav", comfy_clone.input_dir / "f5ft_ref.wav")
    return comfy_clone


def prompt(steps: int, *, clone: bool = True) -> dict:
    nodes = {
        "1": {"class_type": "MySpinBotFineTuneF5Voice", "inputs": {
            "base_model": "F5TTS_v1_Base", "output_name": NAME, "folder": "f5_voice", "steps": steps,
            "learning_rate": 0.001, "batch_frames": 200, "seed": 3, "save_every": 1, "resume": True,
            "weights": "online"}},
        "2": {"class_type": "PreviewAny", "inputs": {"source": ["1", 4]}},
    }
    if clone:
        nodes["3"] = {"class_type": "LoadAudio", "inputs": {"audio": "f5ft_ref.wav"}}
        nodes["4"] = {"class_type": "MySpinBotVoiceCloneF5", "inputs": {
            "ref_audio": ["3", 0], "ref_text": REF_TEXT, "text": "Hello from the fine-tuned voice.", "speed": 1.0,
            "seed": 1, "cross_fade": 0.15, "nfe_steps": 4, "model": ["1", 0]}}
        nodes["5"] = {"class_type": "SaveAudio", "inputs": {"audio": ["4", 0], "filename_prefix": "f5ft/clone"}}
    return nodes


def _voice_dir(comfy):
    return comfy.scratch / "base" / "models" / "f5_tts" / "myspinbot" / NAME


def _error(entry: dict) -> dict:
    return next((m[1] for m in entry["status"]["messages"] if m[0] == "execution_error"), {})


def _steps_saved(comfy) -> str:
    with safe_open(str(_voice_dir(comfy) / f"{NAME}.safetensors"), framework="pt") as f:
        return f.metadata()["steps"]


def test_fine_tunes_then_the_voice_clone_node_speaks_with_it_and_a_rerun_resumes(comfy):
    with WsWatcher(comfy.url, client_id=CLIENT) as ws:
        entry = comfy.run_prompt(prompt(2), CLIENT, timeout=900)
    assert entry["status"]["status_str"] == "success", entry["status"]["messages"]
    report = entry["outputs"]["2"]["text"][0]
    assert report.startswith("2 clips, 3.0 s of speech; trained steps 1-2, last loss "), report
    assert report.endswith(f"saved myspinbot/{NAME}"), report
    progress = [(m["data"]["value"], m["data"]["max"]) for m in ws.messages
                if m.get("type") == "progress" and m["data"].get("node") == "1"]
    assert progress[-1] == (2, 2), progress
    logged = re.findall(rf"myspinbot F5 fine-tune {NAME}: step (\d+)/2 loss (\S+)", comfy.log_text())
    assert [int(s) for s, _ in logged] == [1, 2] and all(np.isfinite(float(x)) for _, x in logged)

    folder = _voice_dir(comfy)
    assert {p.name for p in folder.iterdir()} >= {f"{NAME}.safetensors", "vocab.txt", "model_config.yaml", "train"}
    assert (folder / "train" / "model_last.pt").is_file()
    assert _steps_saved(comfy) == "2"
    saved = entry["outputs"]["5"]["audio"][0]
    samples, rate = load_audio(comfy.output_dir / saved["subfolder"] / saved["filename"])
    assert rate == 24000 and samples.shape[-1] > 0 and np.all(np.isfinite(samples))

    info = requests.get(comfy.url + "/object_info/MySpinBotVoiceCloneF5", timeout=30).json()
    options = info["MySpinBotVoiceCloneF5"]["input"]["required"]["model"][1]["options"]
    assert f"myspinbot/{NAME}" in options and "F5TTS_v1_Base" in options

    entry = comfy.run_prompt(prompt(3, clone=False), CLIENT, timeout=900)
    assert entry["status"]["status_str"] == "success", (_error(entry).get("exception_message"), "".join(_error(entry).get("traceback") or []))
    assert "trained steps 3-3" in entry["outputs"]["2"]["text"][0]
    assert _steps_saved(comfy) == "3"

    # the voice by name from the dropdown, as a saved workflow would hold it
    by_name = prompt(1)
    by_name["4"]["inputs"]["model"] = f"myspinbot/{NAME}"
    del by_name["1"], by_name["2"]
    entry = comfy.run_prompt(by_name, CLIENT, timeout=600)
    assert entry["status"]["status_str"] == "success", entry["status"]["messages"]


def test_bad_clips_fail_with_the_pack_error(comfy):
    bad = comfy.input_dir / "f5_voice_bad"
    bad.mkdir(exist_ok=True)
    shutil.copyfile(comfy.input_dir / "f5_voice" / "left.wav", bad / "left.wav")
    (bad / "metadata.csv").write_text("left.wav|Front ☃ left\n", encoding="utf-8")
    nodes = prompt(1, clone=False)
    nodes["1"]["inputs"].update(folder="f5_voice_bad", output_name="bad_voice")
    entry = comfy.run_prompt(nodes, CLIENT, timeout=600)
    assert entry["status"]["status_str"] == "error"
    error = _error(entry)
    assert error["exception_message"].startswith("[invalid_input] the transcript of clip 'left.wav'"), error


def test_cancel_stops_training_and_a_rerun_resumes_from_the_last_save(comfy):
    nodes = prompt(200, clone=False)
    nodes["1"]["inputs"].update(output_name="cancel_voice", resume=False)
    interrupted = threading.Event()

    def on_message(message: dict) -> None:
        if message.get("type") == "progress" and message["data"].get("node") == "1" \
                and message["data"]["value"] >= 3 and not interrupted.is_set():
            interrupted.set()
            requests.post(comfy.url + "/interrupt", json={}, timeout=10)

    with WsWatcher(comfy.url, client_id=CLIENT) as ws:
        ws.on_message = on_message
        entry = comfy.run_prompt(nodes, CLIENT, timeout=900)
    assert "execution_interrupted" in [m[0] for m in entry["status"]["messages"]], entry["status"]
    checkpoint = comfy.scratch / "base" / "models" / "f5_tts" / "myspinbot" / "cancel_voice" / "cancel_voice.safetensors"
    with safe_open(str(checkpoint), framework="pt") as f:
        saved = int(f.metadata()["steps"])
    assert 3 <= saved < 200  # saved every step, stopped long before the end

    nodes = prompt(saved + 1, clone=False)
    nodes["1"]["inputs"].update(output_name="cancel_voice", resume=True)
    entry = comfy.run_prompt(nodes, CLIENT, timeout=900)
    assert entry["status"]["status_str"] == "success", _error(entry).get("exception_message")
    assert f"trained steps {saved + 1}-{saved + 1}" in entry["outputs"]["2"]["text"][0]


def test_an_audio_batch_with_transcripts_is_a_dataset_too(comfy):
    nodes = prompt(1, clone=False)
    nodes["3"] = {"class_type": "LoadAudio", "inputs": {"audio": "f5ft_ref.wav"}}
    nodes["1"]["inputs"].update(folder="", audio=["3", 0], transcripts="Front left\n", output_name="audio_voice")
    entry = comfy.run_prompt(nodes, CLIENT, timeout=600)
    assert entry["status"]["status_str"] == "success", _error(entry).get("exception_message")
    assert entry["outputs"]["2"]["text"][0].startswith("1 clips, 1.5 s of speech; trained steps 1-1")
    nodes["1"]["inputs"]["transcripts"] = "Front left\nFront right\n"
    entry = comfy.run_prompt(nodes, CLIENT, timeout=600)
    assert "holds 1 clip(s) but 'transcripts' has 2 line(s)" in _error(entry)["exception_message"]
