"""Face boxes for Wav2Lip: one per frame, padded like the authors' crops and smoothed in time.

Wav2Lip (Prajwal et al., ACM MM 2020) was trained on S3FD face boxes; its ``inference.py``
(Rudrabha/Wav2Lip) pads them (default 10 px below, for the chin) and replaces each box by the
mean of itself and the next four, the last five at the end of the clip. Here the boxes come
from OpenCV's Haar cascades (:func:`..animate.face.detect_faces`, no weights), whose box stops
around the lower lip, so it is first lengthened by ``chin_margin`` of its height to reach the
chin as an S3FD box does. The smoothing is streamed: a frame leaves :class:`BoxSmoother` once
the next ``window - 1`` frames have been seen. Imports no ComfyUI module.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Generic, TypeVar

import numpy as np

from ..animate.face import detect_faces
from ..errors import InvalidInputError

T = TypeVar("T")
FaceBox = tuple[int, int, int, int]
"""``(x1, y1, x2, y2)`` in pixels, right/bottom exclusive."""


@dataclass(frozen=True)
class BoxSettings:
    """How a detected face becomes the region Wav2Lip redraws.

    Attributes:
        pads: ``(top, bottom, left, right)`` px added outside the box (the authors' default
            ``(0, 10, 0, 0)``), after ``chin_margin``.
        chin_margin: fraction of the Haar box height added below it (to the chin).
        smooth_window: frames averaged per box (1 disables smoothing; the authors use 5).
        min_side: boxes smaller than this (px, either side) are treated as no face.
    """

    pads: tuple[int, int, int, int] = (0, 10, 0, 0)
    chin_margin: float = 0.1
    smooth_window: int = 5
    min_side: int = 16

    def __post_init__(self) -> None:
        if len(self.pads) != 4 or any(int(p) != p for p in self.pads):
            raise InvalidInputError(f"pads must be four whole pixel counts (top, bottom, left, right), got {self.pads}")
        if not 0.0 <= self.chin_margin <= 1.0:
            raise InvalidInputError(f"chin_margin must be in 0..1, got {self.chin_margin}")
        if int(self.smooth_window) < 1:
            raise InvalidInputError(f"smooth_window must be at least 1, got {self.smooth_window}")


def find_face_box(frame: np.ndarray, settings: BoxSettings = BoxSettings()) -> FaceBox | None:
    """The padded box of the largest face in ``frame``, clipped to the frame, or ``None``.

    Args:
        frame: uint8 ``[H, W, 3]`` RGB.
        settings: padding (see :class:`BoxSettings`).

    Raises:
        InvalidInputError: the frame is not uint8 RGB.
    """
    faces = detect_faces(frame)
    if not faces:
        return None
    face = faces[0]
    top, bottom, left, right = (int(p) for p in settings.pads)
    h, w = frame.shape[:2]
    y2 = face.y + face.h + int(round(settings.chin_margin * face.h))
    box = (max(0, face.x - left), max(0, face.y - top), min(w, face.x + face.w + right), min(h, y2 + bottom))
    if box[2] - box[0] < settings.min_side or box[3] - box[1] < settings.min_side:
        return None
    return box


class BoxSmoother(Generic[T]):
    """Streamed temporal smoothing of face boxes, one item (e.g. a frame) per box.

    Each box becomes the mean of the detected boxes among itself and the next ``window - 1``
    frames (rounded to whole pixels); once the clip ends, the frames still waiting use the mean
    of the last ``window`` boxes, as the authors' ``inference.py`` does. A frame without a
    detection stays without a box (it is passed through), and is left out of its neighbours'
    means.

    Use: ``for item, box in smoother.push(item, box): ...`` then ``smoother.finish()``.
    """

    def __init__(self, window: int = 5):
        if int(window) < 1:
            raise InvalidInputError(f"smoothing window must be at least 1, got {window}")
        self.window = int(window)
        self._pending: deque[tuple[T, FaceBox | None]] = deque()
        self._recent: deque[FaceBox | None] = deque(maxlen=self.window)

    @staticmethod
    def _mean(boxes) -> FaceBox | None:
        found = [b for b in boxes if b is not None]
        if not found:
            return None
        m = np.rint(np.mean(np.asarray(found, dtype=np.float64), axis=0)).astype(int)
        return (int(m[0]), int(m[1]), int(m[2]), int(m[3]))

    def push(self, item: T, box: FaceBox | None) -> Iterator[tuple[T, FaceBox | None]]:
        """Add the next frame's detection; yields the frames whose smoothed box is now known."""
        self._pending.append((item, box))
        self._recent.append(box)
        if len(self._pending) == self.window:
            first, raw = self._pending.popleft()
            window = [raw] + [b for _, b in self._pending]
            yield first, (None if raw is None else self._mean(window))

    def finish(self) -> Iterator[tuple[T, FaceBox | None]]:
        """The clip ended: yield every waiting frame, smoothed with the last ``window`` boxes."""
        tail = self._mean(self._recent)
        while self._pending:
            item, raw = self._pending.popleft()
            yield item, (None if raw is None else tail)
        self._recent.clear()
