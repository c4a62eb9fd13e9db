"""Tier 1: the Wav2Lip mel front end and its per-video-frame windows (``lipsync.mel``).

Agreement with the authors' ``audio.py`` is checked in ``test_wav2lip_reference.py`` when
their code is present; these tests need nothing but the package.
"""

from __future__ import annotations

import numpy as np
import pytest

from myspinbot.errors import InvalidInputError
from myspinbot.lipsync.mel import (
    WAV2LIP_MEL,
    MelConfig,
    authors_frame_count,
    mel_filterbank,
    mel_windows,
    melspectrogram,
    preemphasize,
    window_starts,
)
from myspinbot.speech.audio_io import load_audio, resample, to_mono


@pytest.fixture(scope="module")
def speech(fixtures_dir) -> np.ndarray:
    samples, rate = load_audio(fixtures_dir / "speech_front_left.wav")
    return resample(to_mono(samples), rate, 16000)[0]


def test_settings_are_the_authors():
    cfg = WAV2LIP_MEL
    assert (cfg.sample_rate, cfg.n_fft, cfg.hop_length, cfg.win_length) == (16000, 800, 200, 800)
    assert (cfg.n_mels, cfg.fmin, cfg.fmax) == (80, 55.0, 7600.0)
    assert (cfg.preemphasis, cfg.ref_level_db, cfg.min_level_db, cfg.max_abs_value) == (0.97, 20.0, -100.0, 4.0)
    assert cfg.frames_per_second == 80.0 and cfg.floor_value == -4.0
    basis = mel_filterbank()
    assert basis.shape == (80, 401) and basis.dtype == np.float32 and not basis.flags.writeable
    freqs = np.arange(401) * 16000 / 800
    used = freqs[basis.max(axis=0) > 0]
    assert 55 <= used.min() and used.max() <= 7600


def test_speech_spectrogram_shape_and_range(speech):
    mel = melspectrogram(speech)
    assert mel.shape == (80, len(speech) // 200 + 1) and mel.dtype == np.float32
    assert float(mel.min()) >= -4.0 and float(mel.max()) <= 4.0
    assert float(mel.max()) > 0.0 and float(mel.std()) > 0.5  # speech, not silence


def test_silence_is_the_floor_and_loud_is_clipped():
    assert np.all(melspectrogram(np.zeros(8000, np.float32)) == -4.0)
    t = np.arange(16000) / 16000
    loud = melspectrogram((np.sin(2 * np.pi * 1000 * t) * 1000).astype(np.float32))
    assert float(loud.max()) == 4.0


def test_preemphasis_is_the_first_order_filter():
    scipy_signal = pytest.importorskip("scipy.signal")
    x = np.random.default_rng(0).standard_normal(1000).astype(np.float32)
    np.testing.assert_array_equal(preemphasize(x, 0.97), scipy_signal.lfilter([1, -0.97], [1], x))
    np.testing.assert_array_equal(preemphasize(x, 0.0), x.astype(np.float64))


@pytest.mark.parametrize("bad", [np.zeros(0), np.zeros((2, 100)), np.array([0.0, np.nan, 0.0])])
def test_unusable_waveforms(bad):
    with pytest.raises(InvalidInputError):
        melspectrogram(bad)


def test_window_starts_follow_the_rule():
    # 1.48 s at 25 fps: 119 mel frames; windows every 3.2 frames, the last clamped to 119 - 16.
    starts = window_starts(119, 25.0)
    assert len(starts) == authors_frame_count(119, 25.0) == 34
    assert list(starts[:6]) == [0, 3, 6, 9, 12, 16]
    assert starts[-1] == 103 and np.all(np.diff(starts) >= 0)
    longer = window_starts(119, 25.0, num_frames=38)  # enough frames to cover the audio
    assert list(longer[:34]) == list(starts) and list(longer[34:]) == [103] * 4
    assert list(window_starts(119, 30000 / 1001, num_frames=3)) == [0, 2, 5]  # int(i * 80 / 29.97)


def test_windows_shape_and_content(speech):
    mel = melspectrogram(speech)
    windows = mel_windows(mel, 25.0, num_frames=40)
    assert windows.shape == (40, 80, 16) and windows.dtype == np.float32
    np.testing.assert_array_equal(windows[1], mel[:, 3:19])
    np.testing.assert_array_equal(windows[-1], mel[:, -16:])


def test_short_audio_is_padded_with_silence():
    mel = melspectrogram(np.full(1000, 0.1, np.float32))  # 6 mel frames
    windows = mel_windows(mel, 25.0, num_frames=2)
    assert windows.shape == (2, 80, 16)
    np.testing.assert_array_equal(windows[0, :, :6], mel)
    assert np.all(windows[0, :, 6:] == -4.0)


def test_bad_window_arguments():
    with pytest.raises(InvalidInputError):
        mel_windows(np.zeros((80, 40)), 0.0)
    with pytest.raises(InvalidInputError):
        mel_windows(np.zeros(40), 25.0)


def test_other_settings_for_other_models():
    cfg = MelConfig(sample_rate=16000, n_mels=40, fmax=8000.0, symmetric=False)
    mel = melspectrogram(np.random.default_rng(1).standard_normal(4000).astype(np.float32) * 0.1, cfg)
    assert mel.shape == (40, 21) and float(mel.min()) >= 0.0 and float(mel.max()) <= 4.0
    with pytest.raises(InvalidInputError):
        mel_filterbank(MelConfig(fmax=9000.0))
