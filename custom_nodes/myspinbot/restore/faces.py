"""Face restoration around a blind face-restoration model: align, restore, paste back.

The pipeline follows the one GFPGAN popularised (Wang et al., "Towards Real-World Blind
Face Restoration with Generative Facial Prior", CVPR 2021): the face is warped by a
similarity transform onto the FFHQ alignment template (512 x 512), restored there by the
model, and warped back with a feathered mask. Here the landmarks come from OpenCV's Haar
cascades (:mod:`..animate.face`: eye centres and the mouth centre), so no detector weights
are needed, and a :class:`FaceTracker` smooths them over video frames so the crop does not
jitter. The face is cut from the *source* frame and pasted onto the *output* frame (for
example the same frame after an x4 upscale), as GFPGAN does with its background upsampler.

Imports no ComfyUI module. Images are uint8 ``[H, W, 3]`` RGB numpy arrays.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import cv2
import numpy as np

from ..animate.face import detect_faces, face_layout
from ..errors import InvalidInputError

CROP_SIZE = 512
"""Side of the aligned face crop in px (the size GFPGAN and RestoreFormer are trained at)."""

# FFHQ alignment template for a 512 px crop (the five-point template used by GFPGAN's
# face helper): eye centres and the midpoint of the two mouth corners, in crop pixels.
TEMPLATE_512 = np.array(
    [
        [192.98138, 239.94708],  # eye on the image's left
        [318.90277, 240.19360],  # eye on the image's right
        [257.17511, 371.28081],  # mouth centre
    ],
    dtype=np.float64,
)

RestoreFn = Callable[[np.ndarray], np.ndarray]
"""``restore(crop)``: float32 ``[512, 512, 3]`` RGB in 0..1 -> the same shape, restored."""


def face_points(image: np.ndarray) -> np.ndarray | None:
    """Landmarks of the largest face: ``[[left eye], [right eye], [mouth centre]]``, float64 px.

    Args:
        image: uint8 ``[H, W, 3]`` RGB.

    Returns:
        A ``[3, 2]`` array of ``(x, y)`` in image pixels, or ``None`` when no face is found.

    Raises:
        InvalidInputError: the image is not uint8 RGB.
    """
    faces = detect_faces(image)
    if not faces:
        return None
    layout = face_layout(image, faces[0])
    return np.array([layout.eyes[0].center, layout.eyes[1].center, layout.mouth_center], dtype=np.float64)


def similarity_transform(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Least-squares similarity transform (rotation, uniform scale, translation) ``src -> dst``.

    Args:
        src, dst: ``[N, 2]`` point sets (N >= 2), same order.

    Returns:
        A float64 ``[2, 3]`` affine matrix ``M`` with ``dst ~= M @ [x, y, 1]``.
    """
    src = np.asarray(src, np.float64)
    dst = np.asarray(dst, np.float64)
    src_mean, dst_mean = src.mean(0), dst.mean(0)
    s, d = src - src_mean, dst - dst_mean
    # Closed form for z -> a*z + t over complex numbers: a = sum(conj(s) d) / sum(|s|^2).
    sz, dz = s[:, 0] + 1j * s[:, 1], d[:, 0] + 1j * d[:, 1]
    denom = float(np.sum(np.abs(sz) ** 2))
    if denom <= 1e-12:
        raise InvalidInputError("face landmarks coincide; cannot align the face")
    a = np.sum(np.conj(sz) * dz) / denom
    rot = np.array([[a.real, -a.imag], [a.imag, a.real]])
    t = dst_mean - rot @ src_mean
    return np.hstack([rot, t[:, None]])


class FaceTracker:
    """Face landmarks per video frame, smoothed over time.

    Each :meth:`update` runs the detector on the frame. A detection close to the previous
    one is blended in (exponential moving average with weight ``smoothing`` on the past),
    which removes the Haar detector's frame-to-frame jitter; a detection far away (a cut,
    another face) replaces the track. When a frame has no detection the last landmarks
    are reused for up to ``hold_frames`` frames, then the track is dropped.
    """

    def __init__(self, *, smoothing: float = 0.6, hold_frames: int = 12):
        if not 0.0 <= smoothing < 1.0:
            raise InvalidInputError(f"smoothing must be in [0, 1), got {smoothing}")
        self.smoothing = float(smoothing)
        self.hold_frames = int(hold_frames)
        self._points: np.ndarray | None = None
        self._missed = 0

    def reset(self) -> None:
        """Forget the track (use between unrelated images)."""
        self._points, self._missed = None, 0

    def update(self, image: np.ndarray) -> np.ndarray | None:
        """Landmarks for ``image`` (see :func:`face_points`), or ``None`` when there is no face."""
        found = face_points(image)
        if found is None:
            self._missed += 1
            if self._missed > self.hold_frames:
                self._points = None
            return self._points
        self._missed = 0
        prev = self._points
        if prev is not None:
            eye_dist = float(np.linalg.norm(prev[1] - prev[0]))
            if float(np.max(np.linalg.norm(found - prev, axis=1))) < 0.5 * max(eye_dist, 1.0):
                found = self.smoothing * prev + (1.0 - self.smoothing) * found
        self._points = found
        return found


