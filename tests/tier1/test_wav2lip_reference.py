"""Tier 1: ``lipsync`` against the authors' own code (Rudrabha/Wav2Lip), when a copy is present.

The authors' code is never part of this repository. Export it outside the repo, e.g.::

    git -C <mirror of github.com/Rudrabha/Wav2Lip> archive HEAD | tar -x -C /work/ref/Wav2Lip

and point ``MYSPINBOT_WAV2LIP_REF`` at that folder (default: ``../ref/Wav2Lip`` beside the
repository). Without it every test here is skipped, with that reason.

* Generator: the same random weights (batch-norm statistics included) in the authors'
  ``models.Wav2Lip`` and in ours, loaded from the official checkpoint layout, give the same
  output (max abs difference < 1e-5).
* Mel front end: the authors' ``audio.melspectrogram`` against ours. Their ``audio.py`` was
  written for librosa 0.7.0 (pinned in their requirements.txt); current librosa makes its
  arguments keyword-only and changed two STFT defaults, so their module is run here with a
  shim restoring the 0.7.0 calls: ``filters.mel(sr, n_fft, ...)`` positionally, and ``stft``
  with ``pad_mode="reflect"`` and ``dtype=complex64`` (the 0.7.0 defaults).
"""

from __future__ import annotations

import functools
import importlib.util
import os
import sys
import types
from pathlib import Path

import numpy as np
import pytest
import torch

from myspinbot.lipsync import Wav2Lip, load_wav2lip, mel_windows, melspectrogram
from myspinbot.speech.audio_io import load_audio, resample, to_mono

REPO = Path(__file__).resolve().parents[2]
REF = Path(os.environ.get("MYSPINBOT_WAV2LIP_REF") or REPO.parent / "ref" / "Wav2Lip")
HOW = ("the authors' Wav2Lip code is not present: export github.com/Rudrabha/Wav2Lip outside the repo "
       "(git archive) and set MYSPINBOT_WAV2LIP_REF to it")


def _module(name: str, path: Path, package_dirs: list[str] | None = None) -> types.ModuleType:
    spec = importlib.util.spec_from_file_location(name, path, submodule_search_locations=package_dirs)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def ref_models() -> types.ModuleType:
    if not (REF / "models" / "wav2lip.py").is_file():
        pytest.skip(f"{HOW} (looked in {REF})")
    # Under a private name, so the authors' top-level "models" never shadows anything.
    return _module("_wav2lip_ref_models", REF / "models" / "__init__.py", [str(REF / "models")])


@pytest.fixture(scope="module")
def ref_audio() -> types.ModuleType:
    if not (REF / "audio.py").is_file():
        pytest.skip(f"{HOW} (looked in {REF})")
    pytest.importorskip("scipy", reason="the authors' audio.py imports scipy")
    import librosa

    hparams = _module("_wav2lip_ref_hparams", REF / "hparams.py")
    saved = sys.modules.get("hparams")
    sys.modules["hparams"] = hparams  # audio.py does "from hparams import hparams"
    try:
        audio = _module("_wav2lip_ref_audio", REF / "audio.py")
    finally:
        if saved is None:
            del sys.modules["hparams"]
        else:
            sys.modules["hparams"] = saved
    audio.librosa = types.SimpleNamespace(  # librosa 0.7.0 calls and defaults, see the module doc
        stft=functools.partial(librosa.stft, pad_mode="reflect", dtype=np.complex64),
        filters=types.SimpleNamespace(mel=lambda sr, n_fft, **kw: librosa.filters.mel(sr=sr, n_fft=n_fft, **kw)),
    )
    return audio


def _randomize(model: torch.nn.Module, seed: int) -> None:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, tensor in model.state_dict().items():
            if name.endswith("num_batches_tracked"):
                continue
            if name.endswith("running_var"):
                tensor.copy_(torch.rand(tensor.shape, generator=g) * 1.5 + 0.5)
            elif name.endswith(("running_mean", "bias")):
                tensor.copy_(torch.rand(tensor.shape, generator=g) * 0.4 - 0.2)
            elif tensor.ndim == 1:  # batch-norm scale
                tensor.copy_(torch.rand(tensor.shape, generator=g) + 0.5)
            else:  # convolution weights
                tensor.copy_(torch.randn(tensor.shape, generator=g) * (1.0 / tensor[0].numel()) ** 0.5)


def test_generator_matches_the_authors(ref_models, tmp_path):
    theirs = ref_models.Wav2Lip()
    _randomize(theirs, seed=11)
    theirs.eval()
    # Saved as their training script does (DataParallel prefix, optimizer state, counters).
    path = tmp_path / "wav2lip.pth"
    torch.save({"state_dict": {"module." + k: v for k, v in theirs.state_dict().items()},
                "optimizer": None, "global_step": 1, "global_epoch": 1}, path)
    ours = load_wav2lip(path)
    assert isinstance(ours, Wav2Lip)

    g = torch.Generator().manual_seed(5)
    faces = torch.rand(4, 6, 96, 96, generator=g)
    faces[:, :3, 48:] = 0.0
    mels = (torch.rand(4, 1, 80, 16, generator=g) * 8 - 4)
    with torch.no_grad():
        expected = theirs(mels, faces)
        got = ours(mels, faces)
    assert got.shape == expected.shape == (4, 3, 96, 96)
    assert 0.05 < float(expected.std())  # the random net is not saturated: the comparison means something
    diff = float((got - expected).abs().max())
    print(f"generator max abs diff vs authors: {diff:.3g}")
    assert diff < 1e-5


def _speech(fixtures_dir: Path) -> np.ndarray:
    samples, rate = load_audio(fixtures_dir / "speech_front_left.wav")
    return resample(to_mono(samples), rate, 16000)[0]


@pytest.mark.parametrize("source", ["speech", "noise", "long", "tiny"])
def test_mel_matches_the_authors(ref_audio, fixtures_dir, source):
    rng = np.random.default_rng(3)
    wav = {
        "speech": lambda: _speech(fixtures_dir),
        "noise": lambda: (rng.standard_normal(16000 * 2 + 77) * 0.2).astype(np.float32),
        "long": lambda: (rng.standard_normal(16000 * 30) * 0.05).astype(np.float32),  # > one STFT block
        "tiny": lambda: (rng.standard_normal(1000) * 0.3).astype(np.float32),
    }[source]()
    expected = ref_audio.melspectrogram(wav)
    got = melspectrogram(wav)
    assert got.shape == expected.shape == (80, len(wav) // 200 + 1)
    assert got.dtype == np.float32
    diff = float(np.abs(got - expected).max())
    print(f"mel ({source}) max abs diff vs authors: {diff:.3g}")
    assert diff < 1e-5
    assert float(expected.min()) >= -4.0 and float(expected.max()) <= 4.0
    assert float(expected.std()) > 0.1


def test_windows_follow_the_authors_chunking(ref_audio, fixtures_dir):
    """Their inference.py cuts 16-frame chunks at int(i * 80 / fps), the last one clamped to the end."""
    mel = ref_audio.melspectrogram(_speech(fixtures_dir))
    for fps in (25.0, 29.97, 30.0, 24.0):
        chunks, i = [], 0
        step = 80.0 / fps
        while True:  # the rule as their inference.py applies it
            start = int(i * step)
            if start + 16 > mel.shape[1]:
                chunks.append(mel[:, mel.shape[1] - 16:])
                break
            chunks.append(mel[:, start:start + 16])
            i += 1
        got = mel_windows(mel, fps)
        assert got.shape == (len(chunks), 80, 16)
        np.testing.assert_array_equal(got, np.stack(chunks).astype(np.float32))
