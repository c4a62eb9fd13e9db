"""Band-limited resampling of a long mono signal in pieces, equal to resampling it whole.

``torchaudio.functional.resample`` (the resampler ComfyUI core's audio encoder node uses)
needs about eight times the input's size in temporary memory: 180 MiB for two minutes of
48 kHz speech. Each output sample depends only on the input samples within the sinc kernel's
half-width of its position, so the signal can be cut into pieces on multiples of the reduced
input period, each resampled with enough real neighbours on both sides, and the outputs
joined: the same samples (to float rounding) with temporary memory bounded by the piece size.
Imports no ComfyUI module.
"""

from __future__ import annotations

import math

import numpy as np
import torch

#: Seconds of input per piece (plus the kernel's margin on each side).
PIECE_S = 8.0


def _kernel_margin(orig: int, new: int, lowpass_filter_width: int, rolloff: float) -> int:
    """Input samples a piece needs on each side: the sinc kernel's half-width (torchaudio's
    ``width``) rounded up to whole input periods, plus one period."""
    width = math.ceil(lowpass_filter_width * orig / (min(orig, new) * rolloff))
    return (math.ceil(width / orig) + 1) * orig


def resample_mono(signal: torch.Tensor, orig_freq: int, new_freq: int, *, piece_s: float = PIECE_S,
                  lowpass_filter_width: int = 6, rolloff: float = 0.99) -> np.ndarray:
    """Resample ``signal`` (float32 ``[T]``, CPU) from ``orig_freq`` to ``new_freq`` Hz.

    Returns float32 ``[ceil(T * new_freq / orig_freq)]``, the output of
    ``torchaudio.functional.resample(signal, orig_freq, new_freq)`` (same sinc-interpolation
    settings) to within float rounding. Temporary memory is about eight times ``piece_s``
    seconds of input, whatever ``T``. Raises ``ValueError`` for a rate that is not positive.
    """
    import torchaudio

    if orig_freq <= 0 or new_freq <= 0:
        raise ValueError(f"sample rates must be positive, got {orig_freq} -> {new_freq}")
    signal = signal.reshape(-1).to(torch.float32)
    if orig_freq == new_freq:
        return signal.numpy().copy()
    g = math.gcd(int(orig_freq), int(new_freq))
    orig, new = int(orig_freq) // g, int(new_freq) // g
    total = math.ceil(signal.shape[0] * new / orig)
    out = np.empty(total, dtype=np.float32)
    step = max(1, int(piece_s * orig_freq) // orig) * orig  # input samples per piece, whole periods
    margin = _kernel_margin(orig, new, lowpass_filter_width, rolloff)
    for start in range(0, signal.shape[0], step):
        lo = max(0, start - margin)
        piece = signal[lo:min(signal.shape[0], start + step + margin)]
        y = torchaudio.functional.resample(piece[None], orig, new, lowpass_filter_width=lowpass_filter_width,
                                           rolloff=rolloff)[0]
        first = (start - lo) // orig * new  # output index of `start` inside the piece's output
        out_lo = start // orig * new
        out_hi = min(total, (start + step) // orig * new)
        out[out_lo:out_hi] = y[first:first + out_hi - out_lo].numpy()
    return out
