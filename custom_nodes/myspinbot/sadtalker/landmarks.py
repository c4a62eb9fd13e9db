"""The five facial points SadTalker aligns on: MTCNN, or the authors' RetinaFace + FAN, or a Haar estimate.

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
points to the engine.

Sources (``source`` of :func:`five_points`): ``"mtcnn"`` as above; ``"retinaface_fan"`` the
authors' pair, our code (:mod:`myspinbot.faces.retinaface`, :mod:`myspinbot.faces.fan98`):
RetinaFace-ResNet50 (``detection_Resnet50_Final.pth``) boxes the face (score above 0.97, the
best one), the 98-point FAN (``alignment_WFLW_4HG.pth``) places 98 landmarks in that box,
reduced to 68 and then to the five points as upstream (:mod:`myspinbot.faces.fan98_points`).
Both files are looked for in the given folders (the node passes ComfyUI's
``models/facexlib``); ``"auto"`` (default) uses the pair when both files are there, MTCNN
otherwise. Portraits whose longer side exceeds 2,150 px are searched at that size (facexlib's
cap when it resizes) and the box mapped back; upstream searches at full size. Imports no
ComfyUI module.
"""

from __future__ import annotations

import functools
import logging
import os
from collections.abc import Iterable
from pathlib import Path

import cv2
import numpy as np
import torch

from ..animate.face import locate_face
from ..errors import InvalidInputError, ModelsMissingError, NoFaceDetectedError
from ..faces.facexlib_weights import FAN_FILE, RETINAFACE_FILE, load_fan98, load_retinaface
from ..faces.fan98_points import landmarks98, to_5, to_68
from ..faces.mtcnn import MTCNN
from ..faces.mtcnn_weights import weights_dir
from ..faces.retinaface_decode import detect

log = logging.getLogger(__name__)
MIN_FACE_FRACTION = 0.05  # faces narrower than this share of the short side are not looked for
NOSE_FRACTION = 0.55  # Haar estimate: nose tip this far from the eye line towards the mouth line
SOURCES = ("auto", "mtcnn", "retinaface_fan")
FACEXLIB_FOLDER = "facexlib"  # ComfyUI models folder of the two files
FACEXLIB_MODELS = ("facexlib_retinaface_resnet50", "facexlib_awing_fan_wflw")  # manifest names
MAX_SIDE = 2150  # RetinaFace searches at most this long a side (facexlib's max_size)


@functools.lru_cache(maxsize=1)
def _detector() -> MTCNN:
    return MTCNN.from_wheel()


def facexlib_files(model_dirs: Iterable[str | os.PathLike]) -> tuple[Path, Path] | None:
    """``(detection_Resnet50_Final.pth, alignment_WFLW_4HG.pth)``, each from the first folder of
    ``model_dirs`` that holds it, or ``None`` unless both are found."""
    dirs = [Path(d) for d in model_dirs]
    found = [next((d / name for d in dirs if (d / name).is_file()), None) for name in (RETINAFACE_FILE, FAN_FILE)]
    return (found[0], found[1]) if found[0] is not None and found[1] is not None else None


def _stamp(path: Path) -> tuple[str, int, int]:
    st = path.stat()
    return str(path.resolve()), st.st_size, st.st_mtime_ns


@functools.lru_cache(maxsize=2)
def _pair(retina: tuple[str, int, int], fan: tuple[str, int, int], device: str):
    return load_retinaface(retina[0], device=device), load_fan98(fan[0], device=device)


def retinaface_fan_points(image: np.ndarray, files: tuple[Path, Path], device: str | torch.device = "cpu") -> np.ndarray:
    """The five points from RetinaFace + FAN (``files`` as :func:`facexlib_files`); output and
    errors as :func:`five_points` (``InvalidModelError`` when a file does not fit)."""
    retina, fan = _pair(_stamp(files[0]), _stamp(files[1]), str(device))
    h, w = image.shape[:2]
    scale = min(1.0, MAX_SIDE / max(h, w))
    small = image if scale == 1.0 else cv2.resize(image, (round(w * scale), round(h * scale)),
                                                  interpolation=cv2.INTER_AREA)
    faces = detect(retina, np.ascontiguousarray(small))
    if not faces:
        raise NoFaceDetectedError("RetinaFace found no face in the portrait")
    points = landmarks98(fan, image, faces[0].box / scale)
    if points is None:
        raise NoFaceDetectedError("RetinaFace's face box holds no pixel of the portrait")
    return to_5(to_68(points))


def five_points(image: np.ndarray, source: str = "auto", model_dirs: Iterable[str | os.PathLike] = (),
                device: str | torch.device = "cpu") -> np.ndarray:
    """float64 ``[5, 2]`` ``(x, y)`` pixels: left eye, right eye, nose tip, left and right mouth
    corner ("left" = the image's left).

    Args:
        image: uint8 ``[H, W, 3]`` RGB.
        source: ``"auto"``, ``"mtcnn"`` or ``"retinaface_fan"`` (see the module's docstring).
        model_dirs: folders searched for the RetinaFace and FAN files.
        device: where RetinaFace and FAN run.

    Raises:
        NoFaceDetectedError (``no_face_detected``): no face (with landmarks) in the image.
        InvalidInputError: not a uint8 RGB image, or an unknown ``source``.
        ModelsMissingError: ``"retinaface_fan"`` asked for and a file is not in ``model_dirs``.
        InvalidModelError: a weight file does not fit its network.
    """
    if not (isinstance(image, np.ndarray) and image.dtype == np.uint8 and image.ndim == 3
            and image.shape[2] == 3):
        raise InvalidInputError("five_points needs a uint8 [H, W, 3] RGB image")
    if source not in SOURCES:
        raise InvalidInputError(f"landmarks must be one of {', '.join(SOURCES)}, got {source!r}")
    files = facexlib_files(model_dirs) if source != "mtcnn" else None
    if source == "retinaface_fan" and files is None:
        fetch = f"python install.py --models {' '.join(FACEXLIB_MODELS)}"
        raise ModelsMissingError(
            f"the retinaface_fan landmarks need {RETINAFACE_FILE} and {FAN_FILE} in models/{FACEXLIB_FOLDER} "
            f"({fetch})", details={"missing": list(FACEXLIB_MODELS), "fetch": fetch,
                                   "files": [f"{FACEXLIB_FOLDER}/{n}" for n in (RETINAFACE_FILE, FAN_FILE)]})
    if files is not None:
        return retinaface_fan_points(image, files, device)
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
