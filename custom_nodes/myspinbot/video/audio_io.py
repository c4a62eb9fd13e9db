"""Decode the audio of a media file (WAV, MP4, ...) to a float32 array with PyAV."""

from __future__ import annotations

import os
from pathlib import Path

import av
import numpy as np

from ..errors import InvalidInputError


def load_audio(path: str | os.PathLike) -> tuple[np.ndarray, int]:
    """Read the first audio stream whole.

    Args:
        path: a media file with an audio stream.

    Returns:
        ``(samples, sample_rate)``: float32 ``[C, T]`` in -1..1 (C = channels of the
        stream) and the rate in Hz. Holds the whole signal in memory (4 bytes per sample
        per channel).

    Raises:
        InvalidInputError: missing file, unreadable media, or no audio stream.
    """
    p = Path(path)
    if not p.is_file():
        raise InvalidInputError(f"audio file not found: {p}")
    try:
        container = av.open(str(p))
    except av.FFmpegError as exc:
        raise InvalidInputError(f"not a readable media file: {p} ({exc})") from exc
    with container:
        if not container.streams.audio:
            raise InvalidInputError(f"no audio stream in {p}")
        stream = container.streams.audio[0]
        rate = int(stream.codec_context.sample_rate)
        resampler = None
        blocks: list[np.ndarray] = []
        for frame in container.decode(stream):
            if resampler is None:
                resampler = av.AudioResampler(format="fltp", layout=frame.layout, rate=frame.sample_rate)
            for out in resampler.resample(frame):
                blocks.append(out.to_ndarray().astype(np.float32, copy=False))
        if resampler is not None:
            for out in resampler.resample(None):
                blocks.append(out.to_ndarray().astype(np.float32, copy=False))
    if not blocks:
        raise InvalidInputError(f"audio stream of {p} holds no samples")
    return np.concatenate(blocks, axis=1), rate
