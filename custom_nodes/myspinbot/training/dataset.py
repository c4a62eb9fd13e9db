"""Dataset preparation for a character LoRA: face-centred square crops at the training
resolution, near-duplicates and photos without a face dropped (each with its reason),
optional horizontal flips.

The face is found with the pack's Haar-cascade detector (:func:`..animate.face.detect_faces`,
the one the Wav2Lip boxes use): of several detections, the largest one in which the eye cascade
finds two eyes (a Haar false positive on clothing or background has none), else the largest;
its box is lengthened to the chin as ``lipsync.boxes`` does. The crop
is a square around the centre of that box, ``1 + 2 * margin`` times its longer side, moved
(not shrunk) to stay inside the photo, and shrunk to the photo's shorter side only when it
cannot fit. Near-duplicates are judged on the crops (so a re-framed copy of the same photo is
one), with a 64-bit difference hash (dHash: 9x8 grey thumbnail, one bit per horizontal
neighbour comparison); two crops whose hashes differ in at most ``duplicate_distance`` bits
are one photo, the first one is kept. Imports no ComfyUI module.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import cv2
import numpy as np

from ..errors import InvalidInputError, NoFaceDetectedError
from ..animate.face import detect_faces, face_layout

DROP_NO_FACE = "no_face"
DROP_DUPLICATE = "duplicate"
CHIN_MARGIN = 0.1
"""Fraction of the Haar box height added below it to reach the chin (as ``lipsync.boxes`` does)."""
DETECT_SIDE = 1024
"""Photos whose longer side is larger are searched for faces at this size (the box is scaled
back and the crop taken from the full-size photo): a 12-megapixel photo costs no more than a 1 MP one."""


@dataclass(frozen=True)
class DatasetSettings:
    """How photos become training images.

    Attributes:
        resolution: side of the square training images, px (a multiple of 8 for the VAE).
        margin: space kept around the face box on each side, as a fraction of its longer side
            (0.6: the crop is 2.2 face heights, head and shoulders).
        duplicate_distance: most dHash bits (of 64) in which two crops may differ and still be
            one photo; negative keeps every photo.
        flip: add a horizontally mirrored copy of every kept crop.
    """

    resolution: int = 512
    margin: float = 0.6
    duplicate_distance: int = 10
    flip: bool = False

    def __post_init__(self) -> None:
        if int(self.resolution) < 64 or int(self.resolution) % 8:
            raise InvalidInputError(f"resolution must be a multiple of 8 of at least 64 px, got {self.resolution}")
        if not 0.0 <= self.margin <= 3.0:
            raise InvalidInputError(f"margin must be in 0..3, got {self.margin}")


@dataclass(frozen=True)
class Dropped:
    """A photo left out: its ``index`` in the input, its ``name``, a ``reason`` code
    (``no_face`` or ``duplicate``) and a sentence for the user."""

    index: int
    name: str
    reason: str
    message: str


@dataclass
class PreparedDataset:
    """The training images and what happened to each photo.

    Attributes:
        images: uint8 ``[resolution, resolution, 3]`` RGB crops, flips right after their source.
        sources: for each image, the index of the photo it came from.
        flipped: for each image, whether it is a mirrored copy.
        boxes: for each kept photo index, the crop ``(x1, y1, x2, y2)`` in its pixels.
        dropped: the photos left out, in input order.
    """

    images: list[np.ndarray] = field(default_factory=list)
    sources: list[int] = field(default_factory=list)
    flipped: list[bool] = field(default_factory=list)
    boxes: dict[int, tuple[int, int, int, int]] = field(default_factory=dict)
    dropped: list[Dropped] = field(default_factory=list)

    @property
    def kept(self) -> list[int]:
        """Indices of the photos that made it into the dataset, in input order."""
        return sorted(self.boxes)

    def report(self) -> str:
        """A few lines for the user: how many photos were kept and why each other one was not."""
        total = len(self.boxes) + len(self.dropped)
        lines = [f"{len(self.boxes)} of {total} photos kept, {len(self.images)} training images"
                 + (" (with mirrored copies)" if any(self.flipped) else "")]
        lines += [f"dropped {d.name}: {d.message}" for d in self.dropped]
        return "\n".join(lines)


def face_crop_box(shape: tuple[int, ...], face: tuple[int, int, int, int], margin: float) -> tuple[int, int, int, int]:
    """The square crop ``(x1, y1, x2, y2)`` around ``face`` in an image of ``shape`` ``(H, W, ...)``.

    The side is ``(1 + 2 * margin) * max(face width, face height)``, at most the image's shorter
    side; the square is centred on the face and moved back inside the image where it overhangs.
    """
    h, w = int(shape[0]), int(shape[1])
    x1, y1, x2, y2 = face
    side = int(round(max(x2 - x1, y2 - y1) * (1.0 + 2.0 * margin)))
    side = max(1, min(side, h, w))
    cx, cy = (x1 + x2) / 2.0, (y1 + y2) / 2.0
    left = int(round(cx - side / 2.0))
    top = int(round(cy - side / 2.0))
    left = min(max(0, left), w - side)
    top = min(max(0, top), h - side)
    return left, top, left + side, top + side


def find_face(image: np.ndarray) -> tuple[int, int, int, int] | None:
    """The main face of ``image`` (uint8 ``[H, W, 3]`` RGB) as ``(x1, y1, x2, y2)`` down to the
    chin, or ``None``; see the module docstring for which face when there are several."""
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise InvalidInputError(f"a photo must be uint8 [H, W, 3] RGB, got {image.dtype} {image.shape}")
    h, w = image.shape[:2]
    scale = min(1.0, DETECT_SIDE / max(h, w))
    small = image if scale == 1.0 else cv2.resize(image, (max(1, round(w * scale)), max(1, round(h * scale))),
                                                  interpolation=cv2.INTER_AREA)
    faces = detect_faces(small)
    if not faces:
        return None
    face = faces[0]
    if len(faces) > 1:
        face = next((f for f in faces if face_layout(small, f).eyes_refined), faces[0])
    chin = face.y + face.h + CHIN_MARGIN * face.h
    x1, y1, x2, y2 = (int(round(v / scale)) for v in (face.x, face.y, face.x + face.w, chin))
    return x1, y1, min(w, x2), min(h, y2)


def crop_face(image: np.ndarray, settings: DatasetSettings = DatasetSettings()) -> tuple[np.ndarray, tuple[int, int, int, int]]:
    """The face-centred square crop of ``image`` resized to ``settings.resolution``.

    Args:
        image: uint8 ``[H, W, 3]`` RGB.

    Returns:
        (uint8 ``[resolution, resolution, 3]`` crop, crop box ``(x1, y1, x2, y2)`` in ``image``).

    Raises:
        NoFaceDetectedError: the detector finds no face.
        InvalidInputError: ``image`` is not uint8 RGB.
    """
    face = find_face(image)
    if face is None:
        h, w = image.shape[:2]
        raise NoFaceDetectedError(f"no face found ({w}x{h} px): use a clear photo where the face is well lit "
                                  f"and at least about {max(24, int(min(h, w) * 0.06))} px tall",
                                  details={"width": int(w), "height": int(h)})
    box = face_crop_box(image.shape, face, settings.margin)
    x1, y1, x2, y2 = box
    size = int(settings.resolution)
    crop = image[y1:y2, x1:x2]
    interpolation = cv2.INTER_AREA if crop.shape[0] >= size else cv2.INTER_CUBIC
    return np.ascontiguousarray(cv2.resize(crop, (size, size), interpolation=interpolation)), box


def dhash(image: np.ndarray) -> int:
    """64-bit difference hash of a uint8 ``[H, W, 3]`` RGB image: grey 9x8 thumbnail (area
    averaging), bit set where a pixel is brighter than its right neighbour."""
    grey = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
    small = cv2.resize(grey, (9, 8), interpolation=cv2.INTER_AREA).astype(np.int16)
    bits = (small[:, 1:] > small[:, :-1]).flatten()
    return int(sum(1 << i for i, bit in enumerate(bits) if bit))


def hash_distance(a: int, b: int) -> int:
    """Number of differing bits of two hashes."""
    return bin(a ^ b).count("1")


def prepare_dataset(images: Iterable[np.ndarray], names: list[str] | None = None,
                    settings: DatasetSettings = DatasetSettings()) -> PreparedDataset:
    """Turn photos of one character into training crops.

    Args:
        images: uint8 ``[H, W, 3]`` RGB photos (any sizes); any iterable, consumed once, so a
            generator reading files keeps one full-size photo in memory at a time.
        names: one label per photo for the report (default ``photo 1``, ``photo 2``, ...).
        settings: resolution, margin, duplicate threshold, flips.

    Returns:
        A :class:`PreparedDataset`; photos without a face or duplicating an earlier kept photo
        are in ``dropped``, not raised.

    Raises:
        InvalidInputError: a photo is not uint8 RGB, or ``names`` has another length.
    """
    given = list(names) if names is not None else None
    names = []
    out = PreparedDataset()
    hashes: list[tuple[int, int]] = []  # (hash, photo index) of the kept crops
    for index, image in enumerate(images):
        if given is not None and index >= len(given):
            raise InvalidInputError(f"{len(given)} names for more photos")
        name = given[index] if given is not None else f"photo {index + 1}"
        names.append(name)
        try:
            crop, box = crop_face(image, settings)
        except NoFaceDetectedError as err:
            out.dropped.append(Dropped(index, name, DROP_NO_FACE, err.message))
            continue
        code = dhash(crop)
        twin = next(((j, d) for h, j in hashes if (d := hash_distance(code, h)) <= settings.duplicate_distance), None)
        if twin is not None:
            out.dropped.append(Dropped(index, name, DROP_DUPLICATE,
                                       f"near-duplicate of {names[twin[0]]} ({twin[1]} of 64 hash bits differ)"))
            continue
        hashes.append((code, index))
        out.boxes[index] = box
        out.images.append(crop)
        out.sources.append(index)
        out.flipped.append(False)
        if settings.flip:
            out.images.append(np.ascontiguousarray(crop[:, ::-1]))
            out.sources.append(index)
            out.flipped.append(True)
    if given is not None and len(names) != len(given):
        raise InvalidInputError(f"{len(given)} names for {len(names)} photos")
    return out
