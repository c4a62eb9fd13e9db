"""Colour transfer between video windows: per-channel mean / standard deviation matching in CIE
L*a*b* (D65) or RGB, so later windows of a chained talking-head video keep the first window's
colours. NumPy only; frames are ``[..., 3]`` float32 sRGB in 0..1.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..errors import InvalidInputError

_SRGB_TO_XYZ = np.array([[0.4124564, 0.3575761, 0.1804375],
                         [0.2126729, 0.7151522, 0.0721750],
                         [0.0193339, 0.1191920, 0.9503041]], dtype=np.float32)
_XYZ_TO_SRGB = np.linalg.inv(_SRGB_TO_XYZ.astype(np.float64)).astype(np.float32)
_WHITE_D65 = np.array([0.95047, 1.0, 1.08883], dtype=np.float32)
_EPS = 216.0 / 24389.0
_KAPPA = 24389.0 / 27.0


def rgb_to_lab(rgb: np.ndarray) -> np.ndarray:
    """sRGB (``[..., 3]``, 0..1) to CIE L*a*b* (D65): L in 0..100, a/b roughly -128..127."""
    c = np.clip(np.asarray(rgb, dtype=np.float32), 0.0, 1.0)
    linear = np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)
    xyz = (linear @ _SRGB_TO_XYZ.T) / _WHITE_D65
    f = np.where(xyz > _EPS, np.cbrt(xyz), (_KAPPA * xyz + 16.0) / 116.0)
    lab = np.empty_like(f)
    lab[..., 0] = 116.0 * f[..., 1] - 16.0
    lab[..., 1] = 500.0 * (f[..., 0] - f[..., 1])
    lab[..., 2] = 200.0 * (f[..., 1] - f[..., 2])
    return lab


def lab_to_rgb(lab: np.ndarray) -> np.ndarray:
    """Inverse of :func:`rgb_to_lab`; the result is clipped to 0..1."""
    lab = np.asarray(lab, dtype=np.float32)
    fy = (lab[..., 0] + 16.0) / 116.0
    fx = fy + lab[..., 1] / 500.0
    fz = fy - lab[..., 2] / 200.0
    f = np.stack([fx, fy, fz], axis=-1)
    f3 = f ** 3
    xyz = np.where(f3 > _EPS, f3, (116.0 * f - 16.0) / _KAPPA) * _WHITE_D65
    linear = np.clip(xyz @ _XYZ_TO_SRGB.T, 0.0, 1.0)
    rgb = np.where(linear <= 0.0031308, linear * 12.92, 1.055 * np.power(linear, 1.0 / 2.4) - 0.055)
    return np.clip(rgb, 0.0, 1.0).astype(np.float32)


COLOR_SPACES = ("lab", "rgb")


@dataclass(frozen=True)
class ColorStats:
    """Per-channel mean and standard deviation of some frames in ``space`` ("lab" or "rgb")."""

    space: str
    mean: np.ndarray
    std: np.ndarray


def _to_space(frames: np.ndarray, space: str) -> np.ndarray:
    if space == "lab":
        return rgb_to_lab(frames)
    if space == "rgb":
        return np.asarray(frames, dtype=np.float32)
    raise InvalidInputError(f"colour space must be one of {COLOR_SPACES}, got {space!r}")


def color_stats(frames: np.ndarray, space: str = "lab", max_pixels: int = 1 << 20) -> ColorStats:
    """Statistics of ``frames`` (``float [N, H, W, 3]`` or ``[H, W, 3]`` in 0..1).

    At most about ``max_pixels`` pixels are read (an even sub-grid of frames and rows/columns),
    which is plenty for two moments and keeps this cheap on large windows."""
    arr = np.asarray(frames)
    if arr.ndim == 3:
        arr = arr[np.newaxis]
    if arr.ndim != 4 or arr.shape[-1] != 3 or arr.shape[0] == 0:
        raise InvalidInputError(f"frames must be [N, H, W, 3], got shape {arr.shape}")
    n, h, w, _ = arr.shape
    per_frame = max(1, max_pixels // (h * w))
    sub = arr[:: math.ceil(n / per_frame)] if n > per_frame else arr
    if h * w > max_pixels:
        step = math.ceil(math.sqrt(h * w / max_pixels))
        sub = sub[:, ::step, ::step]
    values = _to_space(sub, space).reshape(-1, 3).astype(np.float64)
    return ColorStats(space, values.mean(axis=0).astype(np.float32), values.std(axis=0).astype(np.float32))


def match_color(
    frames: np.ndarray,
    reference: ColorStats,
    current: ColorStats | None = None,
    *,
    strength: float = 1.0,
    max_gain: float = 2.0,
    chunk: int = 8,
) -> np.ndarray:
    """Shift and scale each channel of ``frames`` so their statistics become ``reference``'s.

    ``x' = (x - mean_cur) * clip(std_ref / std_cur, 1/max_gain, max_gain) + mean_ref`` in the
    reference's colour space, blended with the input by ``strength`` (0 = unchanged). One
    transform for all ``frames`` (``current`` = their stats, computed if not given), so motion
    inside them is kept. Works ``chunk`` frames at a time; returns ``float32`` in 0..1.
    """
    arr = np.asarray(frames, dtype=np.float32)
    single = arr.ndim == 3
    if single:
        arr = arr[np.newaxis]
    if current is None:
        current = color_stats(arr, reference.space)
    if current.space != reference.space:
        raise InvalidInputError(f"colour statistics in different spaces: {current.space} vs {reference.space}")
    gain = np.clip(reference.std / np.maximum(current.std, 1e-6), 1.0 / max_gain, max_gain).astype(np.float32)
    shift = (reference.mean - current.mean * gain).astype(np.float32)
    strength = float(np.clip(strength, 0.0, 1.0))
    out = np.empty_like(arr)
    for i in range(0, arr.shape[0], max(1, chunk)):
        part = arr[i:i + chunk]
        moved = _to_space(part, reference.space) * gain + shift
        moved = lab_to_rgb(moved) if reference.space == "lab" else np.clip(moved, 0.0, 1.0)
        out[i:i + chunk] = part + strength * (moved - part) if strength < 1.0 else moved
    return out[0] if single else out
