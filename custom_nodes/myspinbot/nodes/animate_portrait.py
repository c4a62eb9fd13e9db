"""Node "MySpinBot Animate Portrait (lite)": portrait IMAGE + speech AUDIO → lip-synced VIDEO.

The classical animator streams frames into an MP4 (H.264 + AAC) in ComfyUI's temp folder;
the node returns it as a file-backed VIDEO, so no frame tensor travels between nodes.
"""

from __future__ import annotations

import os
import uuid

import folder_paths
from comfy_api.latest import InputImpl, io

from ..animate import animate_portrait
from ._convert import audio_to_numpy, image_to_uint8
from ._progress import progress_callback


class AnimatePortraitLite(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="MySpinBotAnimatePortraitLite",
            display_name="MySpinBot Animate Portrait (lite)",
            category="MySpinBot/animate",
            description="Animates the largest face of a portrait to speech with a classical method "
            "(no model weights): mouth opening follows the loudness, natural blinks, slight head motion. "
            "Writes an MP4 with the audio muxed.",
            inputs=[
                io.Image.Input("portrait", tooltip="Portrait photo; the first image of a batch is used."),
                io.Audio.Input("audio", tooltip="The speech to lip-sync to; the video lasts as long as the audio."),
                io.Float.Input("fps", default=25.0, min=1.0, max=60.0, step=1.0, tooltip="Frame rate of the video."),
                io.Float.Input("mouth_strength", default=1.0, min=0.0, max=2.0, step=0.05, tooltip="How wide the mouth opens at full loudness."),
                io.Boolean.Input("blink", default=True, tooltip="Natural eye blinks every few seconds."),
                io.Float.Input("head_motion", default=1.0, min=0.0, max=3.0, step=0.1, tooltip="Amount of slight head drift (0 = still)."),
                io.Int.Input("max_side", default=1024, min=64, max=4096, step=16, tooltip="Larger portraits are scaled down to this longest side."),
                io.Int.Input("seed", default=0, min=0, max=0xFFFFFFFF, control_after_generate=False, tooltip="Seed for blink timing and head motion."),
            ],
            outputs=[
                io.Video.Output("video", tooltip="MP4 (H.264 + AAC), file-backed."),
                io.String.Output("info", tooltip="What was animated (faces found, frames, size)."),
            ],
        )

    @classmethod
    def execute(cls, portrait, audio, fps, mouth_strength, blink, head_motion, max_side, seed) -> io.NodeOutput:
        image = image_to_uint8(portrait, 0)
        samples, sample_rate = audio_to_numpy(audio)
        out_dir = os.path.join(folder_paths.get_temp_directory(), "myspinbot")
        os.makedirs(out_dir, exist_ok=True)
        out_path = os.path.join(out_dir, f"portrait_{uuid.uuid4().hex}.mp4")
        total_frames = max(1, int(-(-samples.shape[-1] * fps // sample_rate)))
        result = animate_portrait(
            image,
            samples,
            sample_rate,
            out_path,
            fps=fps,
            mouth_strength=mouth_strength,
            blink=blink,
            head_motion=head_motion,
            max_side=max_side,
            seed=seed,
            on_progress=progress_callback(total_frames),
        )
        info = result.summary
        if portrait.shape[0] > 1:
            info += f" (batch of {portrait.shape[0]} images: used the first)"
        return io.NodeOutput(InputImpl.VideoFromFile(result.path), info)
