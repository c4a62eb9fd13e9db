"""Streaming file-to-file frame map: decode a video one frame at a time, pass each frame
through a callable (an upscaler, say), encode the results with :class:`Mp4Writer` and carry
the source's audio over untouched.

Two passes, both streaming (memory does not grow with clip length):

1. Decode the first video stream frame by frame, map each frame, encode it to a video-only
   H.264 MP4 beside the destination (a hidden temporary file).
2. Mux that video with the source's first audio stream into the destination
   (:mod:`.remux`): the audio *packets* are copied as they are (no decode, no re-encode)
   when MP4 can hold the codec, otherwise the audio is decoded and re-encoded to AAC.

The destination appears only when everything succeeded (it is written under a temporary
name and renamed); on any error, including one raised by the progress callback (e.g. a
user interrupt), no output and no temporary file is left behind.

Imports no ComfyUI module.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Literal

import av
import numpy as np

from ..errors import InvalidInputError
from .remux import (AUDIO_COPIED, AUDIO_NONE, AUDIO_REENCODED, Source, describe, finish_with_audio, open_input,
                    temp_sibling, unlink_quietly)
from .writer import Mp4Writer, fps_fraction

FrameFn = Callable[[np.ndarray], np.ndarray]
ProgressFn = Callable[[int, int], None]


@dataclass(frozen=True)
class MapResult:
    """What :func:`map_video_frames` / :func:`encode_frames` wrote.

    Attributes:
        path: the output MP4.
        frame_count: frames written (= frames decoded from the source).
        fps: frame rate of the output (the source's average rate), exact fraction.
        in_size: ``(width, height)`` of the source frames (``None`` for :func:`encode_frames`).
        mapped_size: ``(width, height)`` of the frames the callable returned.
        out_size: ``(width, height)`` encoded; equals ``mapped_size`` unless a side was odd
            (H.264 yuv420p needs even sides), then the last row/column was cropped.
        audio: ``"none"`` (no audio in the source), ``"copied"`` (packets remuxed
            unchanged) or ``"reencoded"`` (decoded and encoded to AAC).
        audio_codec: codec name of the output audio stream, or ``None``.
    """

    path: Path
    frame_count: int
    fps: Fraction
    in_size: tuple[int, int] | None
    mapped_size: tuple[int, int]
    out_size: tuple[int, int]
    audio: str
    audio_codec: str | None

    @property
    def cropped(self) -> bool:
        """True when an odd mapped size was cropped by one pixel to an even one."""
        return self.mapped_size != self.out_size

    @property
    def summary(self) -> str:
        """One line describing the result, for a node's info output or a log."""
        w, h = self.out_size
        text = f"{self.frame_count} frames {w}x{h} @ {float(self.fps):.3g} fps"
        if self.in_size is not None:
            text = f"{self.in_size[0]}x{self.in_size[1]} -> " + text
        if self.cropped:
            text += f" (cropped from {self.mapped_size[0]}x{self.mapped_size[1]} to even sides)"
        text += {AUDIO_NONE: ", no audio", AUDIO_COPIED: f", audio copied ({self.audio_codec})",
                 AUDIO_REENCODED: f", audio re-encoded to {self.audio_codec}"}[self.audio]
        return text


# -- helpers ------------------------------------------------------------------------------

def _stream_rate(stream) -> Fraction:
    rate = stream.average_rate or stream.guessed_rate or stream.base_rate
    if not rate or rate <= 0:
        raise InvalidInputError("the video stream has no usable frame rate")
    return fps_fraction(float(rate))  # what Mp4Writer will write (e.g. 30000/1001 stays exact)


def _expected_frames(stream, rate: Fraction) -> int:
    frames = int(stream.frames or 0)
    if frames > 0:
        return frames
    if stream.duration is not None and stream.time_base is not None:
        return max(1, int(round(float(stream.duration * stream.time_base) * rate)))
    container = stream.container
    if container.duration:
        return max(1, int(round(container.duration / av.time_base * rate)))
    return 0


def _check_mapped(out: np.ndarray, index: int, expected: tuple[int, int] | None) -> np.ndarray:
    arr = np.asarray(out)
    if arr.dtype != np.uint8 or arr.ndim != 3 or arr.shape[2] != 3:
        raise InvalidInputError(
            f"the frame function must return uint8 [H, W, 3] RGB; frame {index} gave {arr.dtype} {list(arr.shape)}"
        )
    if expected is not None and (arr.shape[1], arr.shape[0]) != expected:
        raise InvalidInputError(
            f"the frame function changed the frame size mid-video: frame {index} is "
            f"{arr.shape[1]}x{arr.shape[0]}, earlier frames were {expected[0]}x{expected[1]}"
        )
    return arr


def _even(size: tuple[int, int]) -> tuple[int, int]:
    w, h = size
    w2, h2 = w - (w % 2), h - (h % 2)
    if w2 < 2 or h2 < 2:
        raise InvalidInputError(f"mapped frame size {w}x{h} is too small to encode (both sides must be >= 2)")
    return w2, h2


class _FrameSink:
    """Creates the :class:`Mp4Writer` on the first frame (its size is known only then)."""

    def __init__(self, path: Path, fps: Fraction, crf: int, preset: str):
        self.path, self.fps, self.crf, self.preset = path, fps, crf, preset
        self.writer: Mp4Writer | None = None
        self.mapped_size: tuple[int, int] | None = None
        self.out_size: tuple[int, int] | None = None
        self.count = 0

    def write(self, frame: np.ndarray) -> None:
        arr = _check_mapped(frame, self.count, self.mapped_size)
        if self.writer is None:
            self.mapped_size = (int(arr.shape[1]), int(arr.shape[0]))
            self.out_size = _even(self.mapped_size)
            self.writer = Mp4Writer(self.path, *self.out_size, float(self.fps), crf=self.crf, preset=self.preset)
        w, h = self.out_size
        if (arr.shape[1], arr.shape[0]) != (w, h):
            arr = arr[:h, :w]
        self.writer.write(arr)
        self.count += 1

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()

    def abort(self) -> None:
        if self.writer is not None:
            self.writer.abort()
        unlink_quietly(self.path)


# -- public API ---------------------------------------------------------------------------

def map_video_frames(
    src: Source,
    dst: str | os.PathLike,
    frame_fn: FrameFn,
    *,
    on_progress: ProgressFn | None = None,
    audio: Literal["copy", "reencode"] = "copy",
    crf: int = 18,
    preset: str = "fast",
) -> MapResult:
    """Map every frame of a video through ``frame_fn`` and write an MP4, streaming.

    Args:
        src: the input video: a path, or a readable binary file object (e.g. ``BytesIO``).
            Its first video stream is mapped and its first audio stream carried over.
        dst: the output MP4 (parent folders are created; replaced if it exists).
        frame_fn: called once per frame, in order, with a uint8 ``[H, W, 3]`` RGB array;
            must return a uint8 ``[H', W', 3]`` RGB array, the same size for every frame.
            An odd ``H'`` or ``W'`` is cropped by one pixel (H.264 yuv420p needs even sides).
        on_progress: ``on_progress(done, total)`` after each frame is written; ``total`` is
            the frame count the container announces (updated if it was wrong). Anything it
            raises (e.g. an interrupt) stops the run and propagates.
        audio: ``"copy"`` remuxes the source's audio packets unchanged (re-encodes to AAC
            only if MP4 cannot hold the codec); ``"reencode"`` always decodes and re-encodes
            to AAC.
        crf, preset: x264 settings of the output video.

    Returns:
        A :class:`MapResult`. Frame count and frame rate are the source's (a variable-rate
        source is written at its average rate).

    Raises:
        InvalidInputError: missing or unreadable input, no video stream, no frames, or a
            ``frame_fn`` result of the wrong type/shape or changing size.
        Whatever ``frame_fn`` or ``on_progress`` raise. In every error case ``dst`` is left
        as it was and no temporary file remains.
    """
    if audio not in ("copy", "reencode"):
        raise InvalidInputError(f"audio must be 'copy' or 'reencode', got {audio!r}")
    dst = Path(dst)
    dst.parent.mkdir(parents=True, exist_ok=True)
    container = open_input(src)
    video_tmp = temp_sibling(dst, "video")
    sink: _FrameSink | None = None
    try:
        with container:
            if not container.streams.video:
                raise InvalidInputError(f"no video stream in {describe(src)}")
            vstream = container.streams.video[0]
            vstream.thread_type = "AUTO"
            rate = _stream_rate(vstream)
            total = _expected_frames(vstream, rate)
            sink = _FrameSink(video_tmp, rate, crf, preset)
            in_size = (int(vstream.codec_context.width), int(vstream.codec_context.height))
            video_start = None
            for frame in container.decode(vstream):
                if video_start is None:
                    video_start = float(frame.time) if frame.time is not None else 0.0
                rgb = frame.to_ndarray(format="rgb24")
                in_size = (int(rgb.shape[1]), int(rgb.shape[0]))
                sink.write(frame_fn(rgb))
                del rgb
                if on_progress is not None:
                    total = max(total, sink.count)
                    on_progress(sink.count, total)
        if sink.count == 0:
            raise InvalidInputError(f"no decodable video frames in {describe(src)}")
        if on_progress is not None and total != sink.count:
            on_progress(sink.count, sink.count)
        sink.close()
        mode, codec = finish_with_audio(video_tmp, src, dst, video_start or 0.0, audio)
        return MapResult(
            path=dst, frame_count=sink.count, fps=rate, in_size=in_size, mapped_size=sink.mapped_size,
            out_size=sink.out_size, audio=mode, audio_codec=codec,
        )
    except BaseException:
        if sink is not None:
            sink.abort()
        raise
    finally:
        unlink_quietly(video_tmp)


def encode_frames(
    frames: Iterable[np.ndarray],
    dst: str | os.PathLike,
    fps: float,
    *,
    on_progress: ProgressFn | None = None,
    total: int = 0,
    crf: int = 18,
    preset: str = "fast",
) -> MapResult:
    """Encode uint8 ``[H, W, 3]`` RGB frames (all one size) to a silent MP4, streaming.

    Same size rules and clean-up guarantees as :func:`map_video_frames` (odd sides are
    cropped by one pixel; on error ``dst`` is untouched and no temporary file remains).
    ``total`` is only passed on to ``on_progress``.
    """
    dst = Path(dst)
    dst.parent.mkdir(parents=True, exist_ok=True)
    rate = fps_fraction(fps)
    tmp = temp_sibling(dst, "frames")
    sink = _FrameSink(tmp, rate, crf, preset)
    try:
        for frame in frames:
            sink.write(frame)
            if on_progress is not None:
                on_progress(sink.count, max(total, sink.count))
        if sink.count == 0:
            raise InvalidInputError("no frames to encode")
        sink.close()
        os.replace(tmp, dst)
    except BaseException:
        sink.abort()
        raise
    finally:
        unlink_quietly(tmp)
    return MapResult(path=dst, frame_count=sink.count, fps=rate, in_size=None, mapped_size=sink.mapped_size,
                     out_size=sink.out_size, audio=AUDIO_NONE, audio_codec=None)


def nearest_scale(factor: int) -> FrameFn:
    """A frame function that enlarges by an integer ``factor`` with nearest-neighbour
    (pixel repetition); handy for tests and as a cheap preview."""
    if int(factor) != factor or factor < 1:
        raise InvalidInputError(f"factor must be a positive integer, got {factor!r}")
    f = int(factor)

    def scale(frame: np.ndarray) -> np.ndarray:
        return np.repeat(np.repeat(frame, f, axis=0), f, axis=1)

    return scale


__all__ = ["MapResult", "encode_frames", "map_video_frames", "nearest_scale"]
