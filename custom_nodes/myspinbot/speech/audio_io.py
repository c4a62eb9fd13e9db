"""Audio file input/output: decode any common audio file (PyAV), probe it cheaply, mix to
mono, resample, and write 16-bit PCM WAV.

Sample arrays are float32 shaped ``[C, T]`` (channels, samples) with values in -1..1.
PyAV is imported on first use, not at import time; SciPy is not needed.
"""

from __future__ import annotations

import io
import os
import wave
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO, Iterator, Union

import numpy as np

from ..errors import InvalidInputError

AudioSource = Union[str, os.PathLike, bytes, bytearray, memoryview, BinaryIO]


def _describe(source: AudioSource) -> str:
    if isinstance(source, (str, os.PathLike)):
        return f"'{os.fspath(source)}'"
    if isinstance(source, (bytes, bytearray, memoryview)):
        return f"the uploaded data ({len(source)} bytes)"
    return "the given file object"


@contextmanager
def _open_audio(source: AudioSource) -> Iterator[tuple[object, object]]:
    """Yield ``(container, first_audio_stream)``; raise InvalidInputError if there is none."""
    import av  # noqa: PLC0415

    name = _describe(source)
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        if not path.is_file():
            raise InvalidInputError(f"audio file {name} does not exist", details={"path": str(path)})
        if path.stat().st_size == 0:
            raise InvalidInputError(f"audio file {name} is empty")
        target: object = str(path)
    elif isinstance(source, (bytes, bytearray, memoryview)):
        if len(source) == 0:
            raise InvalidInputError("audio data is empty (0 bytes)")
        target = io.BytesIO(bytes(source))
    else:
        target = source
    try:
        container = av.open(target, mode="r")
    except (av.FFmpegError, OSError, ValueError) as exc:
        reason = getattr(exc, "strerror", None) or str(exc)
        raise InvalidInputError(f"{name} is not a readable audio file ({reason})") from exc
    try:
        if not container.streams.audio:
            kinds = sorted({stream.type for stream in container.streams}) or ["nothing"]
            raise InvalidInputError(
                f"{name} has no audio stream (format {container.format.name}, holds {', '.join(kinds)})"
            )
        stream = container.streams.audio[0]
        if not stream.codec_context.sample_rate or stream.codec_context.sample_rate <= 0:
            raise InvalidInputError(f"{name} has an audio stream with no sample rate")
        yield container, stream
    finally:
        container.close()


def _decode(container, stream, name: str, *, first_only: bool = False) -> tuple[list[np.ndarray], int]:
    """Decode ``stream`` to float32 planar chunks ``[C, n]``; return them and the sample rate."""
    import av  # noqa: PLC0415

    resampler = av.AudioResampler(format="fltp")  # keep layout and rate, convert the format
    chunks: list[np.ndarray] = []
    rate = 0
    try:
        for frame in container.decode(stream):
            for out in resampler.resample(frame):
                rate = rate or int(out.sample_rate)
                chunks.append(out.to_ndarray())
            if first_only and any(chunk.shape[-1] for chunk in chunks):
                return chunks, rate
        for out in resampler.resample(None):
            rate = rate or int(out.sample_rate)
            chunks.append(out.to_ndarray())
    except (av.FFmpegError, ValueError) as exc:
        reason = getattr(exc, "strerror", None) or str(exc)
        raise InvalidInputError(f"{name} could not be decoded as audio ({reason})") from exc
    return chunks, rate


def load_audio(source: AudioSource) -> tuple[np.ndarray, int]:
    """Decode a whole audio file (wav, mp3, flac, m4a/aac, ogg/opus/vorbis, ... via PyAV).

    Args:
        source: a path, the file's bytes, or a readable binary file object. Only the first
            audio stream is decoded (video streams are ignored).

    Returns:
        ``(samples, sample_rate)``: float32 array shaped ``[C, T]`` in -1..1 (as decoded,
        no channel mixing or resampling) and the rate in Hz.

    Raises:
        InvalidInputError (code ``invalid_input``): the file is missing or empty, is not a
            media file, has no audio stream, cannot be decoded, or holds zero samples.
    """
    name = _describe(source)
    with _open_audio(source) as (container, stream):
        chunks, rate = _decode(container, stream, name)
    chunks = [chunk for chunk in chunks if chunk.shape[-1]]
    if not chunks:
        raise InvalidInputError(f"{name} holds no audio samples")
    samples = np.concatenate(chunks, axis=1).astype(np.float32, copy=False)
    return np.ascontiguousarray(samples), rate


