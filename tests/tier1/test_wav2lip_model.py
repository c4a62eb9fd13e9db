"""Tier 1: the Wav2Lip generator (``lipsync``) and its strict checkpoint loader, no ComfyUI.

A full-size generator with random weights (batch-norm statistics randomised too) is saved the
way the authors' training scripts save it (``{"state_dict": {"module." + key: ...},
"optimizer", "global_step", "global_epoch"}``, in the current and in the legacy pre-1.6
``torch.save`` format) and as ``.safetensors``; each must load with every key, and damaged
layouts must be refused with ``invalid_model`` naming the key (the default load folds the batch
norms into the convolutions only after those checks). The folded generator gives the unfolded
one's output up to float rounding, and the split face encoder / decoder is the forward pass.
"""

from __future__ import annotations

import ast
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from myspinbot.errors import InvalidInputError, ModelsMissingError
from myspinbot.lipsync import InvalidModelError, Wav2Lip, Wav2LipConfig, load_wav2lip, read_state_dict
from myspinbot.lipsync.layers import ConvNormReLU

PACKAGE = Path(__file__).resolve().parents[2] / "custom_nodes" / "myspinbot"
NUM_KEYS = 352  # tensors in the official generator's state dict (incl. num_batches_tracked)
NUM_PARAMS = 36_298_035


