"""Tier 1: the SyncNet towers and their strict loader (``lipsync.syncnet*``), random weights.

The official ``syncnet_v2.model`` is a ``torch.save``'d state dict of joonson/syncnet_python's
``SyncNetModel.S``; it is written here in that layout (zip and legacy format, with and
without the ``num_batches_tracked`` counters an old PyTorch did not save) and as
``.safetensors``, and must load with every key; damaged or pickled-code files are refused
with the key or the reason named.
"""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import save_file

from myspinbot.errors import InvalidInputError, ModelsMissingError
from myspinbot.lipsync import InvalidModelError, SyncNet, load_syncnet

PARAMS = 13_631_616  # ~52 MB in float32, the size of syncnet_v2.model


def randomize(model: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """Random weights and batch-norm statistics (a fresh model's are 0 / 1)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, t in model.state_dict().items():
            if name.endswith("running_var"):
                t.copy_(torch.rand(t.shape, generator=g) + 0.5)
            elif name.endswith("num_batches_tracked"):
                t.fill_(77)
            elif t.is_floating_point():
                t.copy_((torch.rand(t.shape, generator=g) - 0.5) * (0.2 if t.ndim > 1 else 0.4))
    return model.eval()


@pytest.fixture(scope="module")
def net() -> SyncNet:
    return randomize(SyncNet(), 3)


@pytest.fixture(scope="module")
def state(net) -> dict[str, torch.Tensor]:
    return {k: v.clone().contiguous() for k, v in net.state_dict().items()}


def test_layout_of_the_official_model(net):
    shapes = {k: tuple(v.shape) for k, v in net.state_dict().items()}
    assert len(shapes) == 102 and sum(p.numel() for p in net.parameters()) == PARAMS
    assert shapes["netcnnaud.0.weight"] == (64, 1, 3, 3)
    assert shapes["netcnnaud.18.weight"] == (512, 256, 5, 4)
    assert shapes["netcnnaud.19.running_var"] == (512,)
    assert shapes["netfcaud.1.running_mean"] == (512,) and shapes["netfcaud.3.weight"] == (1024, 512)
    assert shapes["netcnnlip.0.weight"] == (96, 3, 5, 7, 7)
    assert shapes["netcnnlip.4.weight"] == (256, 96, 1, 5, 5)
    assert shapes["netcnnlip.18.weight"] == (512, 256, 1, 6, 6)
    assert shapes["netfclip.0.weight"] == (512, 512) and shapes["netfclip.3.bias"] == (1024,)
    assert "netcnnaud.3.weight" not in shapes  # index 3 is a max-pool: no weights


def test_towers_output_embeddings(net):
    with torch.no_grad():
        a = net.forward_audio(torch.randn(3, 1, 13, 20))
        v = net.forward_video(torch.rand(2, 3, 5, 224, 224) * 255)
    assert a.shape == (3, 1024) and v.shape == (2, 1024)
    assert torch.isfinite(a).all() and torch.isfinite(v).all()
    with pytest.raises(InvalidInputError):
        net.forward_audio(torch.randn(3, 1, 13, 21))
    with pytest.raises(InvalidInputError):
        net.forward_video(torch.randn(1, 3, 4, 224, 224))


@pytest.mark.parametrize("kind", ["zip", "legacy", "no_counters", "safetensors", "prefixed"])
def test_official_layouts_load_every_key(kind, net, state, tmp_path):
    path = tmp_path / ("syncnet.safetensors" if kind == "safetensors" else "syncnet_v2.model")
    if kind == "safetensors":
        save_file(state, str(path))
    elif kind == "legacy":
        torch.save(state, path, _use_new_zipfile_serialization=False)
    elif kind == "no_counters":
        torch.save({k: v for k, v in state.items() if not k.endswith("num_batches_tracked")}, path)
    elif kind == "prefixed":
        torch.save({"state_dict": {"module." + k: v for k, v in state.items()}}, path)
    else:
        torch.save(state, path)
    model = load_syncnet(path)
    assert not model.training and not any(p.requires_grad for p in model.parameters())
    x = torch.randn(2, 1, 13, 20)
    with torch.no_grad():
        assert torch.equal(model.forward_audio(x), net.forward_audio(x))
    loaded = model.state_dict()
    for k, v in state.items():
        if kind == "no_counters" and k.endswith("num_batches_tracked"):
            continue
        assert torch.equal(loaded[k], v), k


def _refused(path) -> InvalidModelError:
    with pytest.raises(InvalidModelError) as info:
        load_syncnet(path)
    assert info.value.code == "invalid_model" and str(info.value).startswith("[invalid_model] ")
    return info.value


def test_missing_unexpected_and_reshaped_keys_are_named(state, tmp_path):
    damaged = dict(state)
    del damaged["netcnnlip.15.running_mean"]
    damaged["netfcaud.3.weight"] = torch.zeros(512, 512)
    damaged["__S__.extra"] = torch.zeros(1)
    path = tmp_path / "damaged.model"
    torch.save(damaged, path)
    err = _refused(path)
    assert "SyncNet (syncnet_v2)" in str(err)
    assert err.details["missing"] == ["netcnnlip.15.running_mean"]
    assert err.details["unexpected"] == ["__S__.extra"]
    assert err.details["reshaped"] == ["netfcaud.3.weight: file [512, 512] vs model [1024, 512]"]


def test_a_pickled_module_is_refused_weights_only(tmp_path):
    path = tmp_path / "whole_model.model"
    torch.save(torch.nn.Linear(2, 2), path)  # what SyncNetModel.save() writes: the module itself
    err = _refused(path)
    assert "cannot be read weights-only" in str(err) and "safetensors" in str(err)
    assert err.details["refused_global"].startswith("torch.nn")


def test_unreadable_and_missing_files(tmp_path):
    junk = tmp_path / "junk.model"
    junk.write_bytes(b"<html>302 Found</html>")
    assert "not a readable PyTorch checkpoint" in str(_refused(junk))
    with pytest.raises(ModelsMissingError, match="SyncNet weights not found"):
        load_syncnet(tmp_path / "absent.model")
