"""Face finding with OpenCV's bundled Haar cascades, and a face layout from box geometry.

The layout (eye line, eye boxes, mouth, chin) comes from typical proportions of a
frontal face inside a Haar face box, optionally refined with the eye cascade.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import cv2
import numpy as np

from ..errors import InvalidInputError, NoFaceDetectedError

FACE_CASCADES = ("haarcascade_frontalface_default.xml", "haarcascade_frontalface_alt2.xml")
EYE_CASCADE = "haarcascade_eye.xml"


@dataclass(frozen=True)
class Box:
    """An axis-aligned box in pixels: left ``x``, top ``y``, width ``w``, height ``h``."""

    x: int
    y: int
    w: int
    h: int

    @property
    def area(self) -> int:
        """Area in square pixels."""
        return self.w * self.h

    @property
    def center(self) -> tuple[float, float]:
        """Centre ``(x, y)`` in pixels."""
        return (self.x + self.w / 2.0, self.y + self.h / 2.0)

    def as_tuple(self) -> tuple[int, int, int, int]:
        """``(x, y, w, h)``."""
        return (self.x, self.y, self.w, self.h)


@dataclass(frozen=True)
class FaceLayout:
    """Where the animated parts of one face are, in pixels of the image it was found in.

    Attributes:
        face: the detector's face box (brows to just below the mouth, roughly).
        eyes: two eye boxes, image-left first.
        eyes_refined: True when the eye boxes came from the eye cascade, else geometry.
        mouth_center: ``(x, y)`` of the line between the lips.
        mouth_half_width: half the mouth width, px.
        chin_y: y of the chin bottom, px (estimated).
    """

    face: Box
    eyes: tuple[Box, Box]
    eyes_refined: bool
    mouth_center: tuple[float, float]
    mouth_half_width: float
    chin_y: float

    @property
    def eye_line_y(self) -> float:
        """Mean y of the eye centres, px."""
        return (self.eyes[0].center[1] + self.eyes[1].center[1]) / 2.0


@dataclass(frozen=True)
class FaceDetection:
    """Result of :func:`locate_face`: the layout of the largest face and all face boxes."""

    layout: FaceLayout
    faces: tuple[Box, ...]

    @property
    def faces_found(self) -> int:
        """How many faces the detector found (>= 1)."""
        return len(self.faces)


def _cascade(name: str) -> cv2.CascadeClassifier:
    path = os.path.join(cv2.data.haarcascades, name)
    clf = cv2.CascadeClassifier(path)
    if clf.empty():
        raise RuntimeError(f"OpenCV Haar cascade could not be loaded: {path}")
    return clf


def _gray(image: np.ndarray) -> np.ndarray:
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise InvalidInputError(f"face detection needs a uint8 [H, W, 3] RGB image, got {image.dtype} {image.shape}")
    return cv2.equalizeHist(cv2.cvtColor(image, cv2.COLOR_RGB2GRAY))


def _overlap(a: Box, b: Box) -> float:
    ix = max(0, min(a.x + a.w, b.x + b.w) - max(a.x, b.x))
    iy = max(0, min(a.y + a.h, b.y + b.h) - max(a.y, b.y))
    inter = ix * iy
    return inter / float(min(a.area, b.area)) if inter else 0.0


def detect_faces(image: np.ndarray, *, min_fraction: float = 0.06) -> list[Box]:
    """Find frontal faces with the default Haar cascade (alt2 as a fallback).

    Args:
        image: uint8 ``[H, W, 3]`` RGB.
        min_fraction: smallest face side to look for, as a fraction of the image's
            shorter side (faces smaller than ~24 px are never found).

    Returns:
        Face boxes, largest first; boxes that mostly overlap a larger one are dropped.
        Empty when there is no face.

    Raises:
        InvalidInputError: the image is not uint8 RGB.
    """
    gray = _gray(image)
    min_side = max(24, int(min(gray.shape[:2]) * min_fraction))
    found: list[Box] = []
    for name in FACE_CASCADES:
        rects = _cascade(name).detectMultiScale(
            gray, scaleFactor=1.1, minNeighbors=5, minSize=(min_side, min_side)
        )
        found = [Box(int(x), int(y), int(w), int(h)) for (x, y, w, h) in np.reshape(rects, (-1, 4))]
        if found:
            break
    found.sort(key=lambda b: b.area, reverse=True)
    kept: list[Box] = []
    for box in found:
        if all(_overlap(box, k) < 0.5 for k in kept):
            kept.append(box)
    return kept


def _geometric_eyes(face: Box) -> tuple[Box, Box]:
    ew, eh = 0.22 * face.w, 0.12 * face.h
    cy = face.y + 0.39 * face.h
    boxes = []
    for fx in (0.30, 0.70):
        cx = face.x + fx * face.w
        boxes.append(Box(int(round(cx - ew / 2)), int(round(cy - eh / 2)), int(round(ew)), int(round(eh))))
    return boxes[0], boxes[1]


def _refined_eyes(gray: np.ndarray, face: Box) -> tuple[Box, Box] | None:
    top, bottom = face.y + int(0.15 * face.h), face.y + int(0.60 * face.h)
    left, right = face.x, face.x + face.w
    roi = gray[max(0, top):bottom, max(0, left):right]
    if roi.size == 0:
        return None
    side = max(8, int(0.12 * face.w))
    rects = _cascade(EYE_CASCADE).detectMultiScale(
        roi, scaleFactor=1.08, minNeighbors=4, minSize=(side, side), maxSize=(int(0.45 * face.w),) * 2
    )
    mid = face.x + face.w / 2.0
    sides: dict[str, Box] = {}
    for x, y, w, h in np.reshape(rects, (-1, 4)):
        box = Box(int(x) + max(0, left), int(y) + max(0, top), int(w), int(h))
        cx, cy = box.center
        if not (face.y + 0.2 * face.h <= cy <= face.y + 0.55 * face.h):
            continue
        key = "l" if cx < mid else "r"
        if abs(cx - mid) < 0.08 * face.w:
            continue
        if key not in sides or box.area > sides[key].area:
            sides[key] = box
    if len(sides) != 2:
        return None
    (lx, ly), (rx, ry) = sides["l"].center, sides["r"].center
    if abs(ly - ry) > 0.12 * face.h or not (0.25 * face.w <= rx - lx <= 0.65 * face.w):
        return None
    # Haar eye boxes include brow and lid; keep the centre, use a tighter eye size.
    ew, eh = 0.22 * face.w, 0.12 * face.h
    out = []
    for cx, cy in ((lx, ly), (rx, ry)):
        cy += 0.03 * face.h  # eye-cascade boxes sit slightly high (they include the brow)
        out.append(Box(int(round(cx - ew / 2)), int(round(cy - eh / 2)), int(round(ew)), int(round(eh))))
    return out[0], out[1]


def face_layout(image: np.ndarray, face: Box, *, refine_eyes: bool = True) -> FaceLayout:
    """Estimate eyes, mouth and chin of ``face`` from its box (eyes refined if possible).

    Args:
        image: uint8 ``[H, W, 3]`` RGB the box was found in.
        face: the face box.
        refine_eyes: look for the eyes with the eye cascade in the upper face.

    Returns:
        A :class:`FaceLayout` in image pixels.
    """
    eyes = _refined_eyes(_gray(image), face) if refine_eyes else None
    refined = eyes is not None
    if eyes is None:
        eyes = _geometric_eyes(face)
    eye_mid_x = (eyes[0].center[0] + eyes[1].center[0]) / 2.0
    mouth_x = 0.5 * eye_mid_x + 0.5 * (face.x + face.w / 2.0)
    return FaceLayout(
        face=face,
        eyes=eyes,
        eyes_refined=refined,
        mouth_center=(mouth_x, face.y + 0.84 * face.h),
        mouth_half_width=0.21 * face.w,
        chin_y=face.y + 1.06 * face.h,
    )


def locate_face(image: np.ndarray) -> FaceDetection:
    """Find the faces in a portrait and lay out the largest one.

    Args:
        image: uint8 ``[H, W, 3]`` RGB.

    Returns:
        :class:`FaceDetection` with the largest face's layout and every face box found.

    Raises:
        NoFaceDetectedError: no face was found.
        InvalidInputError: the image is not uint8 RGB.
    """
    faces = detect_faces(image)
    if not faces:
        h, w = image.shape[:2]
        raise NoFaceDetectedError(
            f"no face found in the portrait ({w}x{h} px): use a clear, front-facing photo where the face "
            f"is well lit and at least about {max(24, int(min(h, w) * 0.06))} px tall",
            details={"width": int(w), "height": int(h)},
        )
    return FaceDetection(layout=face_layout(image, faces[0]), faces=tuple(faces))
