"""Long-audio helpers for windowed talking-head video models (InfiniteTalk on Wan).

A model that makes a fixed number of frames per call (81 for InfiniteTalk) covers speech of
any length by chaining windows: every window after the first starts with ``motion`` frames
copied from the end of the video so far and adds ``length - motion`` new ones. This module
holds the arithmetic and the pixel maths of that loop, with no ComfyUI and no torch import:

- :func:`frames_for_audio` / :func:`plan_windows`: how many frames the video needs so it
  covers the whole audio (``ceil(seconds * fps)``), and which windows make them, with the
  trailing window sized (``4k + 1`` frames, Wan's rule) to the frames still missing and the
  surplus it makes trimmed.
- :func:`audio_span` / :func:`slice_audio`: which stretch of the encoder-rate audio each window
  feeds to the audio encoder (the window, a few frames of context each side and a margin of
  real audio for the encoder's own context; zeros past the end), and which encoder features
  (two per video frame) line up with the window's first frame.
- :func:`color_stats` / :func:`match_color`: per-channel mean / standard deviation colour
  transfer (in CIE L*a*b* or RGB) so that later windows keep the first window's colours.

Audio/frame alignment: the audio encoder (wav2vec2) makes one feature per 320 input samples at
16 kHz, 50 per second; the video model reads them resampled to 25 per second, one per frame.
Feeding the encoder audio at ``640 * fps`` samples per second (16 kHz at 25 fps) therefore
puts exactly two features - 640 samples - on every video frame, whatever the frame rate.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction

import numpy as np

from ..errors import InvalidInputError

#: Encoder-input samples per wav2vec2 feature (16 kHz / 50 features per second).
FEATURE_HOP = 320
#: Encoder-input samples per video frame: two features per frame.
SAMPLES_PER_FRAME = 2 * FEATURE_HOP
#: Input samples one wav2vec2 feature reads (its convolution stack's receptive field).
_RECEPTIVE_FIELD = 400
#: Video frames of audio the model reads on each side of a frame (core's 5-frame audio window).
AUDIO_CONTEXT_FRAMES = 2
#: Temporal compression of the Wan VAE: windows hold ``4k + 1`` frames.
TIME_STRIDE = 4


def encoder_sample_rate(fps: float) -> int:
    """Sample rate to resample speech to before the audio encoder, so that one video frame is
    exactly :data:`SAMPLES_PER_FRAME` samples (16000 at 25 fps).

    Raises:
        InvalidInputError: ``fps`` is not positive or ``640 * fps`` is not a whole number.
    """
    try:
        rate = Fraction(fps).limit_denominator(1001) * SAMPLES_PER_FRAME
    except (TypeError, ValueError, OverflowError):
        rate = Fraction(0)
    if rate <= 0 or rate.denominator != 1:
        raise InvalidInputError(f"fps must be positive and 640 * fps a whole number (e.g. 24, 25, 30), got {fps!r}")
    return int(rate)


def frames_for_audio(num_samples: int, sample_rate: int, fps: float) -> int:
    """Frames a video at ``fps`` needs to cover ``num_samples`` of audio: ``ceil(seconds * fps)``
    (at least 1), computed exactly. The video then lasts at most one frame longer than the audio."""
    if num_samples <= 0:
        raise InvalidInputError("audio has no samples")
    if sample_rate <= 0 or fps <= 0:
        raise InvalidInputError(f"sample rate and fps must be positive, got {sample_rate!r} and {fps!r}")
    exact = Fraction(int(num_samples)) * Fraction(fps).limit_denominator(1001) / int(sample_rate)
    return max(1, math.ceil(exact))


def round_up_frames(n: int) -> int:
    """Smallest frame count ``>= n`` of the form ``4k + 1`` (Wan's VAE: 1 + 4 per latent)."""
    n = max(1, int(n))
    return n + (-(n - 1)) % TIME_STRIDE


def check_window(window_length: int, motion_frames: int) -> None:
    """Raise ``InvalidInputError`` unless both counts are ``4k + 1`` and a window adds at least
    one latent (4 frames) beyond its motion frames."""
    if window_length < 1 or (window_length - 1) % TIME_STRIDE:
        raise InvalidInputError(f"window length must be 4k + 1 frames (e.g. 33, 81), got {window_length}")
    if motion_frames < 1 or (motion_frames - 1) % TIME_STRIDE:
        raise InvalidInputError(f"motion frames must be 4k + 1 (e.g. 1, 5, 9), got {motion_frames}")
    if window_length < motion_frames + TIME_STRIDE:
        raise InvalidInputError(
            f"window length {window_length} leaves no new frames after {motion_frames} motion frames: "
            f"use at least {motion_frames + TIME_STRIDE}")


@dataclass(frozen=True)
class Window:
    """One model call. Frame numbers are indices into the final video.

    ``start``: first frame the window covers; ``length``: frames the model makes (``4k + 1``);
    ``overlap``: leading frames that repeat the video so far (the motion frames; 0 for the
    first window); ``keep``: new frames taken from it, ``length - overlap`` except in a
    trailing window that makes a few more than the audio needs.
    """

    index: int
    start: int
    length: int
    overlap: int
    keep: int

    @property
    def first_new(self) -> int:
        """Video index of the first frame this window adds."""
        return self.start + self.overlap

    @property
    def end(self) -> int:
        """One past the last video frame this window adds."""
        return self.first_new + self.keep

    @property
    def surplus(self) -> int:
        """Frames made past the end of the audio and dropped."""
        return self.length - self.overlap - self.keep


def plan_windows(total_frames: int, window_length: int = 81, motion_frames: int = 9) -> list[Window]:
    """Windows that make exactly ``total_frames`` frames.

    The first window makes ``window_length`` frames (fewer, rounded up to ``4k + 1``, when the
    audio is shorter); each later one re-uses the last ``motion_frames`` frames and adds
    ``window_length - motion_frames``; the trailing one is only as long as needed (rounded up to
    ``4k + 1``) and its surplus frames are dropped.
    """
    check_window(window_length, motion_frames)
    if total_frames < 1:
        raise InvalidInputError(f"need at least one frame, got {total_frames}")
    first = min(window_length, round_up_frames(total_frames))
    windows = [Window(0, 0, first, 0, min(first, total_frames))]
    done = windows[0].keep
    while done < total_frames:
        missing = total_frames - done
        length = min(window_length, round_up_frames(missing + motion_frames))
        keep = min(length - motion_frames, missing)
        windows.append(Window(len(windows), done - motion_frames, length, motion_frames, keep))
        done += keep
    return windows


@dataclass(frozen=True)
class AudioSpan:
    """The audio a window hands to the encoder, in encoder-rate samples (see
    :func:`encoder_sample_rate`), and where its features sit.

    ``first_frame``: video frame of the first per-frame feature handed to the model (the
    window's start minus ``pre`` context frames); ``frames``: per-frame features handed over;
    ``sample_start`` / ``sample_stop``: the audio to encode (may run past the end of the audio:
    :func:`slice_audio` pads zeros); ``feature_offset`` / ``feature_count``: the slice of the
    encoder's 50-per-second output (2 per frame) that covers ``frames`` frames from ``first_frame``.
    """

    first_frame: int
    frames: int
    sample_start: int
    sample_stop: int
    feature_offset: int
    feature_count: int


def audio_span(window: Window, *, pre: int, post: int = AUDIO_CONTEXT_FRAMES, margin_frames: int = 50,
               available: int | None = None) -> AudioSpan:
    """Audio to encode for ``window``.

    Args:
        window: from :func:`plan_windows`.
        pre: context frames before the window start that the model indexes (core reads frames
            ``pre - 2 .. pre - 1`` of the features as the context of the window's first frame).
        post: context frames after the window end (2: core's 5-frame audio window).
        margin_frames: extra audio on each side, in frames, so the encoder sees the speech
            around the window (wav2vec2's attention and its first layer's group norm span all it
            is given); 50 = 2 s at 25 fps.
        available: encoder-rate samples of the whole audio. When given, the margin stops at the
            end of the audio, so only the frames the window really needs past the end (a trailing
            window's surplus and context) are padded with silence: zeros change the statistics of
            the whole chunk.
    """
    if pre < 0 or post < 0 or margin_frames < 1:
        raise InvalidInputError("pre/post must be >= 0 and margin_frames >= 1")
    first = window.start - pre
    if first < 0:
        raise InvalidInputError(f"window {window.index} starts at frame {window.start}: no room for {pre} context frames")
    frames = pre + window.length + post
    start = max(0, first - margin_frames) * SAMPLES_PER_FRAME
    stop = (first + frames + margin_frames) * SAMPLES_PER_FRAME
    if available is not None:
        # the last feature needed starts 320 samples before the end of its frame and reads 400
        needed = (first + frames) * SAMPLES_PER_FRAME + (_RECEPTIVE_FIELD - FEATURE_HOP)
        stop = max(needed, min(stop, int(available)))
    offset = (first * SAMPLES_PER_FRAME - start) // FEATURE_HOP
    return AudioSpan(first, frames, start, stop, offset, 2 * frames)


def encoder_feature_count(num_samples: int) -> int:
    """Features wav2vec2's convolution stack makes from ``num_samples`` samples
    (receptive field 400, hop 320)."""
    return 0 if num_samples < _RECEPTIVE_FIELD else (num_samples - _RECEPTIVE_FIELD) // FEATURE_HOP + 1


def slice_audio(samples: np.ndarray, span: AudioSpan) -> np.ndarray:
    """``float32 [n]`` chunk ``samples[span.sample_start:span.sample_stop]`` of a mono
    encoder-rate signal, zero-padded where it runs past the end."""
    mono = np.asarray(samples, dtype=np.float32).reshape(-1)
    out = np.zeros(span.sample_stop - span.sample_start, dtype=np.float32)
    lo, hi = span.sample_start, min(span.sample_stop, mono.shape[0])
    if hi > lo:
        out[: hi - lo] = mono[lo:hi]
    return out


# --------------------------------------------------------------------------- colour
_SRGB_TO_XYZ = np.array([[0.4124564, 0.3575761, 0.1804375],
                         [0.2126729, 0.7151522, 0.0721750],
                         [0.0193339, 0.1191920, 0.9503041]], dtype=np.float32)
_XYZ_TO_SRGB = np.linalg.inv(_SRGB_TO_XYZ.astype(np.float64)).astype(np.float32)
_WHITE_D65 = np.array([0.95047, 1.0, 1.08883], dtype=np.float32)
_EPS = 216.0 / 24389.0
_KAPPA = 24389.0 / 27.0


def rgb_to_lab(rgb: np.ndarray) -> np.ndarray:
    """sRGB (``[..., 3]``, 0..1) to CIE L*a*b* (D65): L in 0..100, a/b roughly -128..127."""
    c = np.clip(np.asarray(rgb, dtype=np.float32), 0.0, 1.0)
    linear = np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)
    xyz = (linear @ _SRGB_TO_XYZ.T) / _WHITE_D65
    f = np.where(xyz > _EPS, np.cbrt(xyz), (_KAPPA * xyz + 16.0) / 116.0)
    lab = np.empty_like(f)
    lab[..., 0] = 116.0 * f[..., 1] - 16.0
    lab[..., 1] = 500.0 * (f[..., 0] - f[..., 1])
    lab[..., 2] = 200.0 * (f[..., 1] - f[..., 2])
    return lab


