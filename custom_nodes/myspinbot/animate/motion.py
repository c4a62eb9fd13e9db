"""Seeded idle motion: eye-blink closure and a slow, tiny head drift, per video frame."""

from __future__ import annotations

import math

import numpy as np


def blink_closure(
    frame_count: int,
    fps: float,
    seed: int = 0,
    *,
    interval_s: tuple[float, float] = (2.0, 6.0),
    duration_s: tuple[float, float] = (0.12, 0.18),
) -> np.ndarray:
    """Eyelid closure per frame: 0 open, 1 fully shut.

    Blinks start every ``interval_s`` seconds (uniform, seeded; the first after 0.8-3 s)
    and last ``duration_s`` seconds: the lid closes in ~40 % of the blink and reopens in
    the rest, with a smooth (raised-cosine) profile sampled at each frame's middle time.

    Args:
        frame_count: N frames.
        fps: frames per second.
        seed: random seed; the same seed gives the same blinks.

    Returns:
        float32 ``[N]`` in 0..1.
    """
    rng = np.random.default_rng([int(seed) & 0xFFFFFFFF, 0xB11])
    out = np.zeros(frame_count, np.float32)
    total = frame_count / fps
    start = float(rng.uniform(0.8, 3.0))
    while start < total:
        length = float(rng.uniform(*duration_s))
        close = 0.4 * length
        first = max(0, int(math.floor(start * fps)))
        last = min(frame_count - 1, int(math.ceil((start + length) * fps)))
        for i in range(first, last + 1):
            t = (i + 0.5) / fps - start
            if 0.0 <= t <= close:
                v = 0.5 - 0.5 * math.cos(math.pi * t / close)
            elif close < t <= length:
                v = 0.5 + 0.5 * math.cos(math.pi * (t - close) / (length - close))
            else:
                continue
            out[i] = max(out[i], v)
        # A blink shorter than a frame would be missed; make sure its frame shows it.
        if out[first:last + 1].size and out[first:last + 1].max() < 0.6:
            peak = min(frame_count - 1, int((start + close) * fps))
            out[peak] = max(out[peak], 0.85)
        start += length + float(rng.uniform(*interval_s))
    return out


def head_drift(frame_count: int, fps: float, amplitude_px: float, seed: int = 0) -> np.ndarray:
    """A smooth, seeded head offset per frame, within ``amplitude_px`` on each axis.

    Sum of three slow sinusoids (0.05-0.35 Hz) per axis with random phases, scaled so the
    peak is ``amplitude_px``; the vertical axis moves at 60 % of the horizontal.

    Args:
        frame_count: N frames.
        fps: frames per second.
        amplitude_px: largest offset in pixels (0 disables).
        seed: random seed.

    Returns:
        float32 ``[N, 2]``: ``(dx, dy)`` in pixels per frame.
    """
    out = np.zeros((frame_count, 2), np.float32)
    if amplitude_px <= 0 or frame_count == 0:
        return out
    rng = np.random.default_rng([int(seed) & 0xFFFFFFFF, 0x4EAD])
    t = np.arange(frame_count, dtype=np.float64) / fps
    for axis, scale in ((0, 1.0), (1, 0.6)):
        freqs = rng.uniform(0.05, 0.35, 3)
        phases = rng.uniform(0, 2 * math.pi, 3)
        weights = rng.uniform(0.5, 1.0, 3)
        wave = sum(w * np.sin(2 * math.pi * f * t + p) for f, p, w in zip(freqs, phases, weights))
        out[:, axis] = (wave / weights.sum() * amplitude_px * scale).astype(np.float32)
    return out
