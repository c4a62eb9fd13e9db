"""Tier 1: strict loading of the official SadTalker checkpoint layouts (no authors' code needed).

Full-size random weights are written in the official layouts (``sadtalker_layout``): the
1,305-tensor ``SadTalker_V0.0.2_256.safetensors`` with its five prefixes and the
``mapping_*.pth.tar`` training checkpoints. Every key loads; a removed, reshaped or stray key
is refused with ``[invalid_model]`` naming it; the training-only ``audio2pose`` parts are
listed and skipped; the legacy spectral-norm keys load and compute what
``torch.nn.utils.spectral_norm`` computes in eval mode.
"""

from __future__ import annotations

import collections
import pickle

import pytest
import torch
from safetensors.torch import save_file
from sadtalker_layout import mapping_checkpoint, official_state, part, training_only_modules

from myspinbot.errors import ModelsMissingError
from myspinbot.lipsync import InvalidModelError
from myspinbot.sadtalker import (
    OFFICIAL_KEY_COUNTS,
    PARTS,
    SpectralNormConv2d,
    build_networks,
    load_mapping,
    load_sadtalker,
    split_checkpoint,
)


def test_our_networks_have_the_official_key_counts():
    nets = build_networks()
    counts = {name: len(model.state_dict()) for name, model in nets.items()}
    counts["audio2pose"] += len(training_only_modules().state_dict())
    assert counts == OFFICIAL_KEY_COUNTS == {"kp_extractor": 75, "generator": 386, "audio2exp": 93,
                                             "audio2pose": 419, "face_3drecon": 332}
    assert sum(counts.values()) == 1305


@pytest.fixture(scope="module")
def official(tmp_path_factory):
    """(path, state) of a full-size random ``SadTalker_V0.0.2_256.safetensors``."""
    state = official_state(seed=0)
    path = tmp_path_factory.mktemp("sadtalker") / "SadTalker_V0.0.2_256.safetensors"
    save_file(state, str(path))
    return path, state


def test_the_official_file_loads_with_every_key(official):
    path, state = official
    assert len(state) == 1305
    assert collections.Counter(k.split(".")[0] for k in state) == OFFICIAL_KEY_COUNTS
    nets = load_sadtalker(path)
    loaded = 0
    for name, model in nets.modules().items():
        assert not model.training and not any(p.requires_grad for p in model.parameters())
        mine = model.state_dict()
        file_part = {k: v for k, v in part(state, name).items() if f"{name}.{k}" not in nets.ignored}
        assert mine.keys() == file_part.keys(), name
        for key, value in file_part.items():
            assert torch.equal(mine[key], value), f"{name}.{key}"
        loaded += len(mine)
    assert len(nets.ignored) == 174 and loaded + len(nets.ignored) == 1305
    assert all(k.startswith(("audio2pose.netG.encoder.", "audio2pose.netD_motion.")) for k in nets.ignored)
    assert not any(k.startswith("audio2pose.netG.decoder.") for k in nets.ignored)


def test_a_removed_and_a_reshaped_key_are_refused_by_name(official, tmp_path):
    _, state = official
    broken = dict(state)
    removed = "generator.decoder.G_middle_0.conv_0.weight_u"  # a legacy spectral-norm key
    del broken[removed]
    reshaped = "face_3drecon.final_layers.1.weight"
    broken[reshaped] = torch.zeros(63, 2048, 1, 1)
    path = tmp_path / "SadTalker_V0.0.2_256.safetensors"
    save_file(broken, str(path))
    with pytest.raises(InvalidModelError) as err:
        load_sadtalker(path)
    assert str(err.value).startswith("[invalid_model] ")
    assert removed in str(err.value) and reshaped in str(err.value)
    assert err.value.details["missing"] == [removed]
    assert err.value.details["unexpected"] == []
    assert err.value.details["reshaped"] == [f"{reshaped}: file [63, 2048, 1, 1] vs model [64, 2048, 1, 1]"]


def test_split_is_on_the_exact_prefixes():
    state = {"generator.first.conv.weight": torch.zeros(1), "kp_extractor.kp.bias": torch.zeros(1),
             "audio2pose.netD_motion.seq.3.bias": torch.zeros(1), "audio2pose.netG.encoder.classbias": torch.zeros(1),
             "audio2pose.netG.decoder.classbias": torch.zeros(1)}
    parts, ignored = split_checkpoint(state)
    assert set(parts) == set(PARTS)
    assert parts["generator"].keys() == {"first.conv.weight"} and parts["kp_extractor"].keys() == {"kp.bias"}
    assert parts["audio2pose"].keys() == {"netG.decoder.classbias"}
    assert ignored == ["audio2pose.netD_motion.seq.3.bias", "audio2pose.netG.encoder.classbias"]
    for stray in ("he_estimator.fc_yaw.weight", "generatorx.first.conv.weight", "mapping.first.0.weight"):
        with pytest.raises(InvalidModelError, match=r"^\[invalid_model\] .*" + stray.replace(".", r"\.")) as err:
            split_checkpoint({**state, stray: torch.zeros(1)}, source="x.safetensors")
        assert err.value.details["unexpected"] == [stray]


