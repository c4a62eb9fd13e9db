"""The face footage for lip sync: a still image or a video file, read one frame at a time.

A source shorter than the audio is played again from its first frame (as the authors'
``inference.py`` of Rudrabha/Wav2Lip does with ``i % len(frames)``); a still image is one
frame repeated. Imports no ComfyUI module.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from ..animate.inputs import to_rgb_uint8
from ..errors import InvalidInputError
from ..video.probe import probe_media
from ..video.reader import iter_video_frames

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp")


@dataclass
class FaceSource:
    """A still image or a video file of the face.

    Attributes:
        path: the file.
        fps: frames per second of the video (for a still: the rate chosen for the output).
        width, height: frame size in px.
        still: the decoded image when the source is a still, else ``None``.
    """

    path: Path
    fps: float
    width: int
    height: int
    still: np.ndarray | None = field(default=None, repr=False)

    @property
    def is_still(self) -> bool:
        """True for an image source."""
        return self.still is not None

    def frames(self) -> Iterator[np.ndarray]:
        """One pass over the source: uint8 ``[H, W, 3]`` RGB frames (one frame for a still)."""
        if self.still is not None:
            yield self.still
        else:
            yield from iter_video_frames(self.path)


def open_face_source(path: str | os.PathLike, still_fps: float = 25.0) -> FaceSource:
    """Open ``path`` as a still (by its suffix: png, jpg, jpeg, webp, bmp) or as a video.

    Args:
        path: image or video file.
        still_fps: output frame rate used for a still image.

    Raises:
        InvalidInputError: missing or unreadable file, no video stream, no frame rate.
    """
    p = Path(path)
    if not p.is_file():
        raise InvalidInputError(f"face image or video not found: {p}")
    if p.suffix.lower() in IMAGE_SUFFIXES:
        try:
            with Image.open(p) as im:
                image = to_rgb_uint8(np.asarray(im.convert("RGBA" if "A" in im.getbands() else "RGB")))
        except (UnidentifiedImageError, OSError) as exc:
            raise InvalidInputError(f"not a readable image: {p} ({exc})") from exc
        return FaceSource(p, float(still_fps), image.shape[1], image.shape[0], still=image)
    info = probe_media(p)
    video = info["video"]
    if video is None:
        raise InvalidInputError(f"no video stream in {p}")
    if not video["fps"]:
        raise InvalidInputError(f"the video {p} has no frame rate")
    return FaceSource(p, float(video["fps"]), int(video["width"]), int(video["height"]))
