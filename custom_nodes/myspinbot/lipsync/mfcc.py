"""The MFCC front end of SyncNet, as its evaluation code computes it.

``SyncNetInstance.py`` of joonson/syncnet_python (Chung & Zisserman, "Out of time: automated
lip sync in the wild", ACCV 2016 workshops) reads 16 kHz mono 16-bit PCM and calls
``python_speech_features.mfcc(audio, 16000)`` with its defaults; the official model was
trained on those features. The same computation, written here with numpy and scipy:

1. samples at int16 scale (the WAV's integers, not -1..1), pre-emphasis
   ``y[0] = x[0], y[n] = x[n] - 0.97 x[n-1]``;
2. frames of 25 ms (400 samples) every 10 ms (160), the last one zero-padded, rectangular
   window; ``1 + ceil((T - 400) / 160)`` frames (one if ``T <= 400``);
3. power spectrum ``|rfft(frame, 512)|^2 / 512``; frame energy = its sum (0 -> float eps);
4. 26 triangular filters on the mel scale ``2595 log10(1 + f / 700)`` from 0 Hz to 8 kHz,
   edges at FFT bins ``floor(513 f / 16000)``; filter energies (0 -> eps), natural log;
5. orthonormal DCT-II, first 13 coefficients, sinusoidal lifter with L = 22
   (``c_n * (1 + 11 sin(pi n / 22))``);
6. coefficient 0 replaced by the log frame energy.

Output ``[frames, 13]`` float64 at 100 frames per second. Imports no ComfyUI module.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from functools import lru_cache

import numpy as np

from ..errors import InvalidInputError

_EPS = np.finfo(float).eps


@dataclass(frozen=True)
class MfccConfig:
    """MFCC settings (defaults: ``python_speech_features.mfcc`` at 16 kHz, as SyncNet uses).

    Attributes:
        sample_rate: Hz. ``win_s``, ``hop_s``: frame length and step, seconds.
        n_fft: FFT size. ``n_filters``: mel filters. ``n_mfcc``: coefficients kept.
        low_hz, high_hz: filterbank range (``None``: half the sample rate).
        preemphasis: first-order filter coefficient. ``lifter``: cepstral lifter L (0: none).
        append_energy: replace coefficient 0 by the log frame energy.
        int16_scale: what 1.0 in the float input is worth (the model saw int16 samples).
    """

    sample_rate: int = 16000
    win_s: float = 0.025
    hop_s: float = 0.01
    n_fft: int = 512
    n_filters: int = 26
    n_mfcc: int = 13
    low_hz: float = 0.0
    high_hz: float | None = None
    preemphasis: float = 0.97
    lifter: int = 22
    append_energy: bool = True
    int16_scale: float = 32768.0


SYNCNET_MFCC = MfccConfig()
MFCC_FPS = 100  # frames per second at the default hop


def _round_half_up(x: float) -> int:
    return int(Decimal(repr(x)).quantize(Decimal("1"), rounding=ROUND_HALF_UP))


def _hz_to_mel(hz):
    return 2595.0 * np.log10(1.0 + np.asarray(hz, dtype=np.float64) / 700.0)


def _mel_to_hz(mel):
    return 700.0 * (10.0 ** (np.asarray(mel, dtype=np.float64) / 2595.0) - 1.0)


@lru_cache(maxsize=8)
def filterbank(cfg: MfccConfig = SYNCNET_MFCC) -> np.ndarray:
    """The triangular mel filters, float64 ``[n_filters, n_fft // 2 + 1]`` (read-only)."""
    high = cfg.high_hz if cfg.high_hz is not None else cfg.sample_rate / 2
    mels = np.linspace(_hz_to_mel(cfg.low_hz), _hz_to_mel(high), cfg.n_filters + 2)
    edges = np.floor((cfg.n_fft + 1) * _mel_to_hz(mels) / cfg.sample_rate)
    bank = np.zeros((cfg.n_filters, cfg.n_fft // 2 + 1))
    for j in range(cfg.n_filters):
        left, centre, right = edges[j], edges[j + 1], edges[j + 2]
        for i in range(int(left), int(centre)):
            bank[j, i] = (i - left) / (centre - left)
        for i in range(int(centre), int(right)):
            bank[j, i] = (right - i) / (right - centre)
    bank.setflags(write=False)
    return bank


def frame_count(num_samples: int, cfg: MfccConfig = SYNCNET_MFCC) -> int:
    """MFCC frames for ``num_samples`` samples (at least 1)."""
    length, step = _round_half_up(cfg.win_s * cfg.sample_rate), _round_half_up(cfg.hop_s * cfg.sample_rate)
    if num_samples <= length:
        return 1
    return 1 + int(math.ceil((num_samples - length) / step))


def mfcc(samples: np.ndarray, cfg: MfccConfig = SYNCNET_MFCC) -> np.ndarray:
    """MFCCs of mono speech at ``cfg.sample_rate``.

    Args:
        samples: float ``[T]`` in -1..1 (scaled by ``cfg.int16_scale`` and rounded to whole
            int16 steps, as the PCM the authors read) or an int16 ``[T]`` array (used as is).

    Returns:
        float64 ``[frames, n_mfcc]`` (see :func:`frame_count`), 100 frames per second.

    Raises:
        InvalidInputError: not a 1-D array of samples, or non-finite values.
    """
    x = np.asarray(samples)
    if x.ndim != 1 or x.size == 0:
        raise InvalidInputError(f"mfcc needs mono samples [T], got shape {list(x.shape)}")
    if x.dtype == np.int16:
        signal = x.astype(np.float64)
    else:
        if not np.all(np.isfinite(x)):
            raise InvalidInputError("samples contain NaN or infinity")
        signal = np.clip(np.round(x.astype(np.float64) * cfg.int16_scale), -32768, 32767)
    signal = np.append(signal[0], signal[1:] - cfg.preemphasis * signal[:-1])
    length, step = _round_half_up(cfg.win_s * cfg.sample_rate), _round_half_up(cfg.hop_s * cfg.sample_rate)
    n = frame_count(signal.size, cfg)
    padded = np.zeros((n - 1) * step + length)
    padded[:signal.size] = signal
    frames = np.lib.stride_tricks.sliding_window_view(padded, length)[::step][:n]
    power = np.abs(np.fft.rfft(frames, cfg.n_fft)) ** 2 / cfg.n_fft
    energy = power.sum(axis=1)
    energy[energy == 0] = _EPS
    bands = power @ filterbank(cfg).T
    bands[bands == 0] = _EPS
    from scipy.fft import dct  # noqa: PLC0415 - scipy comes with librosa; imported on first use

    cep = dct(np.log(bands), type=2, axis=1, norm="ortho")[:, :cfg.n_mfcc]
    if cfg.lifter > 0:
        cep *= 1.0 + (cfg.lifter / 2.0) * np.sin(np.pi * np.arange(cfg.n_mfcc) / cfg.lifter)
    if cfg.append_energy:
        cep[:, 0] = np.log(energy)
    return cep
