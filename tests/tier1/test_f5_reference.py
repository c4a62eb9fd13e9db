"""F5 voice clone, the parts that need no model: reference preparation (resample, trim to at
most 12 s at a pause), transcript normalisation, cross-fade joining."""

from __future__ import annotations

import numpy as np
import pytest

from myspinbot.errors import InvalidInputError
from myspinbot.speech.audio_io import load_audio, resample
from myspinbot.speech.f5.reference import (
    MAX_REF_SECONDS,
    MIN_CUT_SECONDS,
    PAUSE_DB,
    TAIL_SECONDS,
    frame_levels_db,
    prepare_reference,
)
from myspinbot.speech.f5.synth import cross_fade_join, max_chunk_chars, normalise_ref_text

SR = 24000


@pytest.fixture(scope="module")
def recordings(fixtures_dir):
    left, sr_l = load_audio(fixtures_dir / "speech_front_left.wav")
    right, sr_r = load_audio(fixtures_dir / "speech_front_right.wav")
    assert sr_l == sr_r == 48000
    return left, right, sr_l


def test_fixture_reference_is_resampled_mono_trimmed(recordings):
    left, _, sr = recordings
    stereo = np.concatenate([left, left * 0.5])  # [2, T]: mixed to mono
    ref = prepare_reference(stereo, sr, SR)
    assert ref.dtype == np.float32 and ref.ndim == 1
    tail = int(TAIL_SECONDS * SR)
    assert np.all(ref[-tail:] == 0.0)
    voiced = ref.shape[0] - tail
    original_s = left.shape[1] / sr
    assert 0.3 * SR < voiced <= original_s * SR + 1  # edges trimmed, the words kept
    levels = frame_levels_db(ref[:voiced], SR)
    assert levels[0] >= -42.0 and levels[-1] >= -42.0 - 1e-6  # starts and ends on voice


def _long_reference(left, right, sr, seconds=20.0):
    """About 20 s made of the two fixture recordings with 0.7 s of silence after each."""
    gap = np.zeros((1, int(0.7 * sr)), np.float32)
    pieces, total = [], 0
    while total < seconds * sr:
        for rec in (left, right):
            pieces += [rec, gap]
            total += rec.shape[1] + gap.shape[1]
    return np.concatenate(pieces, axis=1)


def test_twenty_second_reference_is_cut_to_twelve_at_a_pause(recordings):
    left, right, sr = recordings
    long_ref = _long_reference(left, right, sr)
    assert long_ref.shape[1] / sr >= 20.0
    ref = prepare_reference(long_ref, sr, SR)
    assert ref.shape[0] <= MAX_REF_SECONDS * SR
    voiced = ref[: ref.shape[0] - int(TAIL_SECONDS * SR)]
    assert voiced.shape[0] >= MIN_CUT_SECONDS * SR

    # The prepared reference is a stretch of the (resampled) input, and the input is quiet for
    # at least 0.1 s right after the cut: the cut fell in a pause, not inside a word.
    full = resample(long_ref, sr, SR)[0]
    frame = SR // 100  # edges are trimmed in whole 10 ms frames
    offset = next(o for o in range(0, 2 * SR, frame) if np.array_equal(full[o: o + 256], voiced[:256]))
    assert np.array_equal(full[offset: offset + voiced.shape[0]], voiced)
    cut = offset + voiced.shape[0]
    after = frame_levels_db(full[cut: cut + int(0.1 * SR)], SR)
    assert np.all(after < PAUSE_DB)
    assert cut < full.shape[0] - SR  # really cut, with voice left after it


def test_reference_without_pauses_is_cut_hard_at_twelve_seconds():
    rng = np.random.default_rng(0)
    noise = (rng.standard_normal((1, 20 * SR)) * 0.1).astype(np.float32)
    ref = prepare_reference(noise, SR, SR)
    assert abs(ref.shape[0] - MAX_REF_SECONDS * SR) <= SR // 100


def test_silent_or_empty_reference_is_rejected():
    with pytest.raises(InvalidInputError, match="silent"):
        prepare_reference(np.zeros((1, SR), np.float32), SR, SR)
    with pytest.raises(InvalidInputError, match="empty"):
        prepare_reference(np.zeros((1, 0), np.float32), SR, SR)


def test_ref_text_is_required_and_normalised():
    assert normalise_ref_text("Front left") == "Front left. "
    assert normalise_ref_text("  Front\nleft. ") == "Front left. "
    assert normalise_ref_text("Front left!") == "Front left!. "
    with pytest.raises(InvalidInputError, match="ref_text is required"):
        normalise_ref_text("  \n ")


def test_chunk_size_follows_the_reference_rate_and_speed():
    # 12 bytes in 2 s -> 6 bytes/s, 20 s left of the 22 s budget -> 120 bytes per chunk
    assert max_chunk_chars(2.0, "Front left. ", 1.0) == 120
    assert max_chunk_chars(2.0, "Front left. ", 2.0) == 240


def test_cross_fade_join_lengths_and_ramps():
    a, b, c = np.ones(1000, np.float32), np.full(800, 2.0, np.float32), np.full(50, 3.0, np.float32)
    out = cross_fade_join([a, b, c], 100)
    assert out.shape[0] == 1000 + 800 + 50 - 100 - 50  # the last seam is capped by the short piece
    assert out[0] == 1.0 and out[899] == 1.0 and out[999] == pytest.approx(2.0)
    seam = out[900:1000]
    assert np.all(np.diff(seam) >= 0) and seam[0] == pytest.approx(1.0)
    assert cross_fade_join([a, b], 0).shape[0] == 1800
    assert cross_fade_join([], 100).shape[0] == 0