def lab_to_rgb(lab: np.ndarray) -> np.ndarray:
    """Inverse of :func:`rgb_to_lab`; the result is clipped to 0..1."""
    lab = np.asarray(lab, dtype=np.float32)
    fy = (lab[..., 0] + 16.0) / 116.0
    fx = fy + lab[..., 1] / 500.0
    fz = fy - lab[..., 2] / 200.0
    f = np.stack([fx, fy, fz], axis=-1)
    f3 = f ** 3
    xyz = np.where(f3 > _EPS, f3, (116.0 * f - 16.0) / _KAPPA) * _WHITE_D65
    linear = np.clip(xyz @ _XYZ_TO_SRGB.T, 0.0, 1.0)
    rgb = np.where(linear <= 0.0031308, linear * 12.92, 1.055 * np.power(linear, 1.0 / 2.4) - 0.055)
    return np.clip(rgb, 0.0, 1.0).astype(np.float32)


COLOR_SPACES = ("lab", "rgb")


@dataclass(frozen=True)
class ColorStats:
    """Per-channel mean and standard deviation of some frames in ``space`` ("lab" or "rgb")."""

    space: str
    mean: np.ndarray
    std: np.ndarray


def _to_space(frames: np.ndarray, space: str) -> np.ndarray:
    if space == "lab":
        return rgb_to_lab(frames)
    if space == "rgb":
        return np.asarray(frames, dtype=np.float32)
    raise InvalidInputError(f"colour space must be one of {COLOR_SPACES}, got {space!r}")


