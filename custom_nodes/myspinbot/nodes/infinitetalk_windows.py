"""The InfiniteTalk long-audio loop: window after window of core's one-window InfiniteTalk.

Per window it encodes that window's audio with core's ``AudioEncoderEncode``, builds
conditioning / latent / patched model with core's ``WanInfiniteTalkToVideo.execute`` (chained
through its ``previous_frames``), samples (:mod:`.infinitetalk_sampling`) and decodes with core's
``VAEDecode``. The decoded frames are colour-matched to the first window and written into the
MP4 at once, so memory does not grow with the clip; the video is as long as the audio (to within
one frame) and carries the original audio. Window arithmetic, audio slicing and colour maths
live in ``animate/long_audio.py``.
"""

from __future__ import annotations

import ctypes
import functools
import gc
import logging
import math
import sys
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

import comfy.model_management

from ..animate.chunked_resample import resample_mono
from ..animate.long_audio import (AUDIO_CONTEXT_FRAMES, audio_span, color_stats, encoder_feature_count,
                                  encoder_sample_rate, frames_for_audio, match_color, plan_windows, slice_audio)
from ..errors import InvalidInputError
from ..video import Mp4Writer
from ._progress import progress_callback
from .infinitetalk_sampling import sample_window

log = logging.getLogger("myspinbot")

#: Audio the encoder sees on each side of a window, in seconds (its attention is global over
#: what it is given, so a window's features depend on some speech around it).
ENCODER_MARGIN_S = 2.0
#: The wav2vec2 sample rate core's audio encoder works at.
ENCODER_RATE = 16000


@dataclass(frozen=True)
class TalkModels:
    """What every window is made from (ComfyUI objects): the Wan model and InfiniteTalk patch, the
    VAE, text conditionings, the start image ``[1, H, W, 3]``, the audio encoder, optional CLIP vision."""

    model: Any
    model_patch: Any
    vae: Any
    positive: list
    negative: list
    start_image: torch.Tensor
    audio_encoder: Any
    clip_vision_output: Any = None


@dataclass(frozen=True)
class WindowSettings:
    """How each window is sampled: window i uses ``seed + i``; sizes in pixels, lengths in frames
    (``window_length`` and ``motion_frames`` are 4k + 1); ``color_match`` a colour space or "off"."""

    steps: int
    cfg: float
    audio_cfg: float
    sampler_name: str
    scheduler: str
    seed: int
    width: int
    height: int
    fps: int
    window_length: int
    motion_frames: int
    audio_scale: float
    color_match: str


@dataclass(frozen=True)
class Rendered:
    """The loop's result: the last ``motion_frames`` frames (float32 ``[n, H, W, 3]``), the number
    of windows, of frames written, and the audio's length in seconds."""

    last_frames: np.ndarray
    windows: int
    frames: int
    audio_seconds: float


def render(models: TalkModels, settings: WindowSettings, audio: dict, path: str) -> Rendered:
    """Animate ``models.start_image`` to ``audio`` (ComfyUI AUDIO) into the MP4 at ``path``.

    Raises ``InvalidInputError`` for unusable audio, ComfyUI's ``InterruptProcessingException``
    on cancel, ``RuntimeError`` when core's nodes return what the loop does not expect."""
    mono, mux_audio, rate = mono_audio(audio)
    total = frames_for_audio(mono.shape[0], rate, settings.fps)
    windows = plan_windows(total, settings.window_length, settings.motion_frames)
    enc_rate = encoder_sample_rate(settings.fps)
    speech = resample_mono(mono, rate, enc_rate)  # in pieces: whole-clip resampling needs 8x the audio
    log.info("myspinbot InfiniteTalk: %.2f s of audio -> %d frames at %d fps in %d windows", mono.shape[0] / rate,
             total, settings.fps, len(windows))
    last = _run_windows(windows, speech, mux_audio, rate, path, models, settings,
                        margin_frames=max(1, math.ceil(ENCODER_MARGIN_S * settings.fps)))
    return Rendered(last, len(windows), total, mono.shape[0] / rate)


def mono_audio(audio: dict) -> tuple[torch.Tensor, np.ndarray, int]:
    """AUDIO -> (mono float32 ``[T]`` tensor, float32 ``[C, T]`` array for muxing (C <= 2), rate)."""
    waveform = audio["waveform"]
    if waveform.ndim != 3 or waveform.shape[-1] == 0:
        raise InvalidInputError(f"audio must be a non-empty [batch, channels, samples] waveform, got {tuple(waveform.shape)}")
    rate = int(audio["sample_rate"])
    wave = waveform[0].detach().to("cpu", torch.float32)
    mono = wave[0] if wave.shape[0] == 1 else wave.mean(dim=0)
    mux = wave if wave.shape[0] <= 2 else mono[None]
    return mono, np.ascontiguousarray(mux.numpy()), rate