def _crop_mask(size: int) -> np.ndarray:
    """Feathered float32 ``[size, size]`` weight: 1 inside, falling to 0 at the crop's border."""
    mask = np.zeros((size, size), np.float32)
    margin = max(2, size // 16)
    mask[margin:-margin, margin:-margin] = 1.0
    sigma = size / 32.0
    return cv2.GaussianBlur(mask, (0, 0), sigmaX=sigma, sigmaY=sigma)


@dataclass
class PasteStats:
    """What :class:`FaceRestorer` did so far: frames seen, and faces restored."""

    frames: int = 0
    restored: int = 0


class FaceRestorer:
    """Restores the main face of each frame and pastes it onto the (upscaled) output frame.

    Args:
        restore: the model call, see :data:`RestoreFn`.
        strength: 0..1 blend of the restored face over the output frame's face (1 = only
            the model's output, 0 = the output frame unchanged).
        temporal: track and smooth the face over consecutive calls (video); ``False``
            detects every image independently (an image batch).
    """

    def __init__(self, restore: RestoreFn, *, strength: float = 1.0, temporal: bool = True):
        if not 0.0 <= strength <= 1.0:
            raise InvalidInputError(f"face restore strength must be in [0, 1], got {strength}")
        self.restore = restore
        self.strength = float(strength)
        self.temporal = bool(temporal)
        self.tracker = FaceTracker()
        self.stats = PasteStats()
        self._weight = _crop_mask(CROP_SIZE) * self.strength  # paste weight in crop space, made once

    def __call__(self, source: np.ndarray, output: np.ndarray | None = None) -> np.ndarray:
        """Restore the face found in ``source`` and paste it into ``output``.

        Args:
            source: uint8 ``[H, W, 3]`` RGB frame the face is detected in and cut from.
            output: uint8 ``[H', W', 3]`` RGB frame to paste into (``source`` scaled to any
                size, e.g. after upscaling); ``None`` pastes into a copy of ``source``.

        Returns:
            A new uint8 ``[H', W', 3]`` array; equal to ``output`` when no face is found.

        Raises:
            InvalidInputError: wrong dtype/shape of either frame, or a restore result of the
                wrong shape.
        """
        if output is None:
            output = source
        if output.ndim != 3 or output.shape[2] != 3 or output.dtype != np.uint8:
            raise InvalidInputError(f"output frame must be uint8 [H, W, 3], got {output.dtype} {output.shape}")
        self.stats.frames += 1
        if not self.temporal:
            self.tracker.reset()
        points = self.tracker.update(source)  # checks the source's dtype and shape
        if points is None:
            return output.copy()
        to_crop = similarity_transform(points, TEMPLATE_512)
        crop = cv2.warpAffine(source, to_crop, (CROP_SIZE, CROP_SIZE), flags=cv2.INTER_CUBIC,
                              borderMode=cv2.BORDER_REFLECT_101)
        crop_f = crop.astype(np.float32) / 255.0
        restored = np.asarray(self.restore(crop_f), dtype=np.float32)
        if restored.shape != crop_f.shape:
            raise InvalidInputError(
                f"face restore model returned {restored.shape}, expected {crop_f.shape}")
        sy = output.shape[0] / source.shape[0]
        sx = output.shape[1] / source.shape[1]
        result = _paste(output, np.clip(restored, 0.0, 1.0), self._weight, to_crop @ np.diag([1.0 / sx, 1.0 / sy, 1.0]))
        self.stats.restored += 1
        return result


def _paste(output: np.ndarray, face: np.ndarray, mask: np.ndarray, out_to_crop: np.ndarray) -> np.ndarray:
    """Blend ``face`` (crop space) into a copy of ``output``; only the face's bounding box is warped."""
    crop_to_out = cv2.invertAffineTransform(out_to_crop)
    corners = np.array([[0, 0, 1], [CROP_SIZE, 0, 1], [0, CROP_SIZE, 1], [CROP_SIZE, CROP_SIZE, 1]], np.float64)
    xy = corners @ crop_to_out.T
    h, w = output.shape[:2]
    x0, y0 = max(0, int(np.floor(xy[:, 0].min()))), max(0, int(np.floor(xy[:, 1].min())))
    x1, y1 = min(w, int(np.ceil(xy[:, 0].max())) + 1), min(h, int(np.ceil(xy[:, 1].max())) + 1)
    result = output.copy()
    if x1 <= x0 or y1 <= y0:
        return result
    # Region-of-interest transform: ROI pixel (u, v) is output pixel (u + x0, v + y0).
    roi_to_crop = out_to_crop @ np.array([[1.0, 0.0, x0], [0.0, 1.0, y0], [0.0, 0.0, 1.0]])
    size = (x1 - x0, y1 - y0)
    flags = cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP
    face_roi = cv2.warpAffine(face, roi_to_crop, size, flags=flags, borderMode=cv2.BORDER_CONSTANT)
    weight = cv2.warpAffine(mask, roi_to_crop, size, flags=flags, borderMode=cv2.BORDER_CONSTANT)[..., None]
    region = result[y0:y1, x0:x1].astype(np.float32) / 255.0
    blended = weight * face_roi + (1.0 - weight) * region
    result[y0:y1, x0:x1] = (blended * 255.0 + 0.5).clip(0, 255).astype(np.uint8)
    return result
