"""``speech.voice_profile``: a profile's voice clip cleaned from the real speech fixtures (joined,
since each alone is 1.5 s): 24 kHz mono, 3-12 s, speech loudness normalised, too little refused."""

from __future__ import annotations

import numpy as np
import pytest

from myspinbot.errors import InvalidInputError
from myspinbot.speech.audio_io import load_audio, write_wav
from myspinbot.speech.voice_profile import (MIN_SPEECH_SECONDS, PEAK_DBFS, SAMPLE_RATE, TARGET_SPEECH_DBFS,
                                            clean_voice, clean_voice_file, speech_frames)


def joined(fixtures_dir, times: int, gain: float = 1.0) -> tuple[np.ndarray, int]:
    left, rate = load_audio(fixtures_dir / "speech_front_left.wav")
    right, _ = load_audio(fixtures_dir / "speech_front_right.wav")
    gap = np.zeros((1, int(0.3 * rate)), np.float32)
    parts = [part for _ in range(times) for part in (left, gap, right, gap)]
    return np.concatenate(parts, axis=1) * gain, rate


def speech_db(wave: np.ndarray) -> float:
    speech = speech_frames(wave, SAMPLE_RATE)
    return 20 * np.log10(np.sqrt(np.mean(np.square(speech, dtype=np.float64))))


def test_quiet_recording_is_brought_to_the_target_loudness(fixtures_dir, tmp_path):
    samples, rate = joined(fixtures_dir, 2, gain=0.05)  # about 26 dB quieter than recorded
    source = tmp_path / "quiet.wav"
    write_wav(source, samples, rate)
    seconds = clean_voice_file(source, tmp_path / "clean.wav")
    wave, out_rate = load_audio(tmp_path / "clean.wav")
    assert out_rate == SAMPLE_RATE and wave.shape[0] == 1
    assert MIN_SPEECH_SECONDS <= seconds <= 12.0
    level = speech_db(wave[0])
    peak = 20 * np.log10(np.abs(wave).max())
    assert peak <= PEAK_DBFS + 0.1
    # At the target, unless the peak limit held the gain back.
    assert level == pytest.approx(TARGET_SPEECH_DBFS, abs=0.5) or peak >= PEAK_DBFS - 0.2, (level, peak)


def test_long_recording_is_cut_to_twelve_seconds_in_a_pause(fixtures_dir):
    samples, rate = joined(fixtures_dir, 6)  # about 21 s
    wave = clean_voice(samples, rate)
    assert 3.0 <= wave.shape[0] / SAMPLE_RATE <= 12.0


def test_too_little_speech_is_refused(fixtures_dir):
    samples, rate = load_audio(fixtures_dir / "speech_front_left.wav")
    with pytest.raises(InvalidInputError) as err:
        clean_voice(samples, rate)
    assert err.value.code == "voice_too_short" and err.value.details["seconds"] < 3.0
