"""Tier 1: the SyncNet score against the authors' own code, when a copy is present.

The authors' code is never part of this repository. Export it outside the repo, e.g.::

    git -C <mirror of github.com/joonson/syncnet_python> archive HEAD | tar -x -C /work/ref/syncnet_python
    pip install --no-deps --target /work/ref/pylibs python_speech_features   # their MFCC package

and point ``MYSPINBOT_SYNCNET_REF`` at the first folder (default ``../ref/syncnet_python``
beside the repository) and ``MYSPINBOT_REF_PYLIBS`` at the second (default ``../ref/pylibs``).
Wav2Lip's LSE evaluation (``evaluation/scores_LSE`` under ``MYSPINBOT_WAV2LIP_REF``, see
test_wav2lip_reference.py) is used too when present. Without them the tests here are skipped,
with that reason.

* Model: the same random weights (batch-norm statistics included) in their ``SyncNetModel.S``
  and in ours give the same embeddings.
* MFCC: ``python_speech_features.mfcc`` against ours, on int16 speech-like noise.
* Evaluation: their ``SyncNetInstance.evaluate`` (and Wav2Lip's ``calc_scores`` variant,
  which returns LSE-D) run on the same 224 x 224 crops and 16 kHz audio as our
  ``score_crops``: same offset, LSE-C, LSE-D and per-window distances. ``evaluate`` calls
  ffmpeg and CUDA; here its ``subprocess.call`` writes the frames (PNG data, lossless) and the
  WAV it would have extracted, and ``.cuda()`` is the identity.
"""

from __future__ import annotations

import importlib.util
import os
import sys
import types
from pathlib import Path

import numpy as np
import pytest
import torch

from myspinbot.lipsync import SyncNet, load_syncnet, mfcc
from myspinbot.lipsync.syncnet_score import ScoreSettings, score_crops, window_count

REPO = Path(__file__).resolve().parents[2]
REF = Path(os.environ.get("MYSPINBOT_SYNCNET_REF") or REPO.parent / "ref" / "syncnet_python")
PYLIBS = Path(os.environ.get("MYSPINBOT_REF_PYLIBS") or REPO.parent / "ref" / "pylibs")
WAV2LIP_REF = Path(os.environ.get("MYSPINBOT_WAV2LIP_REF") or REPO.parent / "ref" / "Wav2Lip")
HOW = ("the authors' SyncNet code is not present: export github.com/joonson/syncnet_python outside the repo "
       "(git archive) and set MYSPINBOT_SYNCNET_REF to it")


def _module(name: str, path: Path) -> types.ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def ref_model() -> types.ModuleType:
    if not (REF / "SyncNetModel.py").is_file():
        pytest.skip(f"{HOW} (looked in {REF})")
    return _module("SyncNetModel", REF / "SyncNetModel.py")  # their instance module imports it by this name


@pytest.fixture(scope="module")
def speech_features() -> types.ModuleType:
    if PYLIBS.is_dir() and str(PYLIBS) not in sys.path:
        sys.path.append(str(PYLIBS))
    return pytest.importorskip("python_speech_features", reason=(
        "python_speech_features (the authors' MFCC package) is not installed: pip install --no-deps "
        f"--target {PYLIBS} python_speech_features, or set MYSPINBOT_REF_PYLIBS"))