def probe_audio(source: AudioSource) -> dict:
    """Check cheaply that ``source`` is audio and describe it, decoding only its first frame.

    Args:
        source: a path, the file's bytes, or a readable binary file object.

    Returns:
        ``{"duration_s": float, "sample_rate": int (Hz), "channels": int, "codec": str,
        "container": str}``. ``duration_s`` comes from the container's metadata; only when
        that is missing is the whole stream decoded to measure it.

    Raises:
        InvalidInputError (code ``invalid_input``): as for ``load_audio``.
    """
    import av  # noqa: PLC0415

    name = _describe(source)
    with _open_audio(source) as (container, stream):
        codec = stream.codec_context
        info = {
            "duration_s": None,
            "sample_rate": int(codec.sample_rate),
            "channels": int(codec.channels),
            "codec": str(codec.name),
            "container": str(container.format.name),
        }
        if stream.duration is not None and stream.time_base is not None:
            info["duration_s"] = float(stream.duration * stream.time_base)
        elif container.duration is not None:
            info["duration_s"] = float(container.duration) / av.time_base
        measure = info["duration_s"] is None or info["duration_s"] <= 0
        chunks, rate = _decode(container, stream, name, first_only=not measure)
    total = sum(chunk.shape[-1] for chunk in chunks)
    if total == 0:
        raise InvalidInputError(f"{name} holds no audio samples")
    if measure:
        info["duration_s"] = total / float(rate)
    if chunks:
        info["channels"] = int(chunks[0].shape[0]) or info["channels"]
    return info


def count_audio_seconds(source: AudioSource, stop_after_s: float | None = None) -> float:
    """Seconds of audio in the first audio stream, counted by decoding every frame: container
    headers (a FLAC STREAMINFO, a WAV size) can lie, the decoded samples cannot.

    Args:
        source: a path, the file's bytes, or a readable binary file object.
        stop_after_s: stop decoding at the first frame that takes the count past this many
            seconds; the count returned is then greater than ``stop_after_s``.

    Returns:
        The seconds counted (0.0 for a stream with no samples). Frames are dropped as they are
        counted, so memory stays at one frame whatever the length.

    Raises:
        InvalidInputError (code ``invalid_input``): as for ``load_audio``, but not for zero samples.
    """
    import av  # noqa: PLC0415

    name = _describe(source)
    seconds = 0.0
    with _open_audio(source) as (container, stream):
        try:
            for frame in container.decode(stream):
                if frame.sample_rate:
                    seconds += frame.samples / float(frame.sample_rate)
                if stop_after_s is not None and seconds > stop_after_s:
                    break
        except (av.FFmpegError, ValueError) as exc:
            reason = getattr(exc, "strerror", None) or str(exc)
            raise InvalidInputError(f"{name} could not be decoded as audio ({reason})") from exc
    return seconds


def _as_2d(samples: np.ndarray, what: str) -> np.ndarray:
    array = np.asarray(samples)
    if array.ndim == 1:
        array = array[np.newaxis, :]
    if array.ndim != 2 or array.shape[0] < 1:
        raise InvalidInputError(f"{what} must be shaped [C, T] or [T], got shape {array.shape}")
    return array


def to_mono(samples: np.ndarray) -> np.ndarray:
    """Average the channels: ``[C, T]`` (or ``[T]``) to float32 ``[1, T]``.

    Raises:
        InvalidInputError: ``samples`` is not 1-D or 2-D.
    """
    array = _as_2d(samples, "samples").astype(np.float32, copy=False)
    return array.mean(axis=0, keepdims=True, dtype=np.float32)


