"""Normalise the portrait image and the speech audio into the shapes the animator uses."""

from __future__ import annotations

import cv2
import numpy as np

from ..errors import InvalidInputError
from ..video.sizing import even_size


def to_rgb_uint8(image: np.ndarray) -> np.ndarray:
    """Convert a portrait to uint8 ``[H, W, 3]`` RGB.

    Accepts ``[H, W]`` grayscale, ``[H, W, 1]``, ``[H, W, 3]`` RGB, ``[H, W, 4]`` RGBA
    (alpha composited over white), or a batch of one ``[1, H, W, C]``; dtype uint8
    (0..255), any other integer type in 0..255, or float in 0..1 (clipped).

    Raises:
        InvalidInputError: any other shape or dtype, or a side smaller than 16 px.
    """
    arr = np.asarray(image)
    if arr.ndim == 4 and arr.shape[0] == 1:
        arr = arr[0]
    if arr.ndim == 2:
        arr = arr[..., None]
    if arr.ndim != 3 or arr.shape[2] not in (1, 3, 4):
        raise InvalidInputError(f"portrait must be [H, W], [H, W, 1|3|4] or [1, H, W, C], got shape {arr.shape}")
    if arr.shape[0] < 16 or arr.shape[1] < 16:
        raise InvalidInputError(f"portrait is too small ({arr.shape[1]}x{arr.shape[0]} px)")
    if np.issubdtype(arr.dtype, np.floating):
        if not np.isfinite(arr).all():
            raise InvalidInputError("portrait contains NaN or infinite pixel values")
        work = np.clip(arr.astype(np.float32), 0.0, 1.0) * 255.0
    elif arr.dtype == np.bool_ or not np.issubdtype(arr.dtype, np.integer):
        raise InvalidInputError(f"portrait dtype {arr.dtype} is not supported (use uint8 or float 0..1)")
    elif arr.dtype != np.uint8 and (arr.min() < 0 or arr.max() > 255):
        raise InvalidInputError(f"integer portrait values must be 0..255, got {arr.min()}..{arr.max()}")
    else:
        work = arr
    if work.shape[2] == 4:
        alpha = work[..., 3:].astype(np.float32) / 255.0
        work = work[..., :3].astype(np.float32) * alpha + 255.0 * (1.0 - alpha)
    if work.dtype != np.uint8:
        work = np.clip(np.rint(work), 0, 255).astype(np.uint8)
    if work.shape[2] == 1:
        work = np.repeat(work, 3, axis=2)
    return np.ascontiguousarray(work)


def fit_portrait(image: np.ndarray, max_side: int = 1024) -> np.ndarray:
    """Downscale (never upscale) so the longer side is at most ``max_side``, with even sides.

    A 1-px edge is cropped where rounding left an odd side, so framing and aspect stay.

    Args:
        image: uint8 ``[H, W, 3]``.
        max_side: longest allowed side in px (>= 16).

    Returns:
        uint8 ``[h, w, 3]`` with even ``h`` and ``w``.

    Raises:
        InvalidInputError: ``max_side`` below 16.
    """
    if int(max_side) < 16:
        raise InvalidInputError(f"max_side must be at least 16, got {max_side}")
    h, w = image.shape[:2]
    if max(h, w) > max_side:
        scale = max_side / float(max(h, w))
        nw, nh = max(2, int(round(w * scale))), max(2, int(round(h * scale)))
        image = cv2.resize(image, (nw, nh), interpolation=cv2.INTER_AREA)
        h, w = nh, nw
    ew, eh = even_size(w, h)
    if (ew, eh) != (w, h):
        image = image[:eh, :ew]
    return np.ascontiguousarray(image)


def to_audio_channels_first(audio: np.ndarray, sample_rate: int) -> np.ndarray:
    """Validate speech audio and return it as float32 ``[C, T]`` (C = 1 or 2).

    Accepts ``[T]`` (mono) or ``[C, T]`` float in -1..1. Float32 input is returned as a
    view (no copy); more than two channels are averaged to mono.

    Raises:
        InvalidInputError: wrong shape or dtype, empty, non-positive ``sample_rate``.
    """
    if sample_rate is None or int(sample_rate) != sample_rate or int(sample_rate) <= 0:
        raise InvalidInputError(f"sample_rate must be a positive integer (Hz), got {sample_rate!r}")
    arr = np.asarray(audio)
    if arr.ndim == 1:
        arr = arr[None, :]
    if arr.ndim != 2:
        raise InvalidInputError(f"audio must be [channels, samples] or [samples], got shape {arr.shape}")
    if arr.shape[0] > arr.shape[1]:
        raise InvalidInputError(f"audio looks like [samples, channels] {arr.shape}; pass [channels, samples]")
    if arr.shape[1] == 0:
        raise InvalidInputError("audio has no samples")
    if not np.issubdtype(arr.dtype, np.floating):
        raise InvalidInputError(f"audio must be float samples in -1..1, got dtype {arr.dtype}")
    if arr.shape[0] > 2:
        arr = arr.mean(axis=0, keepdims=True)
    return arr.astype(np.float32, copy=False)
