"""A profile's voice clip: the uploaded recording cleaned once for F5-TTS zero-shot cloning.

Mono 24 kHz, silent edges trimmed, cut in a pause to at most 12 s (``f5.reference``, the same
preparation the voice-clone node applies), refused under 3 s of speech, and loudness-normalised:
the RMS of the frames that carry speech (within ``SPEECH_RANGE_DB`` of the loudest 10 ms frame,
so the choice does not depend on the recording's level) brought to ``TARGET_SPEECH_DBFS``, the
peak kept under ``PEAK_DBFS``.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..errors import InvalidInputError
from .audio_io import load_audio, write_wav
from .f5.reference import FRAME_SECONDS, MAX_REF_SECONDS, frame_levels_db, prepare_reference

SAMPLE_RATE = 24000
MIN_SPEECH_SECONDS = 3.0
TARGET_SPEECH_DBFS = -20.0
PEAK_DBFS = -1.0
SPEECH_RANGE_DB = 30.0


def clean_voice(samples: np.ndarray, sample_rate: int) -> np.ndarray:
    """The cleaned clip.

    Args:
        samples: float32 ``[C, T]`` or ``[T]`` in -1..1.
        sample_rate: its rate, Hz.

    Returns:
        float32 ``[T]`` at 24 kHz, 3-12 s long.

    Raises:
        InvalidInputError: empty, silent, not finite, or under 3 s of speech (code ``voice_too_short``).
    """
    wave = prepare_reference(samples, sample_rate, SAMPLE_RATE, MAX_REF_SECONDS)
    seconds = wave.shape[0] / SAMPLE_RATE
    if seconds < MIN_SPEECH_SECONDS:
        raise InvalidInputError(f"the voice sample holds {seconds:.1f} s of speech; at least "
                                f"{MIN_SPEECH_SECONDS:g} s are needed", code="voice_too_short",
                                details={"seconds": round(seconds, 2)})
    return normalise_loudness(wave, SAMPLE_RATE)


def normalise_loudness(wave: np.ndarray, sample_rate: int) -> np.ndarray:
    """``wave`` (float32 ``[T]``) scaled so its speech frames' RMS is ``TARGET_SPEECH_DBFS``, peak
    at most ``PEAK_DBFS`` (whichever gain is lower)."""
    speech = speech_frames(wave, sample_rate)
    rms = float(np.sqrt(np.mean(np.square(speech, dtype=np.float64)))) or 1e-9
    peak = float(np.max(np.abs(wave))) or 1e-9
    gain = min(10 ** (TARGET_SPEECH_DBFS / 20) / rms, 10 ** (PEAK_DBFS / 20) / peak)
    return (wave * gain).astype(np.float32)


def speech_frames(wave: np.ndarray, sample_rate: int) -> np.ndarray:
    """The samples of the 10 ms frames of ``wave`` within ``SPEECH_RANGE_DB`` of its loudest frame."""
    n = max(1, int(round(FRAME_SECONDS * sample_rate)))
    levels = frame_levels_db(wave, sample_rate)
    loud = np.flatnonzero(levels >= levels.max() - SPEECH_RANGE_DB)
    return np.concatenate([wave[i * n:(i + 1) * n] for i in loud])


def clean_voice_file(source: str | os.PathLike, target: str | os.PathLike) -> float:
    """Decode ``source`` (any format ``audio_io.load_audio`` reads), clean it, write a 16-bit WAV
    to ``target``; returns its length in seconds. Raises ``InvalidInputError``."""
    samples, rate = load_audio(Path(source))
    wave = clean_voice(samples, rate)
    write_wav(target, wave, SAMPLE_RATE)
    return wave.shape[0] / SAMPLE_RATE
