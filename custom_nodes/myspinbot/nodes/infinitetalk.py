"""Node "MySpinBot InfiniteTalk": portrait + speech of any length -> lip-synced Wan video (MP4).

ComfyUI core implements InfiniteTalk for one window (``WanInfiniteTalkToVideo``: one call makes
up to 81 frames). This node owns the long-audio loop around it and calls core for everything
model-related: per window it encodes that window's audio with core's ``AudioEncoderEncode``,
builds conditioning / latent / patched model with core's ``WanInfiniteTalkToVideo.execute``
(chained through its ``previous_frames``), samples with core's samplers (``comfy.sample.sample``,
or core's ``Guider_DualCFG`` when an audio CFG is set) and decodes with core's ``VAEDecode``.
The decoded frames are colour-matched to the first window and encoded into the MP4 at once, so
memory does not grow with the clip; the video is as long as the audio (to within one frame)
and carries the original audio.

Window arithmetic, audio slicing and colour maths live in ``animate/long_audio.py``.
"""

from __future__ import annotations

import gc
import logging
import math
import os
import sys
import uuid

import numpy as np
import torch
import torchaudio

import comfy.model_management
import comfy.sample
import comfy.samplers
import comfy.utils
import folder_paths
from comfy_api.latest import InputImpl, io

from ..animate.long_audio import (
    AUDIO_CONTEXT_FRAMES,
    COLOR_SPACES,
    audio_span,
    check_window,
    color_stats,
    encoder_feature_count,
    encoder_sample_rate,
    frames_for_audio,
    match_color,
    plan_windows,
    slice_audio,
)
from ..errors import InvalidInputError
from ..video import Mp4Writer
from ._progress import progress_callback

log = logging.getLogger("myspinbot")

#: Audio the encoder sees on each side of a window, in seconds (its attention is global over
#: what it is given, so a window's features depend on some speech around it).
ENCODER_MARGIN_S = 2.0
#: The wav2vec2 sample rate core's audio encoder works at.
ENCODER_RATE = 16000


