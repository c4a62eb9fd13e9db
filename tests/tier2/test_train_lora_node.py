"""Tier 2: "MySpinBot Train Character LoRA" inside a real ComfyUI (``main.py --cpu``), driven by
API prompts.

The base model is a tiny random SD1.5-architecture checkpoint (``tiny_sd15.py``: core's model
detection takes it for SD1.5, one UNet level, full CLIP-L text encoder, TAESD VAE) in the test
ComfyUI's ``models/checkpoints``, loaded by core's ``CheckpointLoaderSimple``. The photos are
the real portrait fixture (as an IMAGE from core's ``LoadImage``) plus a folder under
``input/``: the portrait cut 40 px lower (another framing: kept), cut 60 px from the left
(the same face crop: a near-duplicate) and a plain gradient (no face); flips on. Training
runs at 64 px in fp32 for a few steps: the loss is finite, the LoRA loads with core's
``LoraLoader`` (every key used), changes a 1-step ``KSampler`` result at strength 1 and not
at strength 0; a run interrupted mid-training resumes from its last saved step (tensors and
AdamW state).
"""

from __future__ import annotations

import re
import shutil
import threading

import numpy as np
import pytest
import requests
import torch
from PIL import Image
from safetensors import safe_open
from safetensors.torch import load_file

from comfy_ws import WsWatcher
from tiny_sd15 import FILE_NAME, build_tiny_sd15

CLIENT = "tier2-train-lora"
TRIGGER = "zxq person"


@pytest.fixture(scope="module")
def comfy(comfy_clone, fixtures_dir):
    build_tiny_sd15(comfy_clone.scratch / "base" / "models" / "checkpoints" / FILE_NAME)
    portrait = np.array(Image.open(fixtures_dir / "portrait_astronaut.png").convert("RGB"))
    shutil.copyfile(fixtures_dir / "portrait_astronaut.png", comfy_clone.input_dir / "lora_portrait.png")
    photos = comfy_clone.input_dir / "lora_photos"
    photos.mkdir(exist_ok=True)
    Image.fromarray(portrait[40:]).save(photos / "a_lower.png")
    Image.fromarray(portrait[:, 60:]).save(photos / "b_left.png")
    ramp = np.linspace(0, 255, 320, dtype=np.float32)
    gradient = np.stack([np.tile(ramp, (240, 1)), np.tile(ramp[:240, None], (1, 320)), np.full((240, 320), 90.0)], -1)
    Image.fromarray(gradient.astype(np.uint8)).save(photos / "c_gradient.png")
    (comfy_clone.input_dir / "lora_noface").mkdir(exist_ok=True)
    Image.fromarray(gradient.astype(np.uint8)).save(comfy_clone.input_dir / "lora_noface" / "wall.png")
    return comfy_clone


def train_prompt(name: str, steps: int, *, resume: str = "[None]", save_every: int = 2, folder: str = "lora_photos",
                 batch_size: int = 2, checkpointing: bool = True) -> dict:
    return {
        "1": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": FILE_NAME}},
        "2": {"class_type": "LoadImage", "inputs": {"image": "lora_portrait.png"}},
        "3": {"class_type": "MySpinBotTrainCharacterLora", "inputs": {
            "model": ["1", 0], "clip": ["1", 1], "vae": ["1", 2], "trigger_word": TRIGGER, "lora_name": name,
            "images": ["2", 0], "folder": folder, "captions": "", "steps": steps, "learning_rate": 0.005, "rank": 4,
            "batch_size": batch_size, "resolution": 64, "seed": 7, "flip": True, "margin": 0.6,
            "save_every": save_every, "resume_from": resume, "training_dtype": "fp32",
            "gradient_checkpointing": checkpointing}},
        "4": {"class_type": "PreviewAny", "inputs": {"source": ["3", 3]}},
    }