def _randomize(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(21)
    state = {}
    for name, t in model.state_dict().items():
        if name.endswith("running_var"):
            state[name] = torch.rand(t.shape, generator=g) + 0.5
        elif name.endswith("num_batches_tracked"):
            state[name] = torch.tensor(100)
        else:
            state[name] = (torch.rand(t.shape, generator=g) - 0.5) * (0.1 if t.ndim > 1 else 0.4)
    return state


@pytest.fixture(scope="module")
def weights(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("syncnet") / "syncnet_v2.model"
    torch.save(_randomize(SyncNet()), path)
    return path


def test_model_matches_the_authors_on_identical_random_weights(ref_model, weights):
    theirs = ref_model.S(num_layers_in_fc_layers=1024)
    theirs.load_state_dict(torch.load(weights, weights_only=True), strict=True)
    theirs.eval()
    ours = load_syncnet(weights)
    g = torch.Generator().manual_seed(2)
    mfccs = torch.randn(4, 1, 13, 20, generator=g) * 5
    crops = torch.rand(2, 3, 5, 224, 224, generator=g) * 255
    with torch.no_grad():
        for a, b in [(theirs.forward_aud(mfccs), ours.forward_audio(mfccs)),
                     (theirs.forward_lip(crops), ours.forward_video(crops))]:
            scale = float(a.abs().max())
            assert scale > 0 and float((a - b).abs().max()) <= 1e-5 * scale


def test_mfcc_matches_python_speech_features(speech_features):
    rng = np.random.default_rng(0)
    for n in (100, 400, 401, 16000, 40 * 640 + 77):
        x = (rng.standard_normal(n) * 3000 * np.repeat(rng.random(n // 160 + 1), 160)[:n]).astype(np.int16)
        assert np.array_equal(mfcc(x), speech_features.mfcc(x, 16000)), n


def _clip(frames: int = 42) -> tuple[list[np.ndarray], np.ndarray]:
    """224 x 224 BGR crops with a moving blob, and int16 16 kHz noise bursts."""
    rng = np.random.default_rng(9)
    base = rng.integers(40, 200, (224, 224, 3), dtype=np.uint8)
    yy, xx = np.mgrid[0:224, 0:224]
    crops = []
    for i in range(frames):
        frame = base.copy()
        blob = (yy - 150) ** 2 / 900 + (xx - 112) ** 2 / (400 + 300 * np.sin(i / 2)) < 1
        frame[blob] = (20, 30, 160)
        crops.append(frame)
    amp = np.repeat(0.05 + 0.4 * (np.sin(np.arange(frames) / 2) > 0), 640)
    audio = (rng.standard_normal(frames * 640 + 300) * 8000 * np.append(amp, np.full(300, 0.1))).astype(np.int16)
    return crops, audio


def _run_evaluate(module_path: Path, name: str, weights: Path, crops, audio, tmp_path, monkeypatch):
    import cv2
    from scipy.io import wavfile

    module = _module(name, module_path)

    def fake_ffmpeg(command, shell=True, stdout=None):  # what their two ffmpeg calls would leave behind
        folder = tmp_path / "ref"
        if "image2" in command:
            for i, crop in enumerate(crops):
                ok, png = cv2.imencode(".png", crop)
                (folder / f"{i + 1:06d}.jpg").write_bytes(png.tobytes())  # lossless, read by cv2.imread
        else:
            wavfile.write(str(folder / "audio.wav"), 16000, audio)
        return 0

    monkeypatch.setattr(module, "subprocess", types.SimpleNamespace(call=fake_ffmpeg))
    monkeypatch.setattr(torch.nn.Module, "cuda", lambda self, *a, **k: self)
    monkeypatch.setattr(torch.Tensor, "cuda", lambda self, *a, **k: self)
    instance = module.SyncNetInstance()
    instance.loadParameters(str(weights))
    opt = types.SimpleNamespace(tmp_dir=str(tmp_path), reference="ref", batch_size=20, vshift=15)
    return instance.evaluate(opt, videofile="clip.avi")


def test_scores_match_the_authors_evaluate(ref_model, speech_features, weights, tmp_path, monkeypatch):
    pytest.importorskip("cv2")
    crops, audio = _clip()
    offset, conf, dists = _run_evaluate(REF / "SyncNetInstance.py", "_syncnet_ref_instance", weights, crops,
                                        audio, tmp_path, monkeypatch)
    count = window_count(len(crops), audio.size)
    stats = score_crops(load_syncnet(weights), iter(crops), mfcc(audio).T, count, ScoreSettings())
    assert dists.shape == stats.window_dists.shape == (count, 31)
    assert np.allclose(stats.window_dists, dists, rtol=1e-4, atol=1e-5)
    assert stats.offset == int(offset)
    assert stats.lse_c == pytest.approx(float(conf), rel=1e-4, abs=1e-5)
    assert stats.lse_d == pytest.approx(float(dists.mean(axis=0).min()), rel=1e-4)
    print(f"\nSyncNet vs authors' evaluate (random weights): offset {stats.offset} vs {int(offset)}, "
          f"LSE-C {stats.lse_c:.6f} vs {float(conf):.6f}, max |d - d_ref| {np.abs(stats.window_dists - dists).max():.2e}")


def test_lse_d_matches_wav2lips_calc_scores(ref_model, speech_features, weights, tmp_path, monkeypatch):
    script = WAV2LIP_REF / "evaluation" / "scores_LSE" / "SyncNetInstance_calc_scores.py"
    if not script.is_file():
        pytest.skip(f"Wav2Lip's LSE evaluation is not present (looked for {script}; set MYSPINBOT_WAV2LIP_REF)")
    crops, audio = _clip()
    offset, conf, minval = _run_evaluate(script, "_wav2lip_ref_calc_scores", weights, crops, audio,
                                         tmp_path, monkeypatch)
    count = window_count(len(crops), audio.size)
    stats = score_crops(load_syncnet(weights), iter(crops), mfcc(audio).T, count, ScoreSettings())
    assert stats.offset == int(offset)
    assert stats.lse_d == pytest.approx(float(minval), rel=1e-4)
    assert stats.lse_c == pytest.approx(float(conf), rel=1e-4, abs=1e-5)
    print(f"\nLSE-D {stats.lse_d:.6f} vs Wav2Lip's {float(minval):.6f}; LSE-C {stats.lse_c:.6f} vs {float(conf):.6f}")