class _PerItemAudioPatch:
    """Wraps core's InfiniteTalk cross-attention patch (``MultiTalkCrossAttnPatch``).

    Core's patch handles one batch item (its audio tokens are reshaped with batch 1), but the
    sampler batches cond and uncond together when memory allows, so with CFG > 1 it fails. This
    calls it once per batch item and leaves out the audio for the conds whose index (in the
    sampler's ``cond_or_uncond`` list) is in ``no_audio`` - the "no audio" pass of audio CFG.
    """

    def __init__(self, inner, no_audio: tuple[int, ...] = ()):
        self.inner = inner
        self.no_audio = frozenset(no_audio)

    def __call__(self, kwargs):
        x = kwargs["x"]
        options = kwargs.get("transformer_options", {})
        conds = list(options.get("cond_or_uncond") or [])
        if x.shape[0] == 1 and not (conds and conds[0] in self.no_audio):
            return self.inner(kwargs)
        per = x.shape[0] // len(conds) if conds and x.shape[0] % len(conds) == 0 else 1
        parts = []
        for i in range(x.shape[0]):
            cond = conds[i // per] if conds and i // per < len(conds) else None
            item = x[i:i + 1]
            parts.append(item if cond in self.no_audio else self.inner({**kwargs, "x": item}))
        return torch.cat(parts, dim=0)

    def models(self):
        return self.inner.models() if hasattr(self.inner, "models") else []


def _wrap_audio_patch(model, no_audio: tuple[int, ...]) -> None:
    """Replace core's InfiniteTalk ``attn2_patch`` entries of ``model`` (a clone made by core) with
    :class:`_PerItemAudioPatch` wrappers."""
    from comfy.ldm.wan.model_multitalk import MultiTalkCrossAttnPatch

    patches = model.model_options.setdefault("transformer_options", {}).setdefault("patches", {})
    found = False
    wrapped = []
    for p in patches.get("attn2_patch", []):
        if isinstance(p, MultiTalkCrossAttnPatch):
            p, found = _PerItemAudioPatch(p, no_audio), True
        wrapped.append(p)
    if not found:
        raise RuntimeError("core's WanInfiniteTalkToVideo did not add its audio cross-attention patch")
    patches["attn2_patch"] = wrapped


#: Tokens of a zero text conditioning: core's umt5 tokenizer for Wan pads every prompt to 512.
ZERO_TEXT_TOKENS = 512


def zero_text_conditioning(model, tokens: int = ZERO_TEXT_TOKENS) -> list:
    """CONDITIONING of zeros ``[1, tokens, text_dim]``, ``text_dim`` read from the Wan model (its
    ``text_embedding`` takes umt5-xxl features, 4096 wide): the conditioning to use without a text
    encoder (what core's ConditioningZeroOut makes of an encoded prompt, minus the encoder)."""
    dm = model.model.diffusion_model
    text_dim = getattr(dm, "text_dim", None)
    if text_dim is None:
        text_dim = dm.text_embedding[0].in_features
    return [[torch.zeros(1, tokens, int(text_dim)), {}]]


def _mono(audio: dict) -> tuple[torch.Tensor, np.ndarray, int]:
    """AUDIO -> (mono float32 ``[T]`` tensor, float32 ``[C, T]`` array for muxing (C <= 2), rate)."""
    waveform = audio["waveform"]
    if waveform.ndim != 3 or waveform.shape[-1] == 0:
        raise InvalidInputError(f"audio must be a non-empty [batch, channels, samples] waveform, got {tuple(waveform.shape)}")
    rate = int(audio["sample_rate"])
    wave = waveform[0].detach().to("cpu", torch.float32)
    mono = wave.mean(dim=0)
    mux = wave if wave.shape[0] <= 2 else mono[None]
    return mono, np.ascontiguousarray(mux.numpy()), rate


def _to_uint8(frames: np.ndarray) -> np.ndarray:
    return (np.clip(frames, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def _malloc_trim():
    """glibc's ``malloc_trim`` (gives freed heap pages back to the OS), or ``None`` elsewhere."""
    try:
        import ctypes

        return ctypes.CDLL("libc.so.6").malloc_trim
    except (OSError, AttributeError):
        return None


_MALLOC_TRIM = _malloc_trim() if sys.platform.startswith("linux") else None


def _release_window_memory() -> None:
    """Between windows: collect the window's reference cycles (patched model clones, wrappers)
    and return freed heap to the OS, so resident memory stays level over many windows."""
    gc.collect()
    if _MALLOC_TRIM is not None:
        _MALLOC_TRIM(0)


def _unload(*patchers) -> None:
    """Unload the given model patchers (and their clones / attached models) from every device."""
    for patcher in patchers:
        if patcher is not None:
            comfy.model_management.unload_model_and_clones(patcher, all_devices=True)
    comfy.model_management.soft_empty_cache()


class InfiniteTalk(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="MySpinBotInfiniteTalk",
            display_name="MySpinBot InfiniteTalk",
            category="MySpinBot/animate",
            description="Lip-synced talking-head video from a portrait and speech of any length with "
            "InfiniteTalk on Wan2.1 I2V (core's WanInfiniteTalkToVideo, window after window). Each "
            "window continues from the last frames of the one before, its frames go straight into "
            "the MP4 (memory stays flat), colours are kept to the first window's, and the video "
            "lasts as long as the audio, which is muxed in.",
            inputs=[
                io.Model.Input("model", tooltip="Wan2.1 I2V diffusion model (Load Diffusion Model)."),
                io.ModelPatch.Input("model_patch", tooltip="InfiniteTalk patch (Load Model Patch)."),
                io.Vae.Input("vae", tooltip="Wan2.1 VAE."),
                io.Conditioning.Input("positive", optional=True,
                                      tooltip="Text conditioning (umt5) describing the talking person. Left "
                                      "unconnected: zero conditioning of the model's text width (no text encoder)."),
                io.Conditioning.Input("negative", optional=True,
                                      tooltip="Negative text conditioning. Left unconnected: zero conditioning."),
                io.Image.Input("portrait", tooltip="Start image; the first image of a batch is used."),
                io.Audio.Input("audio", tooltip="The speech; the video lasts as long as it."),
                io.AudioEncoder.Input("audio_encoder", tooltip="wav2vec2 audio encoder (Load Audio Encoder)."),
                io.Int.Input("steps", default=20, min=1, max=200, tooltip="Sampling steps per window."),
                io.Float.Input("cfg", default=5.0, min=0.0, max=30.0, step=0.1, round=0.01,
                               tooltip="Text guidance. 1 disables it (e.g. with a distilled LoRA)."),
                io.Float.Input("audio_cfg", default=4.0, min=0.0, max=30.0, step=0.1, round=0.01,
                               tooltip="Audio guidance: how strongly the lips follow the speech (an extra "
                               "pass without audio per step). 1 disables it."),
                io.Combo.Input("sampler_name", options=comfy.samplers.KSampler.SAMPLERS, default="euler"),
                io.Combo.Input("scheduler", options=comfy.samplers.KSampler.SCHEDULERS, default="simple"),
                io.Int.Input("seed", default=0, min=0, max=0xFFFFFFFFFFFFFFFF, control_after_generate=True,
                             tooltip="Noise seed; window i uses seed + i."),
                io.Int.Input("width", default=832, min=16, max=4096, step=16),
                io.Int.Input("height", default=480, min=16, max=4096, step=16),
                io.Int.Input("fps", default=25, min=1, max=60,
                             tooltip="Frame rate. InfiniteTalk is trained at 25; other rates re-time the audio features."),
                io.Int.Input("window_length", default=81, min=5, max=257, step=4,
                             tooltip="Frames per model call (4k + 1)."),
                io.Int.Input("motion_frames", default=9, min=1, max=33, step=4,
                             tooltip="Frames each window continues from (4k + 1)."),
                io.Float.Input("audio_scale", default=1.0, min=-10.0, max=10.0, step=0.01,
                               tooltip="Strength of the audio cross-attention."),
                io.ClipVisionOutput.Input("clip_vision_output", optional=True,
                                          tooltip="CLIP vision encoding of the portrait (recommended for Wan I2V)."),
                io.Combo.Input("color_match", options=[*COLOR_SPACES, "off"], default="lab", optional=True,
                               tooltip="Match each window's colours (mean/std per channel) to the first window's."),
                io.Boolean.Input("unload_models", default=False, optional=True,
                                 tooltip="Unload the diffusion model, patch, VAE and audio encoder when done."),
            ],
            outputs=[
                io.Video.Output("video", tooltip="MP4 (H.264 + AAC with the input audio), file-backed."),
                io.Image.Output("last_frames", tooltip="The last motion_frames frames, to continue from."),
                io.String.Output("info", tooltip="Windows, frames and duration."),
            ],
        )

    @classmethod
    def execute(cls, model, model_patch, vae, positive=None, negative=None, portrait=None, audio=None, audio_encoder=None,
                steps=20, cfg=5.0, audio_cfg=4.0, sampler_name="euler", scheduler="simple", seed=0, width=832, height=480,
                fps=25, window_length=81, motion_frames=9, audio_scale=1.0,
                clip_vision_output=None, color_match="lab", unload_models=False) -> io.NodeOutput:
        # positive / negative are optional (ComfyUI leaves unconnected ones out), so every input
        # after them has a default here; portrait, audio and audio_encoder are still required.
        if audio is None or audio_encoder is None:
            raise InvalidInputError("audio and audio_encoder are required")
        if positive is None:
            positive = zero_text_conditioning(model)
        if negative is None:
            negative = zero_text_conditioning(model)
        check_window(int(window_length), int(motion_frames))
        if width % 16 or height % 16:
            raise InvalidInputError(f"width and height must be multiples of 16, got {width}x{height}")
        if portrait is None or portrait.ndim != 4 or portrait.shape[0] == 0:
            raise InvalidInputError("portrait must be an IMAGE with at least one image")
        if color_match not in (*COLOR_SPACES, "off"):
            raise InvalidInputError(f"color_match must be one of {(*COLOR_SPACES, 'off')}, got {color_match!r}")
        mono, mux_audio, rate = _mono(audio)
        total = frames_for_audio(mono.shape[0], rate, fps)
        windows = plan_windows(total, int(window_length), int(motion_frames))
        enc_rate = encoder_sample_rate(fps)
        speech = torchaudio.functional.resample(mono[None], rate, enc_rate)[0].numpy() if rate != enc_rate else mono.numpy()
        out_dir = os.path.join(folder_paths.get_temp_directory(), "myspinbot")
        os.makedirs(out_dir, exist_ok=True)
        path = os.path.join(out_dir, f"infinitetalk_{uuid.uuid4().hex}.mp4")
        log.info("myspinbot InfiniteTalk: %.2f s of audio -> %d frames at %d fps in %d windows", mono.shape[0] / rate,
                 total, fps, len(windows))
        try:
            last = _run_windows(
                windows, speech, mux_audio, rate, path, model=model, model_patch=model_patch, vae=vae,
                positive=positive, negative=negative, start_image=portrait[:1], audio_encoder=audio_encoder,
                clip_vision_output=clip_vision_output, steps=int(steps), cfg=float(cfg), audio_cfg=float(audio_cfg),
                sampler_name=sampler_name, scheduler=scheduler, seed=int(seed), width=int(width), height=int(height),
                fps=fps, motion_frames=int(motion_frames), audio_scale=float(audio_scale),
                margin_frames=max(1, math.ceil(ENCODER_MARGIN_S * fps)), color_match=color_match)
        finally:
            if unload_models:
                _unload(model, getattr(vae, "patcher", None), getattr(audio_encoder, "patcher", None), model_patch)
        info = (f"{len(windows)} windows of up to {window_length} frames ({motion_frames} motion frames); "
                f"{total} frames at {fps} fps = {total / fps:.3f} s for {mono.shape[0] / rate:.3f} s of audio; "
                f"{width}x{height}; colour match {color_match}")
        return io.NodeOutput(InputImpl.VideoFromFile(path), torch.from_numpy(last), info)


def _encode_window_audio(audio_encoder, speech: np.ndarray, span) -> dict:
    """Core's AudioEncoderEncode on the window's audio, cut to the features of ``span``."""
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


def _sample(model, positive, negative, latent: dict, *, steps, cfg, audio_cfg, sampler_name, scheduler, seed, callback):
    """Sample one window's latent with core's samplers; returns the denoised latent tensor."""
    latent_image = comfy.sample.fix_empty_latent_channels(model, latent["samples"])
    noise = comfy.sample.prepare_noise(latent_image, seed)
    disable_pbar = not comfy.utils.PROGRESS_BAR_ENABLED
    if math.isclose(audio_cfg, 1.0):
        # plain CFG (audio in both passes): core's KSampler path
        _wrap_audio_patch(model, ())
        return comfy.sample.sample(model, noise, steps, cfg, sampler_name, scheduler, positive, negative, latent_image,
                                   callback=callback, disable_pbar=disable_pbar, seed=seed)
    # InfiniteTalk's two guidances: uncond(no text, no audio) + audio_cfg * (no text, audio - uncond)
    # + cfg * (text, audio - no text, audio); core's Guider_DualCFG computes exactly this with
    # (positive, middle, negative) = (positive, negative with audio, negative without audio).
    from comfy_extras.nodes_custom_sampler import Guider_DualCFG

    _wrap_audio_patch(model, (0,))  # Guider_DualCFG batches [negative, middle, positive]: index 0 = no audio
    guider = Guider_DualCFG(model)
    guider.set_conds(positive, negative, negative)
    guider.set_cfg(cfg, audio_cfg, nested=False)
    ksampler = comfy.samplers.KSampler(model, steps=steps, device=model.load_device, sampler=sampler_name,
                                       scheduler=scheduler, denoise=1.0, model_options=model.model_options)
    samples = guider.sample(noise, latent_image, comfy.samplers.sampler_object(sampler_name), ksampler.sigmas,
                            callback=callback, disable_pbar=disable_pbar, seed=seed)
    return samples.to(device=comfy.model_management.intermediate_device(),
                      dtype=comfy.model_management.intermediate_dtype())


def _run_windows(windows, speech, mux_audio, rate, path, *, model, model_patch, vae, positive, negative, start_image,
                 audio_encoder, clip_vision_output, steps, cfg, audio_cfg, sampler_name, scheduler, seed, width, height,
                 fps, motion_frames, audio_scale, margin_frames, color_match) -> np.ndarray:
    """The window loop; writes ``path`` and returns the last ``motion_frames`` frames (float32)."""
    import nodes as comfy_nodes
    from comfy_extras.nodes_wan import WanInfiniteTalkToVideo

    total_steps = len(windows) * steps
    on_progress = progress_callback(total_steps)
    context = motion_frames + AUDIO_CONTEXT_FRAMES  # frames kept for the next window
    tail: np.ndarray | None = None  # last `context` frames of the video, float32 [n, H, W, 3]
    reference = None
    with Mp4Writer(path, width, height, fps, mux_audio, rate) as writer:
        for window in windows:
            comfy.model_management.throw_exception_if_processing_interrupted()
            extend = window.overlap > 0
            pre = AUDIO_CONTEXT_FRAMES if extend else 0
            span = audio_span(window, pre=pre, margin_frames=margin_frames, available=speech.shape[0])
            features = _encode_window_audio(audio_encoder, speech, span)
            # With `previous_frames` of motion_frames + pre frames, core's audio offset is
            # `pre`: feature `pre` (our span starts `pre` frames early) = the window's first frame.
            previous = torch.from_numpy(tail[-(motion_frames + pre):]) if extend else None
            patched, pos, neg, latent, trim = WanInfiniteTalkToVideo.execute(
                {"mode": "single_speaker"}, model, model_patch, positive, negative, vae, width, height, window.length,
                features, motion_frames, start_image=start_image, previous_frames=previous, audio_scale=audio_scale,
                clip_vision_output=clip_vision_output).result
            if int(trim) != window.overlap:
                raise RuntimeError(f"core trims {trim} frames, expected {window.overlap}")
            base = window.index * steps

            def on_step(step, _x0, _x, _total, base=base):
                on_progress(min(total_steps, base + step + 1), total_steps)

            samples = _sample(patched, pos, neg, latent, steps=steps, cfg=cfg, audio_cfg=audio_cfg,
                              sampler_name=sampler_name, scheduler=scheduler, seed=(seed + window.index) % 2**64,
                              callback=on_step)
            del patched, pos, neg, latent
            decoded = comfy_nodes.VAEDecode().decode(vae, {"samples": samples})[0]
            del samples
            if decoded.shape[0] < window.overlap + window.keep:
                raise RuntimeError(f"VAE decoded {decoded.shape[0]} frames for a {window.length}-frame window")
            frames = decoded.detach().to("cpu", torch.float32).numpy()
            del decoded
            new = frames[window.overlap:window.overlap + window.keep]
            if color_match != "off":
                if reference is None:
                    reference = color_stats(frames, color_match)
                else:
                    new = match_color(new, reference, color_stats(new, color_match))
            for frame in _to_uint8(new):
                writer.write(frame)
            tail = new[-context:] if tail is None else np.concatenate([tail, new])[-context:]
            on_progress(base + steps, total_steps)
            log.info("myspinbot InfiniteTalk: window %d/%d done (frames %d-%d, %d new)", window.index + 1, len(windows),
                     window.first_new, window.end - 1, window.keep)
            del frames, new
            _release_window_memory()
        if writer.frames_written != windows[-1].end:
            raise RuntimeError(f"wrote {writer.frames_written} frames, planned {windows[-1].end}")
    return np.ascontiguousarray(tail[-motion_frames:])