def sample_prompt(lora: str) -> dict:
    """One KSampler step of the base model, of the model + LoRA at strength 1 and at strength 0."""
    prompt = {
        "1": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": FILE_NAME}},
        "2": {"class_type": "EmptyLatentImage", "inputs": {"width": 64, "height": 64, "batch_size": 1}},
    }
    for tag, strength in (("base", None), ("one", 1.0), ("zero", 0.0)):
        model, clip = ["1", 0], ["1", 1]
        if strength is not None:
            prompt[f"lora_{tag}"] = {"class_type": "LoraLoader", "inputs": {
                "model": model, "clip": clip, "lora_name": lora, "strength_model": strength, "strength_clip": strength}}
            model, clip = [f"lora_{tag}", 0], [f"lora_{tag}", 1]
        prompt[f"text_{tag}"] = {"class_type": "CLIPTextEncode", "inputs": {"clip": clip, "text": f"a photo of {TRIGGER}"}}
        prompt[f"sample_{tag}"] = {"class_type": "KSampler", "inputs": {
            "model": model, "positive": [f"text_{tag}", 0], "negative": [f"text_{tag}", 0], "latent_image": ["2", 0],
            "seed": 3, "steps": 1, "cfg": 1.0, "sampler_name": "euler", "scheduler": "normal", "denoise": 1.0}}
        prompt[f"save_{tag}"] = {"class_type": "SaveLatent", "inputs": {
            "samples": [f"sample_{tag}", 0], "filename_prefix": f"lora_check/{tag}"}}
    return prompt


def _error(entry: dict) -> dict:
    return next(m[1] for m in entry["status"]["messages"] if m[0] == "execution_error")


def _meta(path) -> dict:
    with safe_open(str(path), framework="pt") as f:
        return f.metadata()


def _lora_file(comfy, name: str):
    return comfy.scratch / "base" / "models" / "loras" / "myspinbot" / f"{name}.safetensors"


def _train_progress(messages: list[dict]) -> list[tuple[int, int]]:
    return [(m["data"]["value"], m["data"]["max"]) for m in messages
            if m.get("type") == "progress" and m["data"].get("node") == "3"]


def test_trains_saves_and_the_lora_changes_the_model_only_at_strength_one(comfy):
    with WsWatcher(comfy.url, client_id=CLIENT) as ws:
        entry = comfy.run_prompt(train_prompt("char_test", 4), CLIENT, timeout=900)
    assert entry["status"]["status_str"] == "success", entry["status"]["messages"]
    report = entry["outputs"]["4"]["text"][0]
    lines = report.splitlines()
    assert lines[0] == "2 of 4 photos kept, 4 training images (with mirrored copies)", report
    assert lines[1].startswith("dropped b_left.png: near-duplicate of image 1"), report
    assert lines[2].startswith("dropped c_gradient.png: no face found"), report
    loss = float(re.search(r"last loss ([0-9.eE+-]+|nan|inf)", report).group(1))
    assert np.isfinite(loss), report
    assert _train_progress(ws.messages)[-1] == (4, 4)
    steps_logged = re.findall(r"myspinbot LoRA myspinbot/char_test\.safetensors: step (\d+)/4 loss (\S+)", comfy.log_text())
    assert [int(s) for s, _ in steps_logged] == [1, 2, 3, 4] and all(np.isfinite(float(x)) for _, x in steps_logged)

    path = _lora_file(comfy, "char_test")
    meta = _meta(path)
    assert meta["myspinbot.trigger_word"] == TRIGGER and meta["myspinbot.steps"] == "4"
    assert meta["myspinbot.rank"] == "4" and meta["myspinbot.dataset_size"] == "4"
    assert meta["myspinbot.base_model"] == "SD15" and re.fullmatch(r"[0-9a-f]{64}", meta["myspinbot.base_model_sha256"])
    tensors = load_file(str(path))
    assert all(k.startswith("diffusion_model.") for k in tensors)
    assert all(torch.isfinite(v).all() for v in tensors.values())
    downs = [k for k in tensors if k.endswith(".lora_down.weight")]
    assert downs and all(tensors[k].shape[0] == 4 for k in downs)

    log_before = len(comfy.log_text())
    entry = comfy.run_prompt(sample_prompt("myspinbot/char_test.safetensors"), CLIENT, timeout=600)
    assert entry["status"]["status_str"] == "success", entry["status"]["messages"]
    assert "lora key not loaded" not in comfy.log_text()[log_before:]
    latents = {}
    for tag in ("base", "one", "zero"):
        (found,) = sorted((comfy.output_dir / "lora_check").glob(f"{tag}_*.latent"))
        latents[tag] = load_file(str(found))["latent_tensor"].float()
    assert torch.isfinite(latents["one"]).all()
    assert torch.equal(latents["zero"], latents["base"])
    assert (latents["one"] - latents["base"]).abs().max() > 1e-4