def test_a_missing_part_is_named(official, tmp_path):
    _, state = official
    path = tmp_path / "four_parts.safetensors"
    save_file({k: v for k, v in state.items() if not k.startswith("audio2exp.")}, str(path))
    with pytest.raises(InvalidModelError) as err:
        load_sadtalker(path)
    assert len(err.value.details["missing"]) == 93
    assert all(k.startswith("audio2exp.") for k in err.value.details["missing"])
    assert "audio2exp.mapping1.weight" in err.value.details["missing"]


def test_a_missing_file_is_models_missing(tmp_path):
    with pytest.raises(ModelsMissingError):
        load_sadtalker(tmp_path / "SadTalker_V0.0.2_256.safetensors")


@pytest.mark.parametrize("channels", [70, 73])
def test_mapping_checkpoints_load_strictly(tmp_path, channels):
    path = tmp_path / ("mapping_00229-model.pth.tar" if channels == 70 else "mapping_00109-model.pth.tar")
    state = mapping_checkpoint(path, channels)
    model = load_mapping(path)
    assert model.config.coeff_channels == channels and not model.training
    assert model.state_dict().keys() == state.keys()
    assert all(torch.equal(model.state_dict()[k], v) for k, v in state.items())
    out = model(torch.randn(2, channels, 27))
    assert {k: tuple(v.shape) for k, v in out.items()} == {
        "yaw": (2, 66), "pitch": (2, 66), "roll": (2, 66), "t": (2, 3), "exp": (2, 45)}


def test_mapping_refusals(tmp_path):
    path = tmp_path / "mapping_00229-model.pth.tar"
    state = mapping_checkpoint(path)
    removed = dict(state)
    del removed["fc_exp.bias"]
    torch.save({"mapping": removed, "epoch": 229}, path)
    with pytest.raises(InvalidModelError, match=r"^\[invalid_model\] .*fc_exp\.bias") as err:
        load_mapping(path)
    assert err.value.details["missing"] == ["fc_exp.bias"]

    torch.save({"generator": state, "epoch": 229}, path)
    with pytest.raises(InvalidModelError, match="no 'mapping'"):
        load_mapping(path)

    narrow = dict(state, **{"first.0.weight": torch.zeros(1024, 64, 7)})
    torch.save({"mapping": narrow}, path)
    with pytest.raises(InvalidModelError, match="64 coefficients"):
        load_mapping(path)


class _Payload:  # pickled as a global: what a weights-only load must refuse
    pass


def test_mapping_is_read_weights_only(tmp_path):
    path = tmp_path / "mapping_00229-model.pth.tar"
    with path.open("wb") as f:
        torch.save({"mapping": {}, "extra": _Payload()}, f, pickle_module=pickle)
    with pytest.raises(InvalidModelError, match="weights-only"):
        load_mapping(path)


def test_spectral_norm_keys_behave_as_torch_eval_mode():
    torch.manual_seed(0)
    for bias, kernel in ((True, 3), (False, 1)):
        reference = torch.nn.utils.spectral_norm(torch.nn.Conv2d(8, 5, kernel, padding=kernel // 2, bias=bias))
        with torch.no_grad():  # move u and v off their initial values, as training does
            reference.train()
            for _ in range(3):
                reference(torch.randn(1, 8, 6, 6))
        reference.eval()
        state = reference.state_dict()
        ours = SpectralNormConv2d(8, 5, kernel, bias=bias)
        assert ours.state_dict().keys() == state.keys()
        ours.load_state_dict(state, strict=True)
        x = torch.randn(2, 8, 9, 7)
        with torch.no_grad():
            torch.testing.assert_close(ours(x), reference(x), rtol=0, atol=1e-6)
            torch.testing.assert_close(ours.weight(), reference.weight, rtol=0, atol=1e-7)
        # and the torch wrapper accepts our keys (no ``weight``, no metadata: the current layout)
        again = torch.nn.utils.spectral_norm(torch.nn.Conv2d(8, 5, kernel, padding=kernel // 2, bias=bias)).eval()
        again.load_state_dict(dict(ours.state_dict()), strict=True)
        with torch.no_grad():
            torch.testing.assert_close(again(x), ours(x), rtol=0, atol=1e-6)
