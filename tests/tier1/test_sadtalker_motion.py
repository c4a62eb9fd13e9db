"""Tier 1: SadTalker's data path on full-size random weights (no authors' code needed).

Audio -> coefficients on a real recording (``speech_front_left.wav``, 1.48 s, resampled to
16 kHz): the mel windows, ExpNet per 10-frame chunk, PoseVAE per 32-frame window with seeded
latents, Savitzky-Golay smoothing (against ``scipy.signal.savgol_filter``). The same seed
gives byte-identical coefficients. Then coefficients -> frames: the driving windows (still
mode, expression scale, full mode) and a 2-frame render at 128 x 128 through the real loop.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from sadtalker_layout import randomize

from myspinbot.errors import InvalidInputError
from myspinbot.lipsync import melspectrogram
from myspinbot.sadtalker import MappingConfig, MappingNet, build_networks
from myspinbot.sadtalker.audio_coeffs import (
    audio_to_coeffs,
    blink_ratio,
    frame_count,
    predict_pose,
    sadtalker_mel_windows,
    savgol_smooth,
)
from myspinbot.sadtalker.render import driving_coeffs, render_frames, semantic_windows
from myspinbot.speech.audio_io import load_audio, resample, to_mono

FIXTURES = Path(__file__).resolve().parents[3] / "shared" / "fixtures"
SPEECH = FIXTURES / "speech_front_left.wav"


@pytest.fixture(scope="module")
def nets():
    """Our networks with random weights (random batch-norm statistics too), eval mode."""
    out = build_networks()
    for model in out.values():
        model.load_state_dict(randomize(model.state_dict(), seed=11))
        model.eval()
    return out


@pytest.fixture(scope="module")
def mels():
    if not SPEECH.is_file():
        pytest.skip(f"fixture missing: {SPEECH}")
    samples, rate = load_audio(SPEECH)
    wav = resample(to_mono(samples), rate, 16000)[0]
    frames = frame_count(len(wav))
    wav = wav[:frames * 640]
    return sadtalker_mel_windows(melspectrogram(wav), frames)


def test_mel_windows_follow_the_authors_indexing():
    mel = np.random.default_rng(0).standard_normal((80, 50)).astype(np.float32)
    windows = sadtalker_mel_windows(mel, 14)
    assert windows.shape == (14, 80, 16) and windows.dtype == np.float32
    for i in range(14):  # generate_batch.get_data: start int(80 (i-2)/25), each index clamped
        start = int(80.0 * ((i - 2) / 25.0))
        index = [min(max(k, 0), 49) for k in range(start, start + 16)]
        np.testing.assert_array_equal(windows[i], mel[:, index])
    assert frame_count(16000) == 25 and frame_count(639) == 0


def test_blinks_are_seeded_and_follow_the_rules():
    a = blink_ratio(300, np.random.default_rng(5))
    assert np.array_equal(a, blink_ratio(300, np.random.default_rng(5)))
    assert not np.array_equal(a, blink_ratio(300, np.random.default_rng(6)))
    assert set(np.unique(a).tolist()) <= set(np.float32([0.0, 0.5, 0.9, 1.0]).tolist()) and a.max() == 1.0 and a[-1] == 0.0
    assert not blink_ratio(20, np.random.default_rng(0)).any()
    assert not blink_ratio(21, np.random.default_rng(0)).any()  # the authors' code fails here


@pytest.mark.parametrize("n", [1, 2, 3, 4, 12, 13, 14, 60])
def test_savgol_matches_scipy(n):
    signal = pytest.importorskip("scipy.signal")
    x = np.random.default_rng(n).standard_normal((n, 6))
    window = 13 if n >= 13 else (n - 1) // 2 * 2 + 1
    expected = x if window <= 2 else signal.savgol_filter(x, window, 2, axis=0)
    np.testing.assert_allclose(savgol_smooth(x), expected, rtol=0, atol=1e-12)


def test_coefficients_are_deterministic_per_seed(nets, mels):
    source = np.random.default_rng(1).standard_normal(257).astype(np.float32) * 0.3
    args = (nets["audio2exp"], nets["audio2pose"], mels, source)
    a = audio_to_coeffs(*args, pose_style=3, seed=7)
    b = audio_to_coeffs(*args, pose_style=3, seed=7)
    assert a.coeffs.shape == (len(mels), 70) and a.coeffs.dtype == np.float32 and len(mels) == 37
    assert a.coeffs.tobytes() == b.coeffs.tobytes() and a.blink.tobytes() == b.blink.tobytes()
    c = audio_to_coeffs(*args, pose_style=3, seed=8)
    assert not np.array_equal(a.coeffs[:, 64:], c.coeffs[:, 64:])  # another pose latent
    raw = predict_pose(nets["audio2pose"], torch.from_numpy(mels), torch.from_numpy(source[64:70]), 3,
                       torch.Generator().manual_seed(0))
    assert raw.shape == (37, 6) and torch.equal(raw[0], torch.from_numpy(source[64:70]))  # frame 0: the source pose
    d = audio_to_coeffs(*args, pose_style=30, seed=7)
    assert not np.array_equal(a.coeffs[:, 64:], d.coeffs[:, 64:])  # another style
    assert not audio_to_coeffs(*args, seed=7, blink=False).blink.any()
    with pytest.raises(InvalidInputError, match="pose_style"):
        audio_to_coeffs(*args, pose_style=46)


def test_driving_coefficients():
    rng = np.random.default_rng(2)
    coeffs = rng.standard_normal((5, 70)).astype(np.float32)
    source = rng.standard_normal(73).astype(np.float32)
    plain = driving_coeffs(coeffs, source)
    np.testing.assert_array_equal(plain, coeffs)
    scaled = driving_coeffs(coeffs, source, expression_scale=1.5)
    np.testing.assert_allclose(scaled[:, :64], coeffs[:, :64] * 1.5)
    np.testing.assert_array_equal(scaled[:, 64:], coeffs[:, 64:])
    still = driving_coeffs(coeffs, source, still=True)
    assert (still[:, 64:] == source[64:70]).all() and (still[:, :64] == coeffs[:, :64]).all()
    full = driving_coeffs(coeffs, source, mapping_channels=73, still=True)
    assert full.shape == (5, 73) and (full[:, 64:] == source[64:73]).all()
    full = driving_coeffs(coeffs, source, mapping_channels=73)
    assert (full[:, 70:] == source[70:73]).all() and (full[:, :70] == coeffs).all()
    windows = semantic_windows(np.arange(5 * 2, dtype=np.float32).reshape(5, 2), 0, 5, radius=2)
    assert windows.shape == (5, 2, 5)
    np.testing.assert_array_equal(windows[0, 0], [0, 0, 0, 2, 4])  # frame indices clamped to the clip
    np.testing.assert_array_equal(windows[4, 1], [5, 7, 9, 9, 9])


@pytest.mark.slow
def test_two_frames_render_at_128(nets):
    mapping = MappingNet(MappingConfig(coeff_channels=70))
    mapping.load_state_dict(randomize(mapping.state_dict(), seed=12))
    mapping.eval()
    rng = np.random.default_rng(3)
    source_coeffs = rng.standard_normal(257).astype(np.float32) * 0.3
    driving = driving_coeffs(rng.standard_normal((3, 70)).astype(np.float32) * 0.3, source_coeffs)
    image = torch.rand(3, 128, 128, generator=torch.Generator().manual_seed(4))
    batches = list(render_frames(nets["kp_extractor"], nets["generator"], mapping, image, source_coeffs,
                                 driving[:2], batch_size=2))
    assert [tuple(b.shape) for b in batches] == [(2, 3, 128, 128)]
    frames = batches[0]
    assert torch.isfinite(frames).all() and frames.min() >= 0 and frames.max() <= 1
    assert not torch.equal(frames[0], frames[1])  # different driving windows, different frames
    with pytest.raises(InvalidInputError, match=r"\[T, 70\]"):
        next(render_frames(nets["kp_extractor"], nets["generator"], mapping, image, source_coeffs, driving[:, :64]))