def test_an_existing_name_is_refused_and_photos_without_a_face_are_reported(comfy):
    _lora_file(comfy, "taken").parent.mkdir(parents=True, exist_ok=True)
    _lora_file(comfy, "taken").write_bytes(b"not touched")
    entry = comfy.run_prompt(train_prompt("taken", 2), CLIENT, timeout=300)
    assert entry["status"]["status_str"] == "error"
    assert "[invalid_input] myspinbot/taken.safetensors exists" in _error(entry)["exception_message"]
    assert _lora_file(comfy, "taken").read_bytes() == b"not touched"

    prompt = train_prompt("faceless", 2, folder="lora_noface")
    prompt["2"] = {"class_type": "EmptyImage", "inputs": {"width": 96, "height": 96, "batch_size": 1, "color": 0}}
    entry = comfy.run_prompt(prompt, CLIENT, timeout=300)
    assert entry["status"]["status_str"] == "error"
    message = _error(entry)["exception_message"]
    assert message.startswith("[invalid_input] no photo is usable for training")
    assert "dropped image 1: no face found" in message and "dropped wall.png: no face found" in message
    assert not _lora_file(comfy, "faceless").exists()


def test_an_interrupted_run_resumes_from_its_last_saved_step(comfy):
    name, total = "char_resume", 6
    interrupted = threading.Event()

    def on_message(message: dict) -> None:
        if (message.get("type") == "progress" and message["data"].get("node") == "3"
                and message["data"]["value"] >= 3 and not interrupted.is_set()):
            interrupted.set()
            requests.post(comfy.url + "/interrupt", timeout=10)

    with WsWatcher(comfy.url, client_id=CLIENT) as ws:
        ws.on_message = on_message
        entry = comfy.run_prompt(train_prompt(name, total, batch_size=1, checkpointing=False), CLIENT, timeout=900)
    assert interrupted.is_set()
    assert entry["status"]["status_str"] == "error"
    assert any(m[0] == "execution_interrupted" for m in entry["status"]["messages"]), entry["status"]["messages"]
    saved = int(_meta(_lora_file(comfy, name))["myspinbot.steps"])
    assert saved in (2, 4), saved  # the last multiple of save_every reached before the interrupt
    optimizer_file = _lora_file(comfy, name).with_suffix(".optimizer")
    assert _meta(optimizer_file)["myspinbot.steps"] == str(saved)  # AdamW's moments, saved with the tensors
    assert f"myspinbot/{name}.optimizer" not in requests.get(comfy.url + "/models/loras", timeout=10).json()

    with WsWatcher(comfy.url, client_id=CLIENT) as ws:
        entry = comfy.run_prompt(train_prompt(name, total, batch_size=1, checkpointing=False,
                                              resume=f"myspinbot/{name}.safetensors"), CLIENT, timeout=900)
    assert entry["status"]["status_str"] == "success", entry["status"]["messages"]
    report = entry["outputs"]["4"]["text"][0]
    assert f"trained steps {saved + 1}-{total}" in report, report
    assert _train_progress(ws.messages)[-1] == (total - saved, total - saved)  # only the remaining steps ran
    steps_logged = re.findall(rf"myspinbot LoRA myspinbot/{name}\.safetensors: step (\d+)/{total}", comfy.log_text())
    assert [int(s) for s in steps_logged][-(total - saved):] == list(range(saved + 1, total + 1))
    assert "myspinbot LoRA: optimizer state restored for" in comfy.log_text()
    meta = _meta(_lora_file(comfy, name))
    assert meta["myspinbot.steps"] == str(total) and meta["myspinbot.target_steps"] == str(total)
    assert all(torch.isfinite(v).all() for v in load_file(str(_lora_file(comfy, name))).values())
