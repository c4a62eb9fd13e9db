"""The mel-spectrogram front end of Wav2Lip (shared by models trained on its features).

Settings and steps as in ``audio.py`` and ``hparams.py`` of Rudrabha/Wav2Lip (Prajwal et al.,
"A Lip Sync Expert Is All You Need for Speech to Lip Generation In the Wild", ACM MM 2020),
under the librosa 0.7 those files were run with: 16 kHz mono, pre-emphasis
``y[n] = x[n] - 0.97 x[n-1]``, a centred STFT (reflect padding, Hann window, n_fft 800, hop
200, window 800, complex64), magnitude to 80 Slaney mel bands over 55-7600 Hz, amplitude to
dB floored at -100 dB, minus a 20 dB reference level, then mapped linearly from -100..0 dB to
-4..4 and clipped. SadTalker's audio front end uses the same settings, so it can share
:data:`WAV2LIP_MEL` and :func:`melspectrogram`.

The STFT runs over blocks of frames, so memory beyond the result stays flat in audio length.
Imports no ComfyUI module; librosa is imported on first use.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from ..errors import InvalidInputError

_BLOCK_FRAMES = 2048  # STFT frames computed at once


@dataclass(frozen=True)
class MelConfig:
    """Parameters of the log-mel front end (defaults: Wav2Lip's ``hparams.py``).

    Attributes:
        sample_rate: Hz the waveform must have.
        n_fft, hop_length, win_length: STFT sizes in samples.
        n_mels, fmin, fmax: mel bands and their frequency range in Hz.
        preemphasis: coefficient ``k`` of ``x[n] - k x[n-1]`` (0 disables it).
        ref_level_db: dB subtracted after the amplitude-to-dB step.
        min_level_db: floor of the dB scale (negative).
        max_abs_value: the normalised range is ``-max..max`` (symmetric) or ``0..max``.
        symmetric: symmetric normalisation.
        clip: clip to the normalised range.
    """

    sample_rate: int = 16000
    n_fft: int = 800
    hop_length: int = 200
    win_length: int = 800
    n_mels: int = 80
    fmin: float = 55.0
    fmax: float = 7600.0
    preemphasis: float = 0.97
    ref_level_db: float = 20.0
    min_level_db: float = -100.0
    max_abs_value: float = 4.0
    symmetric: bool = True
    clip: bool = True

    @property
    def frames_per_second(self) -> float:
        """Mel frames per second of audio (80.0 for the defaults)."""
        return self.sample_rate / self.hop_length

    @property
    def floor_value(self) -> float:
        """The normalised value of silence (-4.0 for the defaults)."""
        return -self.max_abs_value if self.symmetric else 0.0


WAV2LIP_MEL = MelConfig()
"""The front end the official Wav2Lip checkpoints were trained on."""

WINDOW_FRAMES = 16
"""Mel frames fed to Wav2Lip per video frame (0.2 s at 80 frames/s)."""


@lru_cache(maxsize=8)
def mel_filterbank(cfg: MelConfig = WAV2LIP_MEL) -> np.ndarray:
    """Slaney-normalised mel filters: float32 ``[n_mels, n_fft // 2 + 1]`` (read-only, cached)."""
    import librosa  # noqa: PLC0415

    if cfg.fmax > cfg.sample_rate / 2:
        raise InvalidInputError(f"fmax {cfg.fmax} Hz is above the Nyquist frequency of {cfg.sample_rate} Hz")
    basis = librosa.filters.mel(sr=cfg.sample_rate, n_fft=cfg.n_fft, n_mels=cfg.n_mels, fmin=cfg.fmin,
                                fmax=cfg.fmax, htk=False, norm="slaney", dtype=np.float32)
    basis.setflags(write=False)
    return basis


def preemphasize(wav: np.ndarray, k: float) -> np.ndarray:
    """``y[0] = x[0]``, ``y[n] = x[n] - k x[n-1]``: float64 ``[T]`` (a copy)."""
    y = np.asarray(wav, dtype=np.float64).copy()
    if k:
        y[1:] -= k * y[:-1]
    return y


def _magnitudes(padded: np.ndarray, cfg: MelConfig, start: int, stop: int) -> np.ndarray:
    """``|STFT|`` float32 ``[n_fft // 2 + 1, stop - start]`` of frames ``start..stop-1``."""
    import librosa  # noqa: PLC0415

    segment = padded[start * cfg.hop_length:(stop - 1) * cfg.hop_length + cfg.n_fft]
    spec = librosa.stft(y=segment, n_fft=cfg.n_fft, hop_length=cfg.hop_length, win_length=cfg.win_length,
                        window="hann", center=False, dtype=np.complex64)
    return np.abs(spec)


def _normalize(db: np.ndarray, cfg: MelConfig) -> np.ndarray:
    scaled = (db - cfg.min_level_db) / (-cfg.min_level_db)
    if cfg.symmetric:
        out = 2 * cfg.max_abs_value * scaled - cfg.max_abs_value
        low = -cfg.max_abs_value
    else:
        out = cfg.max_abs_value * scaled
        low = 0.0
    return np.clip(out, low, cfg.max_abs_value) if cfg.clip else out


def melspectrogram(wav: np.ndarray, cfg: MelConfig = WAV2LIP_MEL) -> np.ndarray:
    """Normalised log-mel spectrogram of a mono waveform.

    Args:
        wav: float ``[T]`` samples in -1..1 at ``cfg.sample_rate`` (16 kHz), ``T >= 1``.
        cfg: front-end parameters.

    Returns:
        float32 ``[n_mels, T // hop_length + 1]`` (``[80, ...]``, 80 frames per second;
        frame ``t`` is centred on sample ``t * hop_length``), values in -4..4.

    Raises:
        InvalidInputError: not 1-D, empty, or holding NaN/inf.
    """
    x = np.asarray(wav)
    if x.ndim != 1 or x.shape[0] == 0:
        raise InvalidInputError(f"the waveform must be a non-empty 1-D array, got shape {x.shape}")
    if not np.all(np.isfinite(x)):
        raise InvalidInputError("the waveform holds NaN or infinite samples")
    y = preemphasize(x, cfg.preemphasis)
    pad = cfg.n_fft // 2
    padded = np.pad(y, pad, mode="reflect")
    frames = 1 + x.shape[0] // cfg.hop_length
    basis = mel_filterbank(cfg)
    floor = np.float64(10.0 ** (cfg.min_level_db / 20.0))  # dB and scaling in float64, as the authors
    out = np.empty((cfg.n_mels, frames), np.float32)
    for start in range(0, frames, _BLOCK_FRAMES):
        stop = min(frames, start + _BLOCK_FRAMES)
        mel = basis @ _magnitudes(padded, cfg, start, stop)
        db = 20.0 * np.log10(np.maximum(floor, mel)) - cfg.ref_level_db
        out[:, start:stop] = _normalize(db, cfg)
    return out


def authors_frame_count(num_mel_frames: int, fps: float, cfg: MelConfig = WAV2LIP_MEL,
                        window: int = WINDOW_FRAMES) -> int:
    """How many video frames the authors' ``inference.py`` makes for ``num_mel_frames``.

    Window ``i`` starts at ``int(i * frames_per_second / fps)``; the authors stop at the first
    window that would run past the end (clamping it to the end). That count leaves the last
    ~0.2 s of audio without frames; :func:`mel_windows` can make more.
    """
    step = cfg.frames_per_second / _check_fps(fps)
    i = 0
    while int(i * step) + window <= num_mel_frames:
        i += 1
    return i + 1


def _check_fps(fps: float) -> float:
    value = float(fps)
    if not math.isfinite(value) or value <= 0:
        raise InvalidInputError(f"fps must be a positive number, got {fps!r}")
    return value


def window_starts(num_mel_frames: int, fps: float, num_frames: int | None = None,
                  cfg: MelConfig = WAV2LIP_MEL, window: int = WINDOW_FRAMES) -> np.ndarray:
    """First mel frame of each video frame's window: int64 ``[num_frames]``.

    ``start[i] = min(int(i * frames_per_second / fps), num_mel_frames - window)`` (at least 0),
    i.e. the authors' windows, every later one clamped to the last full window.

    Args:
        num_mel_frames: frames of the mel spectrogram.
        fps: video frames per second.
        num_frames: windows wanted; ``None`` for :func:`authors_frame_count`.
    """
    if num_frames is None:
        num_frames = authors_frame_count(num_mel_frames, fps, cfg, window)
    step = cfg.frames_per_second / _check_fps(fps)
    starts = np.array([int(i * step) for i in range(int(num_frames))], dtype=np.int64)
    return np.clip(starts, 0, max(0, num_mel_frames - window))


def mel_windows(mel: np.ndarray, fps: float, num_frames: int | None = None,
                cfg: MelConfig = WAV2LIP_MEL, window: int = WINDOW_FRAMES) -> np.ndarray:
    """Cut a mel spectrogram into one window per video frame.

    Args:
        mel: float32 ``[n_mels, M]`` from :func:`melspectrogram`.
        fps: video frames per second.
        num_frames: windows wanted (see :func:`window_starts`); ``None``: the authors' count.
        window: mel frames per window (16).

    Returns:
        float32 ``[num_frames, n_mels, window]`` (a copy). A spectrogram shorter than
        ``window`` is first padded on the right with silence (``cfg.floor_value``); the
        authors' code fails on such short audio.

    Raises:
        InvalidInputError: ``mel`` is not 2-D, or ``fps`` is not positive.
    """
    m = np.asarray(mel, dtype=np.float32)
    if m.ndim != 2:
        raise InvalidInputError(f"mel must be [n_mels, frames], got shape {m.shape}")
    if m.shape[1] < window:
        m = np.pad(m, ((0, 0), (0, window - m.shape[1])), constant_values=cfg.floor_value)
    starts = window_starts(m.shape[1], fps, num_frames, cfg, window)
    index = starts[:, None] + np.arange(window)[None, :]
    return np.ascontiguousarray(m[:, index].transpose(1, 0, 2))
