"""Five facial points without a landmark model: an estimate from OpenCV's Haar face layout.

The authors find the face with RetinaFace and 68 (98 -> 68) landmarks with FAN (facexlib);
SadTalker only uses five points of them (eye centres, nose tip, mouth corners). This default
needs no download: the face box and eye boxes of :func:`myspinbot.animate.face.locate_face`
(the eye cascade when it finds both eyes, else face proportions) give the eye centres, the
estimated mouth line its corners, and the nose tip is placed between them. It is an estimate
for frontal portraits; a real landmark detector can be plugged in by passing the points to
the engine. Imports no ComfyUI module.
"""

from __future__ import annotations

import numpy as np

from ..animate.face import locate_face

NOSE_FRACTION = 0.55  # nose tip: this far from the eye line towards the mouth line


def five_points(image: np.ndarray) -> np.ndarray:
    """float64 ``[5, 2]`` ``(x, y)`` pixels: left eye, right eye, nose tip, left and right mouth corner.

    Args:
        image: uint8 ``[H, W, 3]`` RGB.

    Raises:
        NoFaceDetectedError (``no_face_detected``): no face in the image.
        InvalidInputError: not a uint8 RGB image.
    """
    layout = locate_face(image).layout
    (lx, ly), (rx, ry) = layout.eyes[0].center, layout.eyes[1].center
    mx, my = layout.mouth_center
    half = layout.mouth_half_width * 0.75  # the layout's half width includes the cheeks' margin
    eye_mid = np.array([(lx + rx) / 2.0, (ly + ry) / 2.0])
    nose = eye_mid + NOSE_FRACTION * (np.array([mx, my]) - eye_mid)
    return np.array([[lx, ly], [rx, ry], nose, [mx - half, my], [mx + half, my]], dtype=np.float64)
