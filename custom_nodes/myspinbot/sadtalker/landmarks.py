"""The five facial points SadTalker aligns on: MTCNN by default, a Haar estimate as fallback.

The authors find the face with RetinaFace and 68 (98 -> 68) landmarks with FAN (facexlib);
SadTalker only uses five points of them (eye centres, nose tip, mouth corners). The default
here needs no download: MTCNN (Zhang et al., IEEE SPL 2016; :mod:`myspinbot.faces.mtcnn`,
our PyTorch port) with the MIT-licensed weights that ship inside the ``mtcnn`` wheel, a
dependency of the pack. Of several faces, the one O-Net scores highest is used (as the
authors take the first detection); faces narrower than 5 % of the portrait's short side (or
20 px) are not looked for, which keeps the image pyramid small on large photos.

Fallback, only when the ``mtcnn`` wheel's weight files are not installed: the rough estimate
from OpenCV's Haar face layout (:func:`myspinbot.animate.face.locate_face`: eye cascade or
face proportions for the eyes, the mouth line for the corners, the nose between them), with
a warning in the log. It is never used to second-guess MTCNN: when MTCNN finds no face, the
image has none (``no_face_detected``). Callers with their own landmark detector pass the
points to the engine. Imports no ComfyUI module.
"""

from __future__ import annotations

import functools
import logging

import numpy as np

from ..animate.face import locate_face
from ..errors import InvalidInputError, NoFaceDetectedError
from ..faces.mtcnn import MTCNN
from ..faces.mtcnn_weights import weights_dir

log = logging.getLogger(__name__)
MIN_FACE_FRACTION = 0.05  # faces narrower than this share of the short side are not looked for
NOSE_FRACTION = 0.55  # Haar estimate: nose tip this far from the eye line towards the mouth line


@functools.lru_cache(maxsize=1)
def _detector() -> MTCNN:
    return MTCNN.from_wheel()


def five_points(image: np.ndarray) -> np.ndarray:
    """float64 ``[5, 2]`` ``(x, y)`` pixels: left eye, right eye, nose tip, left and right mouth
    corner ("left" = the image's left).

    Args:
        image: uint8 ``[H, W, 3]`` RGB.

    Raises:
        NoFaceDetectedError (``no_face_detected``): no face (with landmarks) in the image.
        InvalidInputError: not a uint8 RGB image.
        InvalidModelError: the installed ``mtcnn`` weight files do not fit the networks.
    """
    if not (isinstance(image, np.ndarray) and image.dtype == np.uint8 and image.ndim == 3
            and image.shape[2] == 3):
        raise InvalidInputError("five_points needs a uint8 [H, W, 3] RGB image")
    if weights_dir() is None:
        log.warning("the mtcnn wheel is not installed: SadTalker's five points are a rough Haar estimate")
        return haar_five_points(image)
    faces = _detector().detect(image, min_face_size=max(20, int(min(image.shape[:2]) * MIN_FACE_FRACTION)))
    if not faces:
        raise NoFaceDetectedError("MTCNN found no face with landmarks in the portrait")
    return max(faces, key=lambda f: f.score).points.astype(np.float64)


def haar_five_points(image: np.ndarray) -> np.ndarray:
    """The fallback estimate from the Haar face layout; same output and errors as
    :func:`five_points`. Meant for frontal portraits only."""
    layout = locate_face(image).layout
    (lx, ly), (rx, ry) = layout.eyes[0].center, layout.eyes[1].center
    mx, my = layout.mouth_center
    half = layout.mouth_half_width * 0.75  # the layout's half width includes the cheeks' margin
    eye_mid = np.array([(lx + rx) / 2.0, (ly + ry) / 2.0])
    nose = eye_mid + NOSE_FRACTION * (np.array([mx, my]) - eye_mid)
    return np.array([[lx, ly], [rx, ry], nose, [mx - half, my], [mx + half, my]], dtype=np.float64)
