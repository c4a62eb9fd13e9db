"""The F5-TTS voice clone node inside a real ComfyUI, on tiny random F5-TTS and Vocos models
placed in ComfyUI's models/ folder (the loading code of the real checkpoint; the tiny
architecture comes from a model_config.yaml beside it, as for a custom fine-tune)."""

from __future__ import annotations

import shutil
import threading
import time
import uuid

import pytest
import requests

pytest.importorskip("f5_tts", reason="f5-tts is not installed (python install.py --extras f5)")

from comfy_ws import WsWatcher  # noqa: E402
from myspinbot.speech import load_audio  # noqa: E402
from tiny_f5 import LONG_TEXT, REF_TEXT, build_tiny_f5, expected_length  # noqa: E402

CLIENT = "tier2-f5"


@pytest.fixture(scope="module")
def f5_ready(comfy_clone, fixtures_dir):
    build_tiny_f5(comfy_clone.scratch / "base" / "models", vocos_bin=True, sidecar_config=True)
    shutil.copyfile(fixtures_dir / "speech_front_left.wav", comfy_clone.input_dir / "f5_ref.wav")
    return comfy_clone


def clone_prompt(text: str, seed: int = 5) -> dict:
    return {
        "1": {"class_type": "LoadAudio", "inputs": {"audio": "f5_ref.wav"}},
        "2": {"class_type": "MySpinBotVoiceCloneF5", "inputs": {
            "ref_audio": ["1", 0], "ref_text": REF_TEXT, "text": text, "speed": 1.0, "seed": seed,
            "cross_fade": 0.15, "nfe_steps": 4, "model": "F5TTS_v1_Base"}},
        "3": {"class_type": "SaveAudio", "inputs": {"audio": ["2", 0], "filename_prefix": f"f5test/{uuid.uuid4().hex[:8]}"}},
    }


def test_node_returns_24khz_audio_of_the_expected_length(f5_ready, fixtures_dir):
    comfy = f5_ready
    text = "Hello there, this is the voice clone node speaking."
    entry = comfy.run_prompt(clone_prompt(text), CLIENT)
    assert entry["status"]["status_str"] == "success", entry["status"]["messages"]
    saved = entry["outputs"]["3"]["audio"][0]
    samples, rate = load_audio(comfy.output_dir / saved["subfolder"] / saved["filename"])
    assert rate == 24000
    want, chunks = expected_length(load_audio(fixtures_dir / "speech_front_left.wav"), text, 1.0, 0.15)
    assert abs(samples.shape[-1] - want) <= 2 * 256 * len(chunks), (samples.shape, want)


def test_long_text_is_chunked_with_progress_and_an_interrupt_stops_it(f5_ready):
    comfy = f5_ready
    progress: list[tuple[int, int]] = []
    interrupted = threading.Event()

    def on_message(message: dict) -> None:
        if message.get("type") == "progress" and message["data"].get("node") == "2":
            progress.append((message["data"]["value"], message["data"]["max"]))
            if message["data"]["value"] >= 2 and not interrupted.is_set():
                interrupted.set()
                requests.post(comfy.url + "/interrupt", json={}, timeout=10)

    with WsWatcher(comfy.url, client_id=CLIENT) as ws:
        ws.on_message = on_message
        entry = comfy.run_prompt(clone_prompt(LONG_TEXT, seed=9), CLIENT)
    events = [m[0] for m in entry["status"]["messages"]]
    assert "execution_interrupted" in events, entry["status"]
    assert interrupted.is_set()
    totals = {total for _, total in progress}
    assert len(totals) == 1 and totals.pop() >= 4, progress  # one bar over all chunks of the 40 sentences
    assert [v for v, _ in progress][:2] == [1, 2], progress
    assert max(v for v, _ in progress) < max(t for _, t in progress)  # stopped before the last chunk


def test_unloading_models_after_a_clone_keeps_comfyui_working(f5_ready):
    """POST /free with unload_models after a voice clone run: ComfyUI unloads the F5 patcher (its
    ON_DETACH drops the engine's cache entry) and the next prompt still runs."""
    comfy = f5_ready
    entry = comfy.run_prompt(clone_prompt("Hello there."), CLIENT)
    assert entry["status"]["status_str"] == "success", entry["status"]["messages"]
    before = len(comfy.log_text())
    requests.post(comfy.url + "/free", json={"unload_models": True, "free_memory": True}, timeout=10)
    time.sleep(2)  # the prompt worker handles the flag when it wakes, before it takes the next prompt
    entry = comfy.run_prompt(clone_prompt("Hello again.", seed=6), CLIENT, timeout=120)
    assert entry["status"]["status_str"] == "success", entry["status"]["messages"]
    assert "IndexError" not in comfy.log_text()[before:]
