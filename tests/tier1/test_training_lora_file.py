"""The character LoRA file (metadata, names, atomic save, base-model hash) and the trainer's
folder loader, without ComfyUI."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors import safe_open

from myspinbot.errors import InvalidInputError
from myspinbot.nodes._photos import iter_photos, list_folder_photos, read_photo
from myspinbot.training.lora_file import LoraMeta, load_lora, lora_rank, safe_name, save_lora, state_sha256

META = LoraMeta(trigger_word="zxq person", steps=40, target_steps=100, rank=8, dataset_size=24, base_model="SD15",
                base_model_sha256="ab" * 32, resolution=512, learning_rate=5e-4, seed=3, batch_size=2,
                captions=("a photo of zxq person", "zxq person, smiling"))


def _tensors() -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    return {"diffusion_model.out.2.lora_up.weight": torch.randn(4, 8, generator=g),
            "diffusion_model.out.2.lora_down.weight": torch.randn(8, 320, 3, 3, generator=g),
            "diffusion_model.out.2.alpha": torch.tensor(1.0),
            "diffusion_model.out.0.diff": torch.zeros(320),
            "diffusion_model.out.2.diff_b": torch.ones(4)}


def test_save_and_load_round_trip_with_metadata(tmp_path):
    path = save_lora(tmp_path / "loras" / "myspinbot" / "char.safetensors", _tensors(), META)
    assert path.exists() and not list(path.parent.glob("*.tmp"))
    tensors, meta = load_lora(path)
    assert meta == META
    assert set(tensors) == set(_tensors()) and all(torch.equal(tensors[k], v) for k, v in _tensors().items())
    with safe_open(str(path), framework="pt") as f:
        raw = f.metadata()
    assert raw["myspinbot.trigger_word"] == "zxq person" and raw["myspinbot.steps"] == "40"
    assert raw["myspinbot.base_model_sha256"] == "ab" * 32 and raw["myspinbot.dataset_size"] == "24"
    assert lora_rank(tensors) == 8


def test_a_save_replaces_the_previous_checkpoint(tmp_path):
    path = tmp_path / "c.safetensors"
    save_lora(path, _tensors(), META)
    save_lora(path, {k: v + 1 for k, v in _tensors().items()}, LoraMeta(**{**META.__dict__, "steps": 60}))
    tensors, meta = load_lora(path)
    assert meta.steps == 60 and torch.equal(tensors["diffusion_model.out.2.diff_b"], torch.full((4,), 2.0))


def test_a_lora_without_our_metadata_cannot_be_resumed(tmp_path):
    from safetensors.torch import save_file

    save_file(_tensors(), str(tmp_path / "other.safetensors"))
    with pytest.raises(InvalidInputError) as err:
        load_lora(tmp_path / "other.safetensors")
    assert "myspinbot.trigger_word" in str(err.value)
    (tmp_path / "broken.safetensors").write_bytes(b"nope")
    with pytest.raises(InvalidInputError):
        load_lora(tmp_path / "broken.safetensors")


def test_safe_name():
    assert safe_name("Eileen Collins") == "Eileen_Collins"
    assert safe_name("char.safetensors") == "char"
    assert safe_name("../../etc/passwd") == "_.._etc_passwd"
    for bad in ("", "   ", "///", "..."):
        with pytest.raises(InvalidInputError):
            safe_name(bad)


def test_state_sha256_sees_values_names_and_dtypes_not_order():
    a = {"w": torch.arange(6.0).reshape(2, 3), "b": torch.ones(3, dtype=torch.bfloat16)}
    base = state_sha256(a.items())
    assert base == state_sha256(reversed(list(a.items())))
    assert base != state_sha256({**a, "w": a["w"] + 1e-3}.items())
    assert base != state_sha256({"v": a["w"], "b": a["b"]}.items())
    assert base != state_sha256({**a, "b": a["b"].float()}.items())
    assert len(base) == 64


def test_folder_photos_in_name_order_and_outside_input_refused(tmp_path):
    folder = tmp_path / "input" / "photos"
    folder.mkdir(parents=True)
    Image.fromarray(np.full((20, 30, 3), 200, np.uint8)).save(folder / "b.png")
    Image.fromarray(np.full((10, 10), 50, np.uint8)).save(folder / "a.jpg")  # grey -> RGB
    (folder / "notes.txt").write_text("ignored")
    files = list_folder_photos(tmp_path / "input", "photos")
    assert [f.name for f in files] == ["a.jpg", "b.png"]
    photos = list(iter_photos(files))
    assert photos[0].shape == (10, 10, 3) and photos[1].shape == (20, 30, 3) and photos[0].dtype == np.uint8
    for bad in ("../", "/etc", "missing"):
        with pytest.raises(InvalidInputError):
            list_folder_photos(tmp_path / "input", bad)
    (tmp_path / "input" / "empty").mkdir()
    with pytest.raises(InvalidInputError):
        list_folder_photos(tmp_path / "input", "empty")
    (folder / "c.png").write_bytes(b"not a png")
    with pytest.raises(InvalidInputError, match="cannot read the photo c.png"):
        read_photo(folder / "c.png")

def test_optimizer_state_round_trip_continues_adamw_exactly(tmp_path):
    from myspinbot.nodes._lora_trainer import optimizer_tensors, restore_optimizer
    from myspinbot.training.lora_file import load_optimizer_state, optimizer_path, save_optimizer_state

    def params(seed: int) -> dict[str, torch.nn.Parameter]:
        g = torch.Generator().manual_seed(seed)
        return {"m.lora_up.weight": torch.nn.Parameter(torch.randn(3, 2, generator=g)),
                "m.diff_b": torch.nn.Parameter(torch.randn(3, generator=g))}

    def step(opt, sd, k: int) -> None:
        loss = sum(((p - k) ** 2).sum() for p in sd.values())
        opt.zero_grad()
        loss.backward()
        opt.step()

    sd = params(0)
    opt = torch.optim.AdamW(list(sd.values()), lr=0.1)
    for k in range(3):
        step(opt, sd, k)
    lora_path = tmp_path / "char.safetensors"
    save_optimizer_state(optimizer_path(lora_path), optimizer_tensors(opt, sd), steps=3)
    assert optimizer_path(lora_path).name == "char.optimizer"
    assert load_optimizer_state(optimizer_path(lora_path), steps=2) is None  # belongs to another save
    assert load_optimizer_state(tmp_path / "missing.optimizer", steps=3) is None
    saved = load_optimizer_state(optimizer_path(lora_path), steps=3)
    assert set(saved) == {f"{k}:{n}" for k in sd for n in ("step", "exp_avg", "exp_avg_sq")}

    with torch.inference_mode():  # as when ComfyUI's executor loads the file
        saved = load_optimizer_state(optimizer_path(lora_path), steps=3)
    resumed = {k: torch.nn.Parameter(v.detach().clone()) for k, v in sd.items()}
    opt2 = torch.optim.AdamW(list(resumed.values()), lr=0.1)
    assert restore_optimizer(opt2, resumed, saved) == 2
    for k in range(3, 5):
        step(opt, sd, k)
        step(opt2, resumed, k)
    assert all(torch.equal(sd[k], resumed[k]) for k in sd)
