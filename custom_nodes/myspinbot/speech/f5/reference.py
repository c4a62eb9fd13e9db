"""Preparing the reference recording for F5-TTS: mono, 24 kHz, silent edges trimmed, at most
12 s long (cut in a pause, so no word is split), with a short pause appended.

F5-TTS conditions on the whole reference and the package's own preprocessing keeps it under
12 s the same way (it clips at pauses found with pydub, which needs the ffmpeg program); this
is a small energy-based equivalent on numpy arrays.
"""

from __future__ import annotations

import logging

import numpy as np

from ...errors import InvalidInputError
from ..audio_io import resample, to_mono

log = logging.getLogger("myspinbot")

MAX_REF_SECONDS = 12.0
MIN_CUT_SECONDS = 3.0  # a cut earlier than this leaves too little voice: cut hard at 12 s instead
FRAME_SECONDS = 0.01  # level measured over 10 ms frames
EDGE_SILENCE_DB = -42.0  # leading/trailing frames quieter than this (dBFS RMS) are trimmed
PAUSE_DB = -40.0  # a pause: frames quieter than this ...
MIN_PAUSE_SECONDS = 0.1  # ... for at least this long
TAIL_SECONDS = 0.05  # silence appended after the reference (as the package does)


def frame_levels_db(samples: np.ndarray, sample_rate: int, frame_s: float = FRAME_SECONDS) -> np.ndarray:
    """RMS level in dBFS of consecutive ``frame_s`` frames of a 1-D signal (a partial last frame counts)."""
    n = max(1, int(round(frame_s * sample_rate)))
    count = -(-samples.shape[-1] // n)
    padded = np.zeros(count * n, np.float32)
    padded[: samples.shape[-1]] = samples
    rms = np.sqrt(np.mean(np.square(padded.reshape(count, n), dtype=np.float64), axis=1))
    return 20.0 * np.log10(np.maximum(rms, 1e-10))


def _pauses(levels: np.ndarray, threshold_db: float, min_frames: int) -> list[tuple[int, int]]:
    """``[start, end)`` frame ranges quieter than ``threshold_db`` for at least ``min_frames``."""
    quiet = np.concatenate([[False], levels < threshold_db, [False]])
    edges = np.flatnonzero(np.diff(quiet.astype(np.int8)))
    runs = zip(edges[0::2], edges[1::2])
    return [(int(s), int(e)) for s, e in runs if e - s >= min_frames]


def trim_edges(samples: np.ndarray, sample_rate: int, threshold_db: float = EDGE_SILENCE_DB) -> np.ndarray:
    """Cut leading and trailing frames quieter than ``threshold_db``; raise if all are."""
    n = max(1, int(round(FRAME_SECONDS * sample_rate)))
    loud = np.flatnonzero(frame_levels_db(samples, sample_rate) >= threshold_db)
    if loud.size == 0:
        raise InvalidInputError(f"the reference audio is silent (no 10 ms frame above {threshold_db:g} dBFS)")
    return samples[loud[0] * n: min(samples.shape[-1], (loud[-1] + 1) * n)]


def cut_point(samples: np.ndarray, sample_rate: int, max_seconds: float = MAX_REF_SECONDS) -> int:
    """Where to end a reference longer than ``max_seconds``: the start of the last pause that
    begins between ``MIN_CUT_SECONDS`` and ``max_seconds`` (so the reference ends with a whole
    word), else a hard cut at ``max_seconds``. Returns a sample index."""
    limit = int(max_seconds * sample_rate)
    if samples.shape[-1] <= limit:
        return samples.shape[-1]
    n = max(1, int(round(FRAME_SECONDS * sample_rate)))
    levels = frame_levels_db(samples, sample_rate)
    pauses = _pauses(levels, PAUSE_DB, max(1, int(round(MIN_PAUSE_SECONDS / FRAME_SECONDS))))
    lowest = int(MIN_CUT_SECONDS * sample_rate)
    starts = [s * n for s, _ in pauses if lowest <= s * n <= limit]
    return max(starts) if starts else limit


def prepare_reference(ref_audio: np.ndarray, ref_sr: int, sample_rate: int = 24000,
                      max_seconds: float = MAX_REF_SECONDS) -> np.ndarray:
    """The reference as F5-TTS wants it.

    Args:
        ref_audio: float32 ``[C, T]`` (or ``[T]``) in -1..1.
        ref_sr: its rate in Hz.
        sample_rate: the model's rate (24000).
        max_seconds: longest reference kept (12 s), cut in a pause where there is one.

    Returns:
        float32 ``[T]`` at ``sample_rate``: mono, silent edges trimmed, followed by 50 ms
        of silence; at most ``max_seconds`` long in all.

    Raises:
        InvalidInputError: not 1-D/2-D, empty, not finite, or silent.
    """
    array = np.asarray(ref_audio)
    if array.size == 0 or array.shape[-1] == 0:
        raise InvalidInputError("the reference audio is empty")
    mono = to_mono(array)
    if not np.all(np.isfinite(mono)):
        raise InvalidInputError("the reference audio contains NaN or infinity")
    wave = resample(mono, int(ref_sr), sample_rate)[0]
    wave = trim_edges(wave, sample_rate)
    cut = cut_point(wave, sample_rate, max_seconds - TAIL_SECONDS)
    if cut < wave.shape[0]:
        log.warning("F5-TTS reference is %.1f s of voice; using its first %.1f s (cut at a pause). "
                    "ref_text should say only what is spoken in that part.", wave.shape[0] / sample_rate, cut / sample_rate)
    wave = wave[:cut]
    wave = trim_edges(wave, sample_rate)
    tail = np.zeros(int(round(TAIL_SECONDS * sample_rate)), np.float32)
    return np.ascontiguousarray(np.concatenate([wave, tail]), dtype=np.float32)