def encode_window_audio(audio_encoder, speech: np.ndarray, span) -> dict:
    """Core's AudioEncoderEncode on the window's audio, cut to the features of ``span``
    (``speech``: mono float32 at ``encoder_sample_rate(fps)``)."""
    from comfy_extras.nodes_audio_encoder import AudioEncoderEncode

    chunk = torch.from_numpy(slice_audio(speech, span))[None, None]
    # ``speech`` is at 640 * fps Hz, so one frame = 640 samples = 2 wav2vec2 features; it is
    # handed over as 16 kHz audio (true at 25 fps), which keeps core from resampling it.
    encoded = AudioEncoderEncode.execute(audio_encoder, {"waveform": chunk, "sample_rate": ENCODER_RATE})[0]
    layers = encoded["encoded_audio_all_layers"]
    have = layers[0].shape[1]
    expected = encoder_feature_count(chunk.shape[-1])
    if have < span.feature_offset + span.feature_count:
        raise RuntimeError(f"audio encoder made {have} features (expected {expected}); "
                           f"need {span.feature_offset + span.feature_count}")
    lo, hi = span.feature_offset, span.feature_offset + span.feature_count
    return {"encoded_audio": encoded["encoded_audio"][:, lo:hi],
            "encoded_audio_all_layers": [layer[:, lo:hi] for layer in layers],
            "audio_samples": span.feature_count * (ENCODER_RATE // 50)}


def unload(*patchers) -> None:
    """Unload the given model patchers (and their clones / attached models) from every device."""
    for patcher in patchers:
        if patcher is not None:
            comfy.model_management.unload_model_and_clones(patcher, all_devices=True)
    comfy.model_management.soft_empty_cache()


def _to_uint8(frames: np.ndarray) -> np.ndarray:
    return (np.clip(frames, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


@functools.cache
def _malloc_trim():
    """glibc's ``malloc_trim`` (gives freed heap pages back to the OS), or ``None`` elsewhere."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        return ctypes.CDLL("libc.so.6").malloc_trim
    except (OSError, AttributeError):
        return None


def _release_window_memory() -> None:
    """Between windows: collect the window's reference cycles (patched model clones, wrappers)
    and return freed heap to the OS, so resident memory stays level over many windows."""
    gc.collect()
    trim = _malloc_trim()
    if trim is not None:
        trim(0)


def _run_windows(windows, speech: np.ndarray, mux_audio: np.ndarray, rate: int, path: str, m: TalkModels,
                 s: WindowSettings, *, margin_frames: int) -> np.ndarray:
    """The window loop; writes ``path`` and returns the last ``motion_frames`` frames (float32)."""
    import nodes as comfy_nodes
    from comfy_extras.nodes_wan import WanInfiniteTalkToVideo

    total_steps = len(windows) * s.steps
    on_progress = progress_callback(total_steps)
    context = s.motion_frames + AUDIO_CONTEXT_FRAMES  # frames kept for the next window
    tail: np.ndarray | None = None  # last `context` frames of the video, float32 [n, H, W, 3]
    reference = None
    with Mp4Writer(path, s.width, s.height, s.fps, mux_audio, rate) as writer:
        for window in windows:
            comfy.model_management.throw_exception_if_processing_interrupted()
            extend = window.overlap > 0
            pre = AUDIO_CONTEXT_FRAMES if extend else 0
            span = audio_span(window, pre=pre, margin_frames=margin_frames, available=speech.shape[0])
            features = encode_window_audio(m.audio_encoder, speech, span)
            # With `previous_frames` of motion_frames + pre frames, core's audio offset is
            # `pre`: feature `pre` (our span starts `pre` frames early) = the window's first frame.
            previous = torch.from_numpy(tail[-(s.motion_frames + pre):]) if extend else None
            patched, pos, neg, latent, trim = WanInfiniteTalkToVideo.execute(
                {"mode": "single_speaker"}, m.model, m.model_patch, m.positive, m.negative, m.vae, s.width, s.height,
                window.length, features, s.motion_frames, start_image=m.start_image, previous_frames=previous,
                audio_scale=s.audio_scale, clip_vision_output=m.clip_vision_output).result
            if int(trim) != window.overlap:
                raise RuntimeError(f"core trims {trim} frames, expected {window.overlap}")
            base = window.index * s.steps

            def on_step(step, _x0, _x, _total, base=base):
                on_progress(min(total_steps, base + step + 1), total_steps)

            samples = sample_window(patched, pos, neg, latent, steps=s.steps, cfg=s.cfg, audio_cfg=s.audio_cfg,
                                    sampler_name=s.sampler_name, scheduler=s.scheduler,
                                    seed=(s.seed + window.index) % 2**64, callback=on_step)
            del patched, pos, neg, latent
            decoded = comfy_nodes.VAEDecode().decode(m.vae, {"samples": samples})[0]
            del samples
            if decoded.shape[0] < window.overlap + window.keep:
                raise RuntimeError(f"VAE decoded {decoded.shape[0]} frames for a {window.length}-frame window")
            frames = decoded.detach().to("cpu", torch.float32).numpy()
            del decoded
            new = frames[window.overlap:window.overlap + window.keep]
            if s.color_match != "off":
                if reference is None:
                    reference = color_stats(frames, s.color_match)
                else:
                    new = match_color(new, reference, color_stats(new, s.color_match))
            for frame in _to_uint8(new):
                writer.write(frame)
            tail = new[-context:] if tail is None else np.concatenate([tail, new])[-context:]
            on_progress(base + s.steps, total_steps)
            log.info("myspinbot InfiniteTalk: window %d/%d done (frames %d-%d, %d new)", window.index + 1, len(windows),
                     window.first_new, window.end - 1, window.keep)
            del frames, new
            _release_window_memory()
        if writer.frames_written != windows[-1].end:
            raise RuntimeError(f"wrote {writer.frames_written} frames, planned {windows[-1].end}")
    return np.ascontiguousarray(tail[-s.motion_frames:])
