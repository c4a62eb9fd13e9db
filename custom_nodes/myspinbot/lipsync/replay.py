"""Replaying face footage that is shorter than the speech: plain loop or ping-pong.

``loop`` plays the source again from its first frame, as the authors' ``inference.py``
(Rudrabha/Wav2Lip) does with ``i % len(frames)``; ``ping_pong`` plays it forward, then
backward, then forward again (0, 1, ..., n-1, n-2, ..., 1, 0, 1, ...), so there is no jump
from the last frame back to the first. Playing a video backward needs its frames in any
order; :class:`FrameSpool` keeps them in a temporary file on disk (raw RGB), not in RAM.
Imports no ComfyUI module.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np

from ..errors import InvalidInputError

LOOP_MODES = ("loop", "ping_pong")


def check_loop_mode(mode: str) -> str:
    """``mode`` if it is one of :data:`LOOP_MODES`, else :class:`InvalidInputError`."""
    if mode not in LOOP_MODES:
        raise InvalidInputError(f"loop mode must be one of {', '.join(LOOP_MODES)}, got {mode!r}")
    return mode


def source_index(k: int, n: int, mode: str) -> int:
    """The source frame shown as output frame ``k`` (0-based) of a source of ``n`` frames.

    Raises:
        InvalidInputError: ``n < 1``, ``k < 0`` or an unknown ``mode``.
    """
    check_loop_mode(mode)
    if n < 1 or k < 0:
        raise InvalidInputError(f"no source frame for output frame {k} of a source of {n} frame(s)")
    if mode == "loop" or n == 1:
        return k % n
    period = 2 * n - 2
    j = k % period
    return j if j < n else period - j


class FrameSpool:
    """Frames of one size appended to a temporary raw file and read back in any order.

    Memory stays flat (one frame at a time); the disk holds ``count * height * width * 3``
    bytes until :meth:`close` (also called on ``with`` exit) deletes the file.

    Args:
        height, width: frame size in px; every frame must be uint8 ``[height, width, 3]``.
        directory: where the temporary file goes (the system temp folder when ``None``).
    """

    def __init__(self, height: int, width: int, directory: str | os.PathLike | None = None):
        self.shape = (int(height), int(width), 3)
        self._size = self.shape[0] * self.shape[1] * 3
        fd, name = tempfile.mkstemp(prefix="lipsync_frames_", suffix=".rgb", dir=directory)
        self.path = Path(name)
        self._file = os.fdopen(fd, "w+b")
        self.count = 0

    def append(self, frame: np.ndarray) -> None:
        """Store the next frame (uint8 ``[H, W, 3]`` of the spool's size)."""
        if frame.shape != self.shape or frame.dtype != np.uint8:
            raise InvalidInputError(f"frame {self.count} is {frame.dtype} {list(frame.shape)}, "
                                    f"expected uint8 {list(self.shape)}")
        self._file.seek(self.count * self._size)
        self._file.write(np.ascontiguousarray(frame).tobytes())
        self._file.flush()
        self.count += 1

    def __getitem__(self, index: int) -> np.ndarray:
        """Frame ``index`` (0-based) as a new uint8 ``[H, W, 3]`` array."""
        if not 0 <= index < self.count:
            raise IndexError(f"frame {index} not in the spool of {self.count}")
        self._file.seek(index * self._size)
        data = self._file.read(self._size)
        return np.frombuffer(data, dtype=np.uint8).reshape(self.shape).copy()

    def close(self) -> None:
        """Delete the file (idempotent)."""
        if not self._file.closed:
            self._file.close()
        self.path.unlink(missing_ok=True)

    def __enter__(self) -> "FrameSpool":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
