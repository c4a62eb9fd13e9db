"""Decode the frames of a video file one at a time."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import av
import numpy as np

from ..errors import InvalidInputError


def iter_video_frames(path: str | os.PathLike) -> Iterator[np.ndarray]:
    """Yield the frames of the first video stream, in order, as uint8 ``[H, W, 3]`` RGB.

    Only one decoded frame is held at a time.

    Raises:
        InvalidInputError: the file is missing, unreadable, or has no video stream.
    """
    p = Path(path)
    if not p.is_file():
        raise InvalidInputError(f"video file not found: {p}")
    try:
        container = av.open(str(p))
    except av.FFmpegError as exc:
        raise InvalidInputError(f"not a readable video file: {p} ({exc})") from exc
    with container:
        if not container.streams.video:
            raise InvalidInputError(f"no video stream in {p}")
        for frame in container.decode(video=0):
            yield frame.to_ndarray(format="rgb24")
