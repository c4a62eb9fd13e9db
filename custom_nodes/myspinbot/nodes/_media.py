"""Files for file-to-file engines from ComfyUI's media types, and back to text.

ComfyUI hands a node an IMAGE batch (float ``[B, H, W, C]`` in 0..1), an AUDIO dict
(``{"waveform": [B, C, T], "sample_rate"}``) or a VIDEO object (``VideoFromFile`` and
friends); engines such as :func:`..lipsync.lip_sync` read files. These helpers write the
temporary files (the caller deletes what :class:`TempFiles` lists). The VIDEO object is
duck-typed (``get_stream_source``, ``get_active_trim_window``, ``save_to``), so this module
imports no ComfyUI module and is tested without ComfyUI.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from ..errors import InvalidInputError
from ..speech.audio_io import write_wav
from ..video.sizing import even_size
from ..video.writer import Mp4Writer
from ._convert import audio_to_numpy


class TempFiles:
    """Temporary files made for one node run, in ``directory``; :meth:`cleanup` deletes them."""

    def __init__(self, directory: str | os.PathLike, prefix: str):
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.prefix = prefix
        self.paths: list[Path] = []

    def new(self, suffix: str) -> Path:
        """A fresh path ``<directory>/<prefix>_<random><suffix>`` (deleted by :meth:`cleanup`)."""
        path = self.directory / f"{self.prefix}_{uuid.uuid4().hex}{suffix}"
        self.paths.append(path)
        return path

    def cleanup(self) -> None:
        for path in self.paths:
            path.unlink(missing_ok=True)
        self.paths.clear()


def _uint8_frames(images: torch.Tensor) -> np.ndarray:
    """IMAGE ``[B, H, W, C]`` float 0..1 (C = 1, 3 or 4) -> uint8 ``[B, H, W, 3]`` RGB."""
    if images.ndim != 4 or images.shape[0] == 0 or images.shape[-1] not in (1, 3, 4):
        raise InvalidInputError(f"images must be a non-empty IMAGE batch [B,H,W,C], got {list(images.shape)}")
    x = images.detach().to("cpu", torch.float32).clamp(0.0, 1.0)
    x = x.expand(-1, -1, -1, 3) if x.shape[-1] == 1 else x[..., :3]
    return (x.numpy() * 255.0 + 0.5).astype(np.uint8)


def images_to_face_file(images: torch.Tensor, fps: float, temp: TempFiles) -> Path:
    """An IMAGE batch as the face source of a file-to-file engine.

    One image becomes a PNG (a still); two or more become an H.264 MP4 at ``fps`` (crf 10,
    sides cropped to even numbers of pixels). Returns the file (listed in ``temp``).

    Raises:
        InvalidInputError: not an IMAGE batch, or frames under 2 x 2 px for a video.
    """
    frames = _uint8_frames(images)
    if frames.shape[0] == 1:
        path = temp.new(".png")
        Image.fromarray(frames[0]).save(path)
        return path
    width, height = even_size(frames.shape[2], frames.shape[1])
    path = temp.new(".mp4")
    with Mp4Writer(path, width, height, fps, crf=10) as writer:
        for frame in frames:
            writer.write(np.ascontiguousarray(frame[:height, :width]))
    return path


def audio_to_wav_file(audio: dict, temp: TempFiles) -> Path:
    """ComfyUI AUDIO (batch item 0, every channel, its own rate) as a 16-bit WAV in ``temp``.

    Raises:
        InvalidInputError: not an AUDIO dict, or no samples.
    """
    if not isinstance(audio, dict) or "waveform" not in audio or "sample_rate" not in audio:
        raise InvalidInputError("audio must be a ComfyUI AUDIO ({'waveform': [B, C, T], 'sample_rate': Hz})")
    samples, rate = audio_to_numpy(audio)
    if samples.ndim != 2 or samples.shape[1] == 0:
        raise InvalidInputError(f"the audio has no samples (waveform {list(audio['waveform'].shape)})")
    path = temp.new(".wav")
    write_wav(path, samples, rate)
    return path


def video_to_file(video, temp: TempFiles) -> Path:
    """A file to stream a ComfyUI VIDEO from.

    An untrimmed file-backed VIDEO is read where it is; any other (trimmed, in memory, a
    stream) is first written to an MP4 in ``temp`` with the VIDEO's own ``save_to``.
    """
    trim = getattr(video, "get_active_trim_window", None)
    start, duration = trim() if callable(trim) else (0.0, 0.0)
    source = video.get_stream_source() if hasattr(video, "get_stream_source") else None
    if isinstance(source, (str, os.PathLike)) and os.path.isfile(source) and not start and not duration:
        return Path(source)
    if not hasattr(video, "save_to"):
        raise InvalidInputError(f"video must be a ComfyUI VIDEO, got {type(video).__name__}")
    path = temp.new(".mp4")
    video.save_to(str(path))
    return path


def _ranges_text(ranges, fps: float) -> str:
    parts = []
    for first, last in ranges:
        seconds = f"{first / fps:.2f}-{(last + 1) / fps:.2f} s"
        parts.append(f"{first}" if first == last else f"{first}-{last}")
        parts[-1] += f" ({seconds})"
    return ", ".join(parts)


def faceless_report(frames: int, fps: float, ranges, limit: int = 20) -> str:
    """One line on the frames passed through without a face, e.g.
    ``"3 of 38 frames without a face (passed through unchanged): 6-8 (0.24-0.36 s)"``.

    Args:
        frames: frames in the video; ``fps``: their rate.
        ranges: ``(first, last)`` inclusive 0-based frame indices of the faceless runs.
        limit: runs listed at most (the rest are counted).
    """
    ranges = [(int(a), int(b)) for a, b in ranges]
    count = sum(b - a + 1 for a, b in ranges)
    if count == 0:
        return f"0 of {frames} frames without a face: every frame was lip-synced"
    text = f"{count} of {frames} frames without a face (passed through unchanged): {_ranges_text(ranges[:limit], fps)}"
    if len(ranges) > limit:
        text += f" and {len(ranges) - limit} more runs"
    return text