def color_stats(frames: np.ndarray, space: str = "lab", max_pixels: int = 1 << 20) -> ColorStats:
    """Statistics of ``frames`` (``float [N, H, W, 3]`` or ``[H, W, 3]`` in 0..1).

    At most about ``max_pixels`` pixels are read (an even sub-grid of frames and rows/columns),
    which is plenty for two moments and keeps this cheap on large windows."""
    arr = np.asarray(frames)
    if arr.ndim == 3:
        arr = arr[np.newaxis]
    if arr.ndim != 4 or arr.shape[-1] != 3 or arr.shape[0] == 0:
        raise InvalidInputError(f"frames must be [N, H, W, 3], got shape {arr.shape}")
    n, h, w, _ = arr.shape
    per_frame = max(1, max_pixels // (h * w))
    sub = arr[:: math.ceil(n / per_frame)] if n > per_frame else arr
    if h * w > max_pixels:
        step = math.ceil(math.sqrt(h * w / max_pixels))
        sub = sub[:, ::step, ::step]
    values = _to_space(sub, space).reshape(-1, 3).astype(np.float64)
    return ColorStats(space, values.mean(axis=0).astype(np.float32), values.std(axis=0).astype(np.float32))


def match_color(
    frames: np.ndarray,
    reference: ColorStats,
    current: ColorStats | None = None,
    *,
    strength: float = 1.0,
    max_gain: float = 2.0,
    chunk: int = 8,
) -> np.ndarray:
    """Shift and scale each channel of ``frames`` so their statistics become ``reference``'s.

    ``x' = (x - mean_cur) * clip(std_ref / std_cur, 1/max_gain, max_gain) + mean_ref`` in the
    reference's colour space, blended with the input by ``strength`` (0 = unchanged). One
    transform for all ``frames`` (``current`` = their stats, computed if not given), so motion
    inside them is kept. Works ``chunk`` frames at a time; returns ``float32`` in 0..1.
    """
    arr = np.asarray(frames, dtype=np.float32)
    single = arr.ndim == 3
    if single:
        arr = arr[np.newaxis]
    if current is None:
        current = color_stats(arr, reference.space)
    if current.space != reference.space:
        raise InvalidInputError(f"colour statistics in different spaces: {current.space} vs {reference.space}")
    gain = np.clip(reference.std / np.maximum(current.std, 1e-6), 1.0 / max_gain, max_gain).astype(np.float32)
    shift = (reference.mean - current.mean * gain).astype(np.float32)
    strength = float(np.clip(strength, 0.0, 1.0))
    out = np.empty_like(arr)
    for i in range(0, arr.shape[0], max(1, chunk)):
        part = arr[i:i + chunk]
        moved = _to_space(part, reference.space) * gain + shift
        moved = lab_to_rgb(moved) if reference.space == "lab" else np.clip(moved, 0.0, 1.0)
        out[i:i + chunk] = part + strength * (moved - part) if strength < 1.0 else moved
    return out[0] if single else out
