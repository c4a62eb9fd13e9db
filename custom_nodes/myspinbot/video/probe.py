"""Read stream facts (codec, size, rate, duration) of a media file with PyAV."""

from __future__ import annotations

import os
from pathlib import Path

import av

from ..errors import InvalidInputError


def _seconds(value, time_base) -> float | None:
    if value is None or time_base is None:
        return None
    return float(value * time_base)


def _video_info(container, stream) -> dict:
    rate = stream.average_rate or stream.base_rate or stream.guessed_rate
    frames = int(stream.frames or 0)
    duration = _seconds(stream.duration, stream.time_base)
    if frames <= 0 or duration is None:
        frames, duration = _count_video(container, stream)
    return {
        "codec": stream.codec_context.name,
        "width": int(stream.codec_context.width),
        "height": int(stream.codec_context.height),
        "pix_fmt": stream.codec_context.pix_fmt,
        "fps": float(rate) if rate else None,
        "frame_count": frames,
        "duration_s": duration,
    }


def _count_video(container, stream) -> tuple[int, float | None]:
    count, end = 0, None
    for packet in container.demux(stream):
        if packet.size == 0 or packet.pts is None:
            continue
        count += 1
        stop = _seconds(packet.pts + (packet.duration or 0), stream.time_base)
        end = stop if end is None else max(end, stop)
    container.seek(0)
    return count, end


def _audio_info(stream) -> dict:
    ctx = stream.codec_context
    return {
        "codec": ctx.name,
        "sample_rate": int(ctx.sample_rate),
        "channels": int(ctx.layout.nb_channels) if ctx.layout is not None else int(ctx.channels),
        "duration_s": _seconds(stream.duration, stream.time_base),
    }


def probe_media(path: str | os.PathLike) -> dict:
    """Describe the first video and first audio stream of a media file.

    Args:
        path: a media file (MP4, WAV, ...).

    Returns:
        ``{"path": str, "format": str, "duration_s": float | None,
        "video": None | {"codec", "width", "height", "pix_fmt", "fps", "frame_count",
        "duration_s"}, "audio": None | {"codec", "sample_rate", "channels", "duration_s"},
        "video_streams": int, "audio_streams": int}``. Durations are seconds (float),
        ``fps`` frames per second, ``sample_rate`` Hz.

    Raises:
        InvalidInputError: the file does not exist or is not readable media.
    """
    p = Path(path)
    if not p.is_file():
        raise InvalidInputError(f"media file not found: {p}")
    try:
        container = av.open(str(p))
    except av.FFmpegError as exc:
        raise InvalidInputError(f"not a readable media file: {p} ({exc})") from exc
    with container:
        videos = list(container.streams.video)
        audios = list(container.streams.audio)
        return {
            "path": str(p),
            "format": container.format.name,
            "duration_s": (container.duration / av.time_base) if container.duration else None,
            "video": _video_info(container, videos[0]) if videos else None,
            "audio": _audio_info(audios[0]) if audios else None,
            "video_streams": len(videos),
            "audio_streams": len(audios),
        }
