"""Cutting Wav2Lip's 96 x 96 input from a frame and blending its output back.

The authors' ``inference.py`` (Rudrabha/Wav2Lip) resizes the face box to 96 x 96, zeroes
the lower half of one copy (the part the generator must redraw, Prajwal et al., ACM MM 2020,
section 3.3) and pastes the resized output over the whole box. Here the paste is a feathered
blend limited to the lower face, so the eyes, brows and the box's edges keep the source
pixels and no seam shows. Frames are RGB; the model works in BGR, as it was trained.
Imports no ComfyUI module.
"""

from __future__ import annotations

import cv2
import numpy as np

from .boxes import FaceBox


def face_crop(frame: np.ndarray, box: FaceBox, size: int = 96) -> np.ndarray:
    """The box of ``frame`` resized to ``size`` x ``size``: uint8 ``[size, size, 3]`` **BGR**.

    Args:
        frame: uint8 ``[H, W, 3]`` RGB.
        box: ``(x1, y1, x2, y2)`` inside the frame, non-empty.
    """
    x1, y1, x2, y2 = box
    crop = cv2.resize(frame[y1:y2, x1:x2], (size, size), interpolation=cv2.INTER_LINEAR)
    return np.ascontiguousarray(crop[:, :, ::-1])


def model_input(crops: np.ndarray) -> np.ndarray:
    """Wav2Lip's face input from uint8 ``[B, S, S, 3]`` BGR crops: float32 ``[B, 6, S, S]`` in 0..1.

    Channels 0-2: the crop with its lower half (rows ``S // 2`` and below) zeroed;
    channels 3-5: the crop itself, the reference.
    """
    faces = crops.astype(np.float32) / 255.0
    masked = faces.copy()
    masked[:, crops.shape[1] // 2:] = 0.0
    return np.ascontiguousarray(np.concatenate([masked, faces], axis=3).transpose(0, 3, 1, 2))


def lower_face_weight(size: int = 96, top: float = 0.5, margin: float = 0.1) -> np.ndarray:
    """Feathered blend weight in crop space: float32 ``[size, size]`` in 0..1.

    A rectangle from ``top`` (fraction of the crop height: the redrawn half) down to
    ``margin`` above the bottom, ``margin`` in from the sides, blurred with a Gaussian of
    ``margin / 3``: about 1 inside, under 0.01 on the crop's border (no seam at the box
    edges) and above ``top`` (the eyes keep the source pixels).
    """
    weight = np.zeros((size, size), np.float32)
    m = max(3, int(round(margin * size)))
    weight[int(round(top * size)) + m // 2:size - m, m:size - m] = 1.0
    sigma = m / 3.0
    return cv2.GaussianBlur(weight, (0, 0), sigmaX=sigma, sigmaY=sigma)


def paste_face(frame: np.ndarray, face_bgr: np.ndarray, box: FaceBox, weight: np.ndarray, *,
               resized: bool = False) -> np.ndarray:
    """Blend a generated face into a copy of ``frame`` inside ``box``.

    Args:
        frame: uint8 ``[H, W, 3]`` RGB.
        face_bgr: float ``[S, S, 3]`` BGR in 0..1 (one Wav2Lip output, channels last).
        box: where the crop came from.
        weight: float32 ``[S, S]`` from :func:`lower_face_weight`; with ``resized``, already
            resized to the box (``[y2 - y1, x2 - x1]``, ``cv2.INTER_LINEAR``).

    Returns:
        A new uint8 ``[H, W, 3]`` RGB frame; outside the weight's support it equals ``frame``.
    """
    x1, y1, x2, y2 = box
    size = (x2 - x1, y2 - y1)
    face = cv2.resize(np.ascontiguousarray(face_bgr[:, :, ::-1], dtype=np.float32), size,
                      interpolation=cv2.INTER_LINEAR)
    w = (weight if resized else cv2.resize(weight, size, interpolation=cv2.INTER_LINEAR))[..., None]
    out = frame.copy()
    region = out[y1:y2, x1:x2].astype(np.float32) / 255.0
    blended = w * np.clip(face, 0.0, 1.0) + (1.0 - w) * region
    out[y1:y2, x1:x2] = (blended * 255.0 + 0.5).astype(np.uint8)
    return out