def randomize(model: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """Give every batch norm non-trivial affine weights and running statistics."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                c = module.num_features
                module.weight.copy_(torch.rand(c, generator=g) + 0.5)
                module.bias.copy_(torch.rand(c, generator=g) * 0.4 - 0.2)
                module.running_mean.copy_(torch.rand(c, generator=g) * 0.4 - 0.2)
                module.running_var.copy_(torch.rand(c, generator=g) * 1.5 + 0.5)
                module.num_batches_tracked.fill_(1234)
    return model.eval()


@pytest.fixture(scope="module")
def generator() -> Wav2Lip:
    torch.manual_seed(0)
    return randomize(Wav2Lip())


@pytest.fixture(scope="module")
def official_files(generator, tmp_path_factory) -> dict[str, Path]:
    """The same random weights as an official-layout .pth (new and legacy format) and safetensors."""
    folder = tmp_path_factory.mktemp("wav2lip")
    state = generator.state_dict()
    optimizer = torch.optim.Adam(generator.parameters(), lr=1e-4)
    checkpoint = {
        "state_dict": {"module." + k: v for k, v in state.items()},
        "optimizer": optimizer.state_dict(),
        "global_step": 253000,
        "global_epoch": 42,
    }
    files = {"pth": folder / "wav2lip.pth", "legacy": folder / "wav2lip_gan.pth",
             "safetensors": folder / "wav2lip.safetensors"}
    torch.save(checkpoint, files["pth"])
    torch.save(checkpoint, files["legacy"], _use_new_zipfile_serialization=False)
    save_file({k: v.contiguous() for k, v in state.items()}, str(files["safetensors"]))
    return files


def test_layout_of_the_official_generator():
    model = Wav2Lip()
    state = model.state_dict()
    assert len(state) == NUM_KEYS
    assert sum(p.numel() for p in model.parameters()) == NUM_PARAMS
    # A few names and shapes of the official checkpoint (module. prefix removed).
    assert state["face_encoder_blocks.0.0.conv_block.0.weight"].shape == (16, 6, 7, 7)
    assert state["face_encoder_blocks.6.1.conv_block.0.weight"].shape == (512, 512, 1, 1)
    assert state["audio_encoder.12.conv_block.1.running_var"].shape == (512,)
    assert state["face_decoder_blocks.1.0.conv_block.0.weight"].shape == (1024, 512, 3, 3)  # transposed
    assert state["face_decoder_blocks.6.2.conv_block.1.num_batches_tracked"].shape == ()
    assert state["output_block.0.conv_block.0.weight"].shape == (32, 80, 3, 3)
    assert state["output_block.1.weight"].shape == (3, 32, 1, 1)
    assert len([k for k in state if k.startswith("face_encoder_blocks.")]) == 18 * 7  # 18 blocks, 7 tensors each


@pytest.mark.parametrize("kind", ["pth", "legacy", "safetensors"])
def test_official_layouts_load_every_key(kind, official_files, generator):
    state = read_state_dict(official_files[kind])
    expected = generator.state_dict()
    assert list(state) == list(expected) if kind != "safetensors" else sorted(state) == sorted(expected)
    model = load_wav2lip(official_files[kind], fold_norms=False)
    assert not model.training and not model.folded
    assert all(not p.requires_grad for p in model.parameters())
    for key, value in model.state_dict().items():
        assert torch.equal(value, expected[key]), key
    folded = load_wav2lip(official_files[kind])  # the default: batch norms folded after the checks
    assert folded.folded and not folded.training
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in folded.modules())
    assert all(not p.requires_grad for p in folded.parameters())
    assert len(folded.state_dict()) == NUM_KEYS - 50 * 5  # 50 blocks lose 5 batch-norm tensors each


def test_half_precision_load(official_files):
    model = load_wav2lip(official_files["safetensors"], dtype=torch.float16, fold_norms=False)
    assert model.output_block[1].weight.dtype == torch.float16
    assert model.face_encoder_blocks[0][0].conv_block[1].num_batches_tracked.dtype == torch.int64
    folded = load_wav2lip(official_files["safetensors"], dtype=torch.float16)  # folded in float64, then cast
    assert folded.face_encoder_blocks[0][0].conv_block[0].bias.dtype == torch.float16


def _inputs(n: int, seed: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    faces = torch.rand(n, 6, 96, 96, generator=g)
    faces[:, :3, 48:] = 0.0
    return torch.randn(n, 1, 80, 16, generator=g) * 2, faces


def test_folded_norms_give_the_same_output(official_files, generator):
    """Folding is exact algebra; only float rounding may differ (measured: a few 1e-7)."""
    mels, faces = _inputs(4)
    with torch.no_grad():
        expected = generator(mels, faces)
        got = load_wav2lip(official_files["pth"])(mels, faces)
    assert float(expected.std()) > 0.01  # not saturated: the comparison means something
    diff = float((got - expected).abs().max())
    print(f"folded vs unfolded max abs diff: {diff:.3g}")
    assert diff < 2e-6


def test_fold_handles_transposed_and_residual_blocks():
    torch.manual_seed(3)
    blocks = [ConvNormReLU(8, 8, 3, 1, 1, residual=True), ConvNormReLU(8, 5, 3, 2, 1, transpose=True, output_padding=1),
              ConvNormReLU(8, 6, 3, 1, 0)]
    x = torch.randn(2, 8, 10, 10)
    for block in blocks:
        randomize(block)
        with torch.no_grad():
            expected = block(x)
            block.fold_norm()
            block.fold_norm()  # idempotent
            got = block(x)
        assert block.folded and isinstance(block.conv_block[1], torch.nn.Identity)
        torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)
        assert float(expected.abs().max()) > 0.1
    residual = blocks[0]
    with torch.no_grad():
        before = x.clone()
        residual(x)
    assert torch.equal(x, before)  # the in-place add and ReLU never touch the block's input


def test_split_encoder_decoder_is_the_forward(generator):
    mels, faces = _inputs(3, seed=4)
    with torch.no_grad():
        out = generator(mels, faces)
        skips = generator.encode_faces(faces)
        assert len(skips) == 7 and skips[-1].shape == (3, 512, 1, 1)
        assert torch.equal(generator.decode(mels, skips), out)
        assert len(skips) == 7  # decode leaves the list as it was
        # one crop for the whole batch (a still image): encode once, expand
        one = generator.encode_faces(faces[:1])
        shared = generator.decode(mels, [s.expand(3, *s.shape[1:]) for s in one])
        repeated = generator(mels, faces[:1].expand(3, -1, -1, -1))
    torch.testing.assert_close(shared, repeated, atol=1e-5, rtol=0)


@pytest.fixture(scope="module")
def state(generator) -> dict[str, torch.Tensor]:
    return {k: v.clone().contiguous() for k, v in generator.state_dict().items()}


def _refused(path: Path) -> InvalidModelError:
    with pytest.raises(InvalidModelError) as info:
        load_wav2lip(path)
    err = info.value
    assert err.code == "invalid_model"
    assert str(err).startswith("[invalid_model] ")
    return err


def test_missing_key_is_named(state, tmp_path):
    damaged = dict(state)
    del damaged["face_decoder_blocks.3.1.conv_block.1.running_mean"]
    path = tmp_path / "missing.safetensors"
    save_file(damaged, str(path))
    err = _refused(path)
    assert "face_decoder_blocks.3.1.conv_block.1.running_mean" in str(err)
    assert err.details["missing"] == ["face_decoder_blocks.3.1.conv_block.1.running_mean"]
    assert err.details["unexpected"] == [] and err.details["reshaped"] == []


def test_reshaped_key_is_named(state, tmp_path):
    damaged = {"module." + k: v for k, v in state.items()}
    damaged["module.audio_encoder.0.conv_block.0.weight"] = torch.zeros(32, 1, 5, 5)
    path = tmp_path / "reshaped.pth"
    torch.save({"state_dict": damaged, "global_step": 1}, path)
    err = _refused(path)
    assert "audio_encoder.0.conv_block.0.weight: file [32, 1, 5, 5] vs model [32, 1, 3, 3]" in str(err)
    assert len(err.details["reshaped"]) == 1 and not err.details["missing"]


def test_unexpected_key_is_named(state, tmp_path):
    damaged = dict(state)
    damaged["binary_pred.0.weight"] = torch.zeros(1, 512, 1, 1)  # the quality critic's head
    path = tmp_path / "unexpected.safetensors"
    save_file(damaged, str(path))
    err = _refused(path)
    assert "binary_pred.0.weight" in str(err) and err.details["unexpected"] == ["binary_pred.0.weight"]


def test_non_tensor_objects_are_refused_clearly(tmp_path):
    path = tmp_path / "numpy_step.pth"
    torch.save({"state_dict": {"w": torch.zeros(1)}, "global_step": np.int64(7)}, path)
    err = _refused(path)
    assert "weights-only" in str(err) and "numpy" in str(err)
    assert "safetensors" in str(err)


def test_unreadable_and_missing_files(tmp_path):
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"<html>not a checkpoint</html>")
    assert "not a readable PyTorch checkpoint" in str(_refused(junk))
    junk_st = tmp_path / "junk.safetensors"
    junk_st.write_bytes(b"\x00" * 16)
    assert "not a readable safetensors file" in str(_refused(junk_st))
    nothing = tmp_path / "list.pth"
    torch.save([torch.zeros(1)], nothing)
    assert "no 'state_dict'" in str(_refused(nothing))
    scripted = tmp_path / "scripted.pth"
    with warnings.catch_warnings():  # torch.jit is deprecated; old exports still exist
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.jit.save(torch.jit.script(torch.nn.Linear(2, 2)), str(scripted))
    assert "TorchScript archive" in str(_refused(scripted))
    with pytest.raises(ModelsMissingError):
        load_wav2lip(tmp_path / "absent.pth")


def test_output_shape_and_range(generator):
    g = torch.Generator().manual_seed(1)
    faces = torch.rand(3, 6, 96, 96, generator=g)
    faces[:, :3, 48:] = 0.0
    mels = torch.randn(3, 1, 80, 16, generator=g) * 2
    with torch.no_grad():
        out = generator(mels, faces)
    assert out.shape == (3, 3, 96, 96) and out.dtype == torch.float32
    assert float(out.min()) >= 0.0 and float(out.max()) <= 1.0
    assert float(out.std()) > 1e-3  # not saturated
    with torch.no_grad():  # each sample depends only on its own inputs
        single = generator(mels[1:2], faces[1:2])
    torch.testing.assert_close(single[0], out[1], atol=1e-5, rtol=0)


@pytest.mark.parametrize("mel_shape, face_shape", [
    ((2, 1, 80, 15), (2, 6, 96, 96)),
    ((2, 1, 80, 16), (2, 3, 96, 96)),
    ((2, 1, 80, 16), (3, 6, 96, 96)),
    ((1, 80, 16), (1, 6, 96, 96)),
])
def test_bad_input_shapes(generator, mel_shape, face_shape):
    with pytest.raises(InvalidInputError):
        generator(torch.zeros(mel_shape), torch.zeros(face_shape))


def test_config_is_checked():
    with pytest.raises(ValueError):
        Wav2LipConfig(image_size=128)
    with pytest.raises(ValueError):
        Wav2LipConfig(audio_strides=((1, 1), (3, 1), (3, 3), (2, 2)))
    small = Wav2LipConfig(stem_channels=4, encoder_channels=(8,) * 5, embed_channels=8,
                          audio_channels=(4,) * 4, decoder_channels=(8,) * 6, head_channels=4)
    with torch.no_grad():
        out = Wav2Lip(small).eval()(torch.zeros(2, 1, 80, 16), torch.zeros(2, 6, 96, 96))
    assert out.shape == (2, 3, 96, 96)


def test_lipsync_imports_no_comfyui():
    comfy = {"comfy", "comfy_api", "comfy_execution", "comfy_extras", "folder_paths", "server", "nodes",
             "execution", "node_helpers"}
    for source in sorted((PACKAGE / "lipsync").rglob("*.py")):
        for node in ast.walk(ast.parse(source.read_text(), filename=str(source))):
            if isinstance(node, ast.Import):
                names = [(0, a.name) for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [(node.level, node.module or "")]
            else:
                continue
            for level, name in names:
                top = name.split(".")[0]
                assert not (level == 0 and top in comfy), f"{source.name} imports {name}"
                assert not (level == 2 and top in {"nodes", "server"}), f"{source.name} imports the adapter {name}"
