"""Mouth drive from audio: per-video-frame loudness -> mouth opening 0..1, plus a
spectral width cue (bright "ee"/"s" sounds widen, dark "oo"/"o" sounds narrow).

Everything is computed per frame from a short window of samples, so the cost is
``O(frames * window)`` and only one float per frame (two arrays) is kept.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..errors import InvalidInputError

SILENCE_DB = -100.0


@dataclass(frozen=True)
class MouthDrive:
    """Per-frame mouth controls.

    Attributes:
        opening: float32 ``[N]`` in 0..1 (0 closed, 1 widest for this clip).
        width: float32 ``[N]`` in -1..1 (negative rounder/narrower, positive wider).
        level_db: float32 ``[N]`` frame loudness in dBFS (RMS), before gating.
    """

    opening: np.ndarray
    width: np.ndarray
    level_db: np.ndarray


def frame_count_for(duration_s: float, fps: float) -> int:
    """Frames needed so the video covers ``duration_s`` seconds (``ceil``, at least 1)."""
    return max(1, int(math.ceil(duration_s * fps - 1e-9)))


def _window(audio: np.ndarray, center: int, half: int) -> np.ndarray:
    start, stop = max(0, center - half), min(audio.shape[1], center + half)
    if stop <= start:
        return np.zeros(0, np.float32)
    block = audio[:, start:stop]
    return block[0] if block.shape[0] == 1 else block.mean(axis=0, dtype=np.float32)


def frame_features(
    audio: np.ndarray, sample_rate: int, fps: float, frame_count: int, *, window_s: float | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Per-frame RMS level (dBFS) and high/low spectral balance (dB).

    The window is centred on each frame's middle time ``(i + 0.5) / fps``.

    Args:
        audio: float32 ``[C, T]`` in -1..1 (channels are averaged per window).
        sample_rate: Hz.
        fps: video frames per second.
        frame_count: number of frames N.
        window_s: window length in seconds (default ``max(1.5 / fps, 0.04)``).

    Returns:
        ``(level_db, tilt_db)``, each float32 ``[N]``; ``level_db`` is >= ``SILENCE_DB``;
        ``tilt_db`` is energy(2-5 kHz) over energy(250-1000 Hz) in dB (0 where silent).
    """
    win_s = window_s if window_s is not None else max(1.5 / fps, 0.04)
    half = max(1, int(round(win_s * sample_rate / 2)))
    nfft = 1 << int(math.ceil(math.log2(2 * half)))
    freqs = np.fft.rfftfreq(nfft, 1.0 / sample_rate)
    low = (freqs >= 250) & (freqs < 1000)
    high = (freqs >= 2000) & (freqs < min(5000, sample_rate / 2))
    taper = np.hanning(2 * half).astype(np.float32)
    level = np.full(frame_count, SILENCE_DB, np.float32)
    tilt = np.zeros(frame_count, np.float32)
    for i in range(frame_count):
        center = int(round((i + 0.5) / fps * sample_rate))
        x = _window(audio, center, half)
        if x.size < 2:
            continue
        ms = float(np.mean(np.square(x, dtype=np.float64)))
        if ms <= 1e-10:
            continue
        level[i] = max(SILENCE_DB, 10.0 * math.log10(ms))
        if high.any():
            spec = np.abs(np.fft.rfft(x * taper[: x.size], nfft)) ** 2
            tilt[i] = 10.0 * math.log10((spec[high].sum() + 1e-12) / (spec[low].sum() + 1e-12))
    return level, tilt


def _attack_release(x: np.ndarray, fps: float, attack_s: float, release_s: float) -> np.ndarray:
    a_up = 1.0 - math.exp(-1.0 / (fps * max(attack_s, 1e-6)))
    a_dn = 1.0 - math.exp(-1.0 / (fps * max(release_s, 1e-6)))
    out = np.empty_like(x)
    y = 0.0
    for i, v in enumerate(x.tolist()):
        y += (a_up if v > y else a_dn) * (v - y)
        out[i] = y
    return out


def mouth_drive(
    audio: np.ndarray,
    sample_rate: int,
    fps: float,
    frame_count: int,
    *,
    attack_s: float = 0.02,
    release_s: float = 0.07,
    dynamic_range_db: float = 35.0,
) -> MouthDrive:
    """Turn speech audio into per-frame mouth opening and width cue.

    Loudness is RMS in dB per frame; the reference is the 95th percentile of the voiced
    frames, the gate sits at ``max(noise_floor + 6 dB, ref - dynamic_range_db)`` (but at
    least 12 dB below ref), where the noise floor is the 10th percentile. Opening is the
    gated level mapped linearly in dB to 0..1, shaped, then smoothed with a fast attack
    and slower release. A clip with no audible sound (ref below -60 dBFS) gives zeros.

    Args:
        audio: float32 ``[C, T]`` in -1..1.
        sample_rate: Hz (> 0).
        fps: video frames per second (> 0).
        frame_count: number of frames N (>= 1).
        attack_s, release_s: smoothing time constants in seconds.
        dynamic_range_db: widest loudness span mapped onto 0..1.

    Returns:
        :class:`MouthDrive` with arrays of length N.

    Raises:
        InvalidInputError: bad shape, rate, fps or frame count.
    """
    if audio.ndim != 2 or audio.shape[1] == 0:
        raise InvalidInputError(f"audio must be a non-empty [channels, samples] array, got {audio.shape}")
    if sample_rate <= 0 or fps <= 0 or frame_count < 1:
        raise InvalidInputError(f"bad drive settings: sample_rate={sample_rate}, fps={fps}, frames={frame_count}")
    level, tilt = frame_features(audio, sample_rate, fps, frame_count)
    voiced = level[level > SILENCE_DB + 1]
    if voiced.size == 0 or float(np.percentile(voiced, 95)) < -60.0:
        zeros = np.zeros(frame_count, np.float32)
        return MouthDrive(opening=zeros, width=zeros.copy(), level_db=level)
    ref = float(np.percentile(voiced, 95))
    floor = float(np.percentile(level, 10))
    gate = min(max(floor + 6.0, ref - dynamic_range_db), ref - 12.0)
    raw = np.clip((level - gate) / (ref - gate), 0.0, 1.0) ** 0.8
    opening = np.clip(_attack_release(raw.astype(np.float32), fps, attack_s, release_s), 0.0, 1.0)
    # Width cue: spectral tilt relative to the clip's typical voiced tilt, squashed to -1..1,
    # only where the mouth is open (silence has no vowel).
    active = raw > 0.05
    centre = float(np.median(tilt[active])) if active.any() else 0.0
    width = np.tanh((tilt - centre) / 8.0) * (raw > 0.0)
    width = _attack_release(width.astype(np.float32), fps, 0.04, 0.04)
    return MouthDrive(opening=opening.astype(np.float32), width=width.astype(np.float32), level_db=level)
