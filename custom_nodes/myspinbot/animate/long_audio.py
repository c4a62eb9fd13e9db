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
- :func:`color_stats` / :func:`match_color` (in ``color_match.py``): per-channel mean / standard deviation colour
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


# Colour matching lives in color_match.py; re-exported for the window loop's callers.
from .color_match import COLOR_SPACES, ColorStats, color_stats, lab_to_rgb, match_color, rgb_to_lab  # noqa: E402,F401
