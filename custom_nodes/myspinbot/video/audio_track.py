"""Feeds a whole in-memory audio signal into an AAC stream chunk by chunk.

The signal stays the caller's array; only one encoder frame (``frame_size`` samples,
1024 for AAC) is copied at a time, so memory does not grow with clip length.
"""

from __future__ import annotations

from fractions import Fraction

import av
import numpy as np

from ..errors import InvalidInputError

_LAYOUTS = ("mono", "stereo")  # by channel count - 1
_FALLBACK_RATE = 48000


def check_audio(audio: np.ndarray | None, sample_rate: int | None) -> np.ndarray | None:
    """Validate an audio signal for muxing and return it as a float32 ``[C, T]`` view.

    Args:
        audio: float array ``[C, T]`` (C = 1 or 2) or ``[T]`` (mono), samples in -1..1
            (values outside are clipped when encoded), or ``None`` for no audio track.
        sample_rate: samples per second (Hz) of ``audio``; required when audio is given.

    Returns:
        ``None`` or a float32 ``[C, T]`` array (a view when the input already is one).

    Raises:
        InvalidInputError: wrong shape, no samples, too many channels, missing or
            non-positive sample rate.
    """
    if audio is None:
        return None
    arr = np.asarray(audio)
    if arr.ndim == 1:
        arr = arr[np.newaxis, :]
    if arr.ndim != 2:
        raise InvalidInputError(f"audio must be [channels, samples] or [samples], got shape {arr.shape}")
    if arr.shape[0] not in (1, 2):
        raise InvalidInputError(f"audio must have 1 or 2 channels, got {arr.shape[0]} (shape {arr.shape})")
    if arr.shape[1] == 0:
        raise InvalidInputError("audio has no samples")
    if not np.issubdtype(arr.dtype, np.floating):
        raise InvalidInputError(f"audio must be float samples in -1..1, got dtype {arr.dtype}")
    if sample_rate is None or int(sample_rate) != sample_rate or int(sample_rate) <= 0:
        raise InvalidInputError(f"audio needs a positive integer sample_rate, got {sample_rate!r}")
    return arr.astype(np.float32, copy=False)


class AacTrack:
    """An AAC audio stream in an output container, fed from a ``[C, T]`` float32 array.

    The encoder takes planar float (``fltp``) at common rates; a source rate the encoder
    does not support is converted with ``av.AudioResampler`` (to 48 kHz), otherwise
    samples go to the encoder unchanged.
    """

    def __init__(self, container: av.container.OutputContainer, audio: np.ndarray, sample_rate: int):
        """Add the stream to ``container`` (before any packet is muxed).

        Args:
            container: an output container opened for writing.
            audio: float32 ``[C, T]`` as returned by :func:`check_audio`.
            sample_rate: sample rate of ``audio`` in Hz.
        """
        self._audio = audio
        self._rate = int(sample_rate)
        self._layout = _LAYOUTS[audio.shape[0] - 1]
        codec = av.Codec("aac", "w")
        supported = codec.audio_rates or []
        out_rate = self._rate if (not supported or self._rate in supported) else _FALLBACK_RATE
        formats = [f.name for f in (codec.audio_formats or [])]
        out_format = "fltp" if (not formats or "fltp" in formats) else formats[0]
        self._stream = container.add_stream("aac", rate=out_rate)
        ctx = self._stream.codec_context
        ctx.layout = self._layout
        ctx.format = out_format
        ctx.bit_rate = 96000 * audio.shape[0]
        self._resampler = None
        if out_rate != self._rate or out_format != "fltp":
            self._resampler = av.AudioResampler(format=out_format, layout=self._layout, rate=out_rate)
        self._chunk = 1024
        self._pos = 0

    @property
    def stream(self) -> av.audio.stream.AudioStream:
        """The output audio stream."""
        return self._stream

    @property
    def total_samples(self) -> int:
        """Number of source samples per channel."""
        return int(self._audio.shape[1])

    def push_until(self, seconds: float) -> list[av.Packet]:
        """Encode whole encoder frames of source samples up to time ``seconds``.

        Args:
            seconds: media time in seconds; samples before it are encoded, except a
                tail shorter than one encoder frame, which waits for the next call.

        Returns:
            The encoded packets, ready to mux.
        """
        end = min(self.total_samples, int(round(seconds * self._rate)))
        packets: list[av.Packet] = []
        while end - self._pos >= self._chunk:
            packets.extend(self._encode_range(self._pos, self._pos + self._chunk))
        return packets

    def finish(self) -> list[av.Packet]:
        """Encode every remaining sample and flush the encoder; returns the last packets."""
        packets: list[av.Packet] = []
        while self._pos < self.total_samples:
            packets.extend(self._encode_range(self._pos, min(self.total_samples, self._pos + self._chunk)))
        if self._resampler is not None:
            for frame in self._resampler.resample(None):
                packets.extend(self._stream.encode(frame))
        packets.extend(self._stream.encode(None))
        return packets

    def _encode_range(self, start: int, stop: int) -> list[av.Packet]:
        block = np.array(self._audio[:, start:stop], dtype=np.float32, order="C", copy=True)
        np.nan_to_num(block, copy=False, nan=0.0, posinf=1.0, neginf=-1.0)
        np.clip(block, -1.0, 1.0, out=block)
        frame = av.AudioFrame.from_ndarray(block, format="fltp", layout=self._layout)
        frame.sample_rate = self._rate
        frame.time_base = Fraction(1, self._rate)
        frame.pts = start
        self._pos = stop
        frames = self._resampler.resample(frame) if self._resampler is not None else [frame]
        packets: list[av.Packet] = []
        for out in frames:
            packets.extend(self._stream.encode(out))
        return packets
