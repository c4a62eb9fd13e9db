"""Checks on produced talking-head videos, shared by tier-1 and tier-2 tests."""

from __future__ import annotations

import numpy as np


def region(frames: np.ndarray, box, x0: float, x1: float, y0: float, y1: float) -> np.ndarray:
    """Crop ``frames [N,H,W,C]`` to a part of the face box ``(x, y, w, h)`` given in box fractions."""
    fx, fy, fw, fh = box
    return frames[:, int(fy + y0 * fh):int(fy + y1 * fh), int(fx + x0 * fw):int(fx + x1 * fw)]


def mouth_motion(frames: np.ndarray, box, audio: np.ndarray, rate: int, fps: float) -> tuple[float, np.ndarray, np.ndarray]:
    """How well mouth motion follows the speech.

    ``frames``: ``float32 [N,H,W,3]``; ``audio``: ``float32 [C,T]``. Returns (Pearson r between
    the per-frame mean absolute change of the mouth region against frame 0 and the per-frame
    audio RMS in a 40 ms window at each frame's middle; mouth change per frame; change per
    frame of the region above the eyes), changes in 0..255 units."""
    mouth = region(frames, box, 0.2, 0.8, 0.70, 1.10)
    above_eyes = region(frames, box, 0.15, 0.85, 0.02, 0.25)
    mouth_change = np.abs(mouth - mouth[0]).mean(axis=(1, 2, 3))
    forehead_change = np.abs(above_eyes - above_eyes[0]).mean(axis=(1, 2, 3))
    mono = audio.mean(axis=0)
    half = int(0.02 * rate)
    centres = ((np.arange(len(frames)) + 0.5) / fps * rate).astype(int)
    rms = np.array([np.sqrt(np.mean(mono[max(0, c - half):c + half] ** 2)) if c - half < len(mono) else 0.0 for c in centres])
    return float(np.corrcoef(mouth_change, rms)[0, 1]), mouth_change, forehead_change
