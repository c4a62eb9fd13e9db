"""Streaming MP4 writer: H.264 video frames as they come, AAC audio interleaved."""

from __future__ import annotations

import math
import os
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from ..errors import InvalidInputError
from .audio_track import AacTrack, check_audio
from .sizing import check_even_size


def fps_fraction(fps: float) -> Fraction:
    """Return ``fps`` as an exact frame-rate fraction (e.g. 29.97002997 -> 30000/1001).

    Raises:
        InvalidInputError: ``fps`` is not a finite number in (0, 240].
    """
    try:
        value = float(fps)
    except (TypeError, ValueError):
        raise InvalidInputError(f"fps must be a number, got {fps!r}") from None
    if not math.isfinite(value) or value <= 0 or value > 240:
        raise InvalidInputError(f"fps must be in (0, 240], got {fps!r}")
    return Fraction(value).limit_denominator(1001)


class Mp4Writer:
    """Encode RGB frames to an MP4 (H.264 yuv420p) with an optional AAC track.

    Frames are encoded one at a time as :meth:`write` is called; after frame ``i`` the
    audio up to ``(i + 1) / fps`` seconds is encoded too, so packets interleave and memory
    stays flat in clip length. :meth:`close` flushes both encoders and writes any audio
    left after the last frame. If anything fails (or the ``with`` block raises), the
    partial file is removed.

    Use as a context manager::

        with Mp4Writer(path, 512, 512, 25.0, audio, 48000) as w:
            for frame in frames:
                w.write(frame)
    """

    def __init__(
        self,
        path: str | os.PathLike,
        width: int,
        height: int,
        fps: float,
        audio: np.ndarray | None = None,
        sample_rate: int | None = None,
        *,
        crf: int = 20,
        preset: str = "fast",
    ):
        """Create ``path`` and write the MP4 header (parent folders are created).

        Args:
            path: output file, normally ending in ``.mp4``; overwritten if it exists.
            width, height: frame size in pixels, both even (see ``even_size``).
            fps: frames per second (> 0).
            audio: float ``[C, T]`` (C = 1 or 2) or ``[T]`` in -1..1, or ``None``.
            sample_rate: Hz of ``audio``; required with audio.
            crf: x264 constant rate factor (0-51, lower = better).
            preset: x264 speed preset.

        Raises:
            InvalidInputError: odd or tiny size, bad fps, unusable audio, bad crf.
            OSError / av.FFmpegError: the file cannot be created.
        """
        check_even_size(width, height)
        self._rate = fps_fraction(fps)
        self._audio = check_audio(audio, sample_rate)
        if not 0 <= int(crf) <= 51:
            raise InvalidInputError(f"crf must be in 0..51, got {crf}")
        self._path = Path(path)
        self._width = int(width)
        self._height = int(height)
        self._frames = 0
        self._done = False
        self._container = None
        self._track: AacTrack | None = None
        self._path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._container = av.open(
                str(self._path), mode="w", format="mp4", container_options={"movflags": "+faststart"}
            )
            video = self._container.add_stream("libx264", rate=self._rate)
            video.width = self._width
            video.height = self._height
            video.pix_fmt = "yuv420p"
            video.codec_context.time_base = 1 / self._rate
            video.codec_context.options = {"crf": str(int(crf)), "preset": str(preset)}
            self._video = video
            if self._audio is not None:
                self._track = AacTrack(self._container, self._audio, int(sample_rate))
            self._container.start_encoding()  # open the codecs and write the header now
        except BaseException:
            self.abort()
            raise

    # -- context manager -------------------------------------------------------------
    def __enter__(self) -> "Mp4Writer":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is not None:
            self.abort()
        else:
            self.close()

    # -- properties -----------------------------------------------------------------
    @property
    def path(self) -> Path:
        """The output file."""
        return self._path

    @property
    def frames_written(self) -> int:
        """Number of video frames written so far."""
        return self._frames

    @property
    def fps(self) -> Fraction:
        """The frame rate as an exact fraction."""
        return self._rate

    # -- writing --------------------------------------------------------------------
    def write(self, frame: np.ndarray) -> None:
        """Encode one frame and the audio that plays during it.

        Args:
            frame: uint8 ``[height, width, 3]`` RGB.

        Raises:
            InvalidInputError: wrong shape or dtype (the writer stays usable).
            RuntimeError: the writer is already closed.
            Any encoder/IO error: the partial file is removed, then it propagates.
        """
        if self._done:
            raise RuntimeError("Mp4Writer is closed")
        arr = np.asarray(frame)
        if arr.dtype != np.uint8 or arr.shape != (self._height, self._width, 3):
            raise InvalidInputError(
                f"frame must be uint8 [{self._height}, {self._width}, 3] RGB, got {arr.dtype} {list(arr.shape)}"
            )
        try:
            vf = av.VideoFrame.from_ndarray(np.ascontiguousarray(arr), format="rgb24")
            vf.pts = self._frames
            vf.time_base = 1 / self._rate
            self._container.mux(self._video.encode(vf))
            self._frames += 1
            if self._track is not None:
                self._container.mux(self._track.push_until(float(self._frames / self._rate)))
        except BaseException:
            self.abort()
            raise

    def close(self) -> None:
        """Flush the encoders, write the remaining audio and finish the file.

        Safe to call twice. Raises (after removing the partial file) if finishing fails.
        """
        if self._done:
            return
        try:
            self._container.mux(self._video.encode(None))
            if self._track is not None:
                self._container.mux(self._track.finish())
            self._container.close()
            self._done = True
        except BaseException:
            self.abort()
            raise

    def abort(self) -> None:
        """Stop without finishing: close the container quietly and delete the file."""
        self._done = True
        container, self._container = self._container, None
        if container is not None:
            try:
                container.close()
            except Exception:  # noqa: BLE001 - already failing; the file is removed below
                pass
        try:
            self._path.unlink()
        except FileNotFoundError:
            pass
