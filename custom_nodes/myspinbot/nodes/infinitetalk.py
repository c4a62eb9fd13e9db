"""Node "MySpinBot InfiniteTalk": portrait + speech of any length -> lip-synced Wan video (MP4).

ComfyUI core implements InfiniteTalk for one window (``WanInfiniteTalkToVideo``: one call makes
up to 81 frames). This node checks its inputs and hands them to the long-audio loop in
``infinitetalk_windows.py``, which calls core for everything model-related window after window
and streams the frames into the MP4 (memory stays flat); the video lasts as long as the audio.
"""

from __future__ import annotations

import os
import uuid

import torch

import comfy.samplers
import folder_paths
from comfy_api.latest import InputImpl, io

from ..animate.long_audio import COLOR_SPACES, check_window
from ..errors import InvalidInputError
from .infinitetalk_sampling import zero_text_conditioning
from .infinitetalk_windows import TalkModels, WindowSettings, render, unload


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
        check_window(int(window_length), int(motion_frames))
        if width % 16 or height % 16:
            raise InvalidInputError(f"width and height must be multiples of 16, got {width}x{height}")
        if portrait is None or portrait.ndim != 4 or portrait.shape[0] == 0:
            raise InvalidInputError("portrait must be an IMAGE with at least one image")
        if color_match not in (*COLOR_SPACES, "off"):
            raise InvalidInputError(f"color_match must be one of {(*COLOR_SPACES, 'off')}, got {color_match!r}")
        models = TalkModels(model=model, model_patch=model_patch, vae=vae,
                            positive=positive if positive is not None else zero_text_conditioning(model),
                            negative=negative if negative is not None else zero_text_conditioning(model),
                            start_image=portrait[:1], audio_encoder=audio_encoder, clip_vision_output=clip_vision_output)
        settings = WindowSettings(steps=int(steps), cfg=float(cfg), audio_cfg=float(audio_cfg), sampler_name=sampler_name,
                                  scheduler=scheduler, seed=int(seed), width=int(width), height=int(height), fps=fps,
                                  window_length=int(window_length), motion_frames=int(motion_frames),
                                  audio_scale=float(audio_scale), color_match=color_match)
        out_dir = os.path.join(folder_paths.get_temp_directory(), "myspinbot")
        os.makedirs(out_dir, exist_ok=True)
        path = os.path.join(out_dir, f"infinitetalk_{uuid.uuid4().hex}.mp4")
        try:
            done = render(models, settings, audio, path)
        finally:
            if unload_models:
                unload(model, getattr(vae, "patcher", None), getattr(audio_encoder, "patcher", None), model_patch)
        info = (f"{done.windows} windows of up to {window_length} frames ({motion_frames} motion frames); "
                f"{done.frames} frames at {fps} fps = {done.frames / fps:.3f} s for {done.audio_seconds:.3f} s of audio; "
                f"{width}x{height}; colour match {color_match}")
        return io.NodeOutput(InputImpl.VideoFromFile(path), torch.from_numpy(done.last_frames), info)