def resample(samples: np.ndarray, sr_from: int, sr_to: int) -> np.ndarray:
    """Change the sample rate with FFmpeg's resampler (libswresample through PyAV).

    Each channel is resampled on its own; the output is aligned with the input (no filter
    delay) and has exactly ``ceil(T * sr_to / sr_from)`` samples per channel.

    Args:
        samples: shaped ``[C, T]`` or ``[T]`` (resampled along the last axis).
        sr_from: current rate in Hz (positive int).
        sr_to: wanted rate in Hz (positive int).

    Returns:
        float32 array of the same rank (a float32 copy when the rates are equal).

    Raises:
        InvalidInputError: a rate is not a positive integer, or ``samples`` is not 1-D/2-D.
    """
    for label, rate in (("sr_from", sr_from), ("sr_to", sr_to)):
        if isinstance(rate, bool) or int(rate) != rate or rate <= 0:
            raise InvalidInputError(f"{label} must be a positive integer sample rate, got {rate!r}")
    array = np.asarray(samples, dtype=np.float32)
    if array.ndim not in (1, 2):
        raise InvalidInputError(f"samples must be shaped [C, T] or [T], got shape {array.shape}")
    sr_from, sr_to = int(sr_from), int(sr_to)
    if sr_from == sr_to or array.shape[-1] == 0:
        return array.copy()
    length = -(-array.shape[-1] * sr_to // sr_from)  # ceil
    channels = array.reshape(-1, array.shape[-1])
    out = np.stack([_resample_channel(channel, sr_from, sr_to, length) for channel in channels])
    return out.reshape(*array.shape[:-1], length)


# Zeros appended before resampling, so the resampler's filter has room to emit every wanted
# output sample (it emits nothing for a few-sample input); the surplus is cut off.
_RESAMPLE_CHUNK = 1 << 16  # samples per frame fed to the resampler
_RESAMPLE_PAD = 256


def _resample_channel(channel: np.ndarray, sr_from: int, sr_to: int, length: int) -> np.ndarray:
    """Resample one channel (float32 ``[T]``) to exactly ``length`` samples.

    The channel goes through one resampler in pieces of :data:`_RESAMPLE_CHUNK` samples (then
    :data:`_RESAMPLE_PAD` zeros to flush the filter): the same output as one whole-channel
    frame, sample for sample, without libswresample's buffers for the whole signal (those took
    about 1.5 MiB per second of 48 kHz audio)."""
    import av  # noqa: PLC0415

    resampler = av.AudioResampler(format="fltp", layout="mono", rate=sr_to)
    result = np.zeros(length, np.float32)
    filled = 0

    def take(frames) -> None:
        nonlocal filled
        for out in frames:
            data = out.to_ndarray()[0]
            n = min(data.shape[0], length - filled)
            if n > 0:
                result[filled:filled + n] = data[:n]
                filled += n

    pieces = [channel[start:start + _RESAMPLE_CHUNK] for start in range(0, channel.shape[0], _RESAMPLE_CHUNK)]
    for piece in [*pieces, np.zeros(_RESAMPLE_PAD, np.float32)]:
        frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(piece, dtype=np.float32)[np.newaxis, :],
                                           format="fltp", layout="mono")
        frame.sample_rate = sr_from
        take(resampler.resample(frame))
    take(resampler.resample(None))
    return result  # zeros past the resampler's output: not expected, keeps the promised length


def write_wav(path: str | os.PathLike, samples: np.ndarray, sample_rate: int) -> Path:
    """Write 16-bit PCM WAV (values clipped to -1..1, scaled by 32767).

    Args:
        path: output file (its folder must exist; an existing file is replaced).
        samples: float array shaped ``[C, T]`` or ``[T]`` (mono).
        sample_rate: rate in Hz (positive int).

    Returns:
        The written path.

    Raises:
        InvalidInputError: bad shape or sample rate, or non-finite samples.
        OSError: the file cannot be written.
    """
    if isinstance(sample_rate, bool) or int(sample_rate) != sample_rate or sample_rate <= 0:
        raise InvalidInputError(f"sample_rate must be a positive integer, got {sample_rate!r}")
    array = _as_2d(samples, "samples").astype(np.float32, copy=False)
    if not np.all(np.isfinite(array)):
        raise InvalidInputError("samples contain NaN or infinity")
    pcm = np.round(np.clip(array, -1.0, 1.0) * 32767.0).astype("<i2")
    out = Path(path)
    with wave.open(str(out), "wb") as wav:
        wav.setnchannels(pcm.shape[0])
        wav.setsampwidth(2)
        wav.setframerate(int(sample_rate))
        wav.writeframes(np.ascontiguousarray(pcm.T).tobytes())
    return out
