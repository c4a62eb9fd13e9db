"""Face crops for SyncNet: one face track over the clip, smoothed, cut as the authors cut it.

``run_pipeline.py`` of joonson/syncnet_python (used by Wav2Lip's LSE evaluation as well)
detects faces (S3FD), links them into a track, interpolates the box over missed frames and
describes it by its centre ``(x, y)`` and half-size ``s = max(w, h) / 2``, each median-filtered
over 13 frames (``scipy.signal.medfilt``: zeros beyond the ends). Each frame, padded by
``int(s (1 + 2 cs))`` pixels of grey 110, is cut to rows ``y - s .. y + s (1 + 2 cs)`` and
columns ``x - s (1 + cs) .. x + s (1 + cs)`` (``cs`` = crop scale 0.4: the lower face and the
mouth, down past the chin) and resized to 224 x 224 (bilinear).

Here the boxes come from OpenCV's Haar cascades (:func:`.boxes.find_face_box`, no weights),
lengthened by a tenth below to reach the chin as an S3FD box does; the clip is treated as
one track (frames without a detection take the box interpolated from their neighbours, the
first or last one beyond the ends). Imports no ComfyUI module.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from ..errors import InvalidInputError, NoFaceDetectedError
from .boxes import BoxSettings, FaceBox, find_face_box


@dataclass(frozen=True)
class CropSettings:
    """How SyncNet's face crops are made.

    Attributes:
        crop_scale: the authors' ``crop_scale`` (0.4).
        smooth_kernel: median filter length over frames, odd (13).
        size: side of the crop, px (224: what the model takes).
        pad_value: grey level outside the frame (110).
        boxes: detection settings (no padding; Haar box lengthened by ``chin_margin``).
    """

    crop_scale: float = 0.4
    smooth_kernel: int = 13
    size: int = 224
    pad_value: int = 110
    boxes: BoxSettings = BoxSettings(pads=(0, 0, 0, 0), chin_margin=0.1, smooth_window=1, min_side=16)

    def __post_init__(self) -> None:
        if self.smooth_kernel < 1 or self.smooth_kernel % 2 == 0:
            raise InvalidInputError(f"smooth_kernel must be odd and positive, got {self.smooth_kernel}")


def detect_box(frame_rgb: np.ndarray, settings: CropSettings = CropSettings()) -> FaceBox | None:
    """The largest face's box ``(x1, y1, x2, y2)`` in a uint8 ``[H, W, 3]`` RGB frame, or ``None``."""
    return find_face_box(frame_rgb, settings.boxes)


def _medfilt(x: np.ndarray, kernel: int) -> np.ndarray:
    padded = np.pad(x, kernel // 2)
    return np.median(np.lib.stride_tricks.sliding_window_view(padded, kernel), axis=1)


def face_track(boxes: list[FaceBox | None], settings: CropSettings = CropSettings()) -> np.ndarray:
    """Per frame ``(s, x, y)``: half-size and centre of the face, interpolated and smoothed.

    Args:
        boxes: one detection (or ``None``) per frame.

    Returns:
        float64 ``[N, 3]``.

    Raises:
        NoFaceDetectedError: no frame has a face.
    """
    found = [i for i, b in enumerate(boxes) if b is not None]
    if not found:
        raise NoFaceDetectedError(f"no face found in any of the {len(boxes)} frame(s) to score",
                                  details={"frames_checked": len(boxes)})
    raw = np.array([[max(b[3] - b[1], b[2] - b[0]) / 2, (b[0] + b[2]) / 2, (b[1] + b[3]) / 2]
                    for b in (boxes[i] for i in found)], dtype=np.float64)
    frames = np.arange(len(boxes))
    track = np.stack([np.interp(frames, found, raw[:, k]) for k in range(3)], axis=1)
    return np.stack([_medfilt(track[:, k], settings.smooth_kernel) for k in range(3)], axis=1)


def crop_face(frame_rgb: np.ndarray, s: float, x: float, y: float, settings: CropSettings = CropSettings()) -> np.ndarray:
    """The authors' crop of one frame for track values ``(s, x, y)``.

    Args:
        frame_rgb: uint8 ``[H, W, 3]`` RGB.
        s, x, y: half-size and centre of the face, px.

    Returns:
        uint8 ``[size, size, 3]`` **BGR** (the channel order the model was trained on).

    Raises:
        InvalidInputError: not a uint8 RGB frame, or a face box under one pixel.
    """
    if frame_rgb.ndim != 3 or frame_rgb.shape[2] != 3 or frame_rgb.dtype != np.uint8:
        raise InvalidInputError(f"frame must be uint8 [H, W, 3], got {frame_rgb.dtype} {list(frame_rgb.shape)}")
    cs = settings.crop_scale
    pad = int(s * (1 + 2 * cs))
    my, mx = y + pad, x + pad  # centre in the padded frame
    h, w = frame_rgb.shape[:2]
    # A slice of the padded frame, so it ends where the padded frame ends (as numpy cuts it).
    rows = (max(int(my - s), 0), min(int(my + s * (1 + 2 * cs)), h + 2 * pad))
    cols = (max(int(mx - s * (1 + cs)), 0), min(int(mx + s * (1 + cs)), w + 2 * pad))
    if rows[1] - rows[0] < 1 or cols[1] - cols[0] < 1:
        raise InvalidInputError(f"face box too small to crop (half-size {s:.2f} px)")
    out = np.full((rows[1] - rows[0], cols[1] - cols[0], 3), settings.pad_value, np.uint8)
    # Rows/columns of the padded frame that hold the picture: pad .. pad + h (resp. w).
    r0, r1 = max(rows[0], pad), min(rows[1], pad + h)
    c0, c1 = max(cols[0], pad), min(cols[1], pad + w)
    if r0 < r1 and c0 < c1:
        out[r0 - rows[0]:r1 - rows[0], c0 - cols[0]:c1 - cols[0]] = frame_rgb[r0 - pad:r1 - pad, c0 - pad:c1 - pad]
    crop = cv2.resize(out, (settings.size, settings.size), interpolation=cv2.INTER_LINEAR)
    return np.ascontiguousarray(crop[:, :, ::-1])
