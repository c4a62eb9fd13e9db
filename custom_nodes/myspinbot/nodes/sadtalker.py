"""Nodes "MySpinBot Load SadTalker" and "MySpinBot SadTalker".

The loader reads the official SadTalker checkpoint and a mapping checkpoint from ComfyUI's
``models/sadtalker`` with the pack's strict loaders (``sadtalker.load_sadtalker`` /
``load_mapping``: weights-only, every key and shape checked) and hands the networks to
ComfyUI's model management as one ``ModelPatcher``. The SadTalker node animates the first
IMAGE with the AUDIO (``sadtalker.talking_head``: frames streamed into an MP4 with the speech)
and returns a file-backed VIDEO in ComfyUI's temp folder plus the per-frame coefficients as
JSON text. The five facial points come from MTCNN or, when ``models/facexlib`` holds both files
(or ``landmarks`` asks for them), the authors' RetinaFace + FAN.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path

import torch
from comfy_api.latest import InputImpl, io

from ..errors import InvalidInputError
from ..sadtalker import SadTalkerNets, SadTalkerSettings, load_mapping, load_sadtalker, talking_head
from ..sadtalker.engine import PREPROCESS
from ..sadtalker.landmarks import FACEXLIB_FOLDER, SOURCES
from ._convert import audio_to_numpy, image_to_uint8
from ._folders import comfy_folder_dirs, file_choices, folder_file, register_model_folders
from ._progress import progress_callback

log = logging.getLogger("myspinbot")

FOLDER = "sadtalker"
CHECKPOINTS = (".safetensors",)
MAPPINGS = (".pth.tar", ".pth", ".safetensors")
LICENCE_NOTE = "SadTalker code and checkpoints: Apache-2.0 (OpenTalker/SadTalker)."
BYTES_PER_FRAME = 1024 * 1024 * 1024  # rough activation memory of the 256 px renderer per batch item

SadTalkerType = io.Custom("MYSPINBOT_SADTALKER")


@dataclass
class SadTalkerModel:
    """What "Load SadTalker" outputs: the networks, the mapping, their ``ModelPatcher`` and names."""

    nets: SadTalkerNets
    mapping: torch.nn.Module
    patcher: object
    name: str
    mapping_name: str


class LoadSadTalker(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="MySpinBotLoadSadTalker",
            display_name="MySpinBot Load SadTalker",
            category="MySpinBot/animate",
            description="Loads SadTalker (Zhang et al., CVPR 2023) from models/sadtalker: the official "
            "SadTalker_V0.0.2_256/512.safetensors and a mapping checkpoint (mapping_00229: crop/resize, "
            "mapping_00109: full), weights-only, every key and shape checked. " + LICENCE_NOTE,
            inputs=[
                io.Combo.Input("checkpoint", options=file_choices(FOLDER, CHECKPOINTS),
                               tooltip="SadTalker_V0.0.2_256.safetensors (256 px) or _512 (512 px). Missing: "
                               "python install.py --models sadtalker_256"),
                io.Combo.Input("mapping", options=file_choices(FOLDER, MAPPINGS),
                               tooltip="mapping_00229-model.pth.tar for crop/resize, mapping_00109-model.pth.tar "
                               "for full. Missing: python install.py --models sadtalker_mapping"),
            ],
            outputs=[SadTalkerType.Output("sadtalker", tooltip="The networks, managed by ComfyUI.")],
        )

    @classmethod
    def execute(cls, checkpoint: str, mapping: str) -> io.NodeOutput:
        import comfy.model_management as mm
        import comfy.model_patcher

        offload = mm.unet_offload_device()
        nets = load_sadtalker(folder_file(FOLDER, checkpoint), device=offload)
        mapper = load_mapping(folder_file(FOLDER, mapping), device=offload)
        holder = torch.nn.ModuleDict({**nets.modules(), "mapping": mapper})
        patcher = comfy.model_patcher.ModelPatcher(holder, load_device=mm.get_torch_device(), offload_device=offload)
        return io.NodeOutput(SadTalkerModel(nets=nets, mapping=mapper, patcher=patcher, name=checkpoint,
                                            mapping_name=mapping))


class SadTalker(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="MySpinBotSadTalker",
            display_name="MySpinBot SadTalker",
            category="MySpinBot/animate",
            description="Animates a portrait from speech with SadTalker: head motion and expression predicted "
            "from the audio (3DMM coefficients), rendered by a face-vid2vid renderer. Frames stream into an "
            "MP4 with the speech; the video covers the speech to within one frame (25 fps). Random draws "
            "(blinks, head motion) come from the seed. " + LICENCE_NOTE,
            inputs=[
                SadTalkerType.Input("sadtalker", tooltip="From 'MySpinBot Load SadTalker'."),
                io.Image.Input("image", tooltip="The portrait (first image of the batch); one face, frontal."),
                io.Audio.Input("audio", tooltip="The speech."),
                io.Combo.Input("size", options=["256", "512"], default="256",
                               tooltip="The checkpoint's resolution (256 or 512 file)."),
                io.Combo.Input("preprocess", options=list(PREPROCESS), default="crop",
                               tooltip="crop: the face square; resize: the whole image; full: the face pasted "
                               "back into the portrait (needs mapping_00109)."),
                io.Boolean.Input("still", default=False, tooltip="Keep the portrait's head pose (presenters)."),
                io.Int.Input("pose_style", default=0, min=0, max=45, tooltip="Head-motion style (0..45)."),
                io.Float.Input("expression_scale", default=1.0, min=0.1, max=3.0, step=0.05,
                               tooltip="Strength of the expressions."),
                io.Int.Input("seed", default=0, min=0, max=2 ** 31 - 1, tooltip="Same seed, same video."),
                io.Int.Input("batch_size", default=2, min=1, max=64, tooltip="Frames per renderer call."),
                io.Int.Input("max_frames", default=0, min=0, max=100000,
                             tooltip="Render at most this many frames (0: the whole speech)."),
                io.Combo.Input("landmarks", options=list(SOURCES), default="auto", optional=True,
                               tooltip="Facial points: auto = the authors' RetinaFace + FAN when "
                               "detection_Resnet50_Final.pth and alignment_WFLW_4HG.pth are in models/facexlib "
                               "(licence of the weights not stated by facexlib), else MTCNN (MIT, no download)."),
            ],
            outputs=[
                io.Video.Output("video", tooltip="MP4 (H.264 + AAC), file-backed in ComfyUI's temp folder."),
                io.String.Output("coefficients", tooltip="JSON: per-frame 70 motion coefficients, the "
                                 "portrait's 73, the five facial points."),
            ],
        )

    @classmethod
    def execute(cls, sadtalker: SadTalkerModel, image: torch.Tensor, audio: dict, size: str = "256",
                preprocess: str = "crop", still: bool = False, pose_style: int = 0, expression_scale: float = 1.0,
                seed: int = 0, batch_size: int = 2, max_frames: int = 0, landmarks: str = "auto") -> io.NodeOutput:
        import comfy.model_management as mm
        import folder_paths

        if not isinstance(sadtalker, SadTalkerModel):
            raise InvalidInputError("sadtalker must come from 'MySpinBot Load SadTalker'")
        settings = SadTalkerSettings(size=int(size), preprocess=str(preprocess), still=bool(still),
                                     pose_style=int(pose_style), expression_scale=float(expression_scale),
                                     seed=int(seed), batch_size=int(batch_size),
                                     max_frames=int(max_frames) or None, landmarks=str(landmarks))
        register_model_folders()
        model_dirs = comfy_folder_dirs(FACEXLIB_FOLDER)
        samples, rate = audio_to_numpy(audio)
        portrait = image_to_uint8(image)
        out = Path(folder_paths.get_temp_directory()) / "myspinbot" / f"sadtalker_{os.urandom(8).hex()}.mp4"
        mm.load_models_gpu([sadtalker.patcher], memory_required=settings.batch_size * BYTES_PER_FRAME,
                           force_full_load=True)
        bar = {}

        def progress(done: int, total: int) -> None:
            if "cb" not in bar:
                bar["cb"] = progress_callback(total)
            bar["cb"](done, total)  # also raises InterruptProcessingException when cancelled

        with torch.inference_mode():
            result = talking_head(sadtalker.nets, sadtalker.mapping, portrait, samples, rate, out, settings,
                                  model_dirs=model_dirs, progress=progress,
                                  check_interrupt=mm.throw_exception_if_processing_interrupted)
        text = json.dumps({"fps": 25, "frames": result.frames, "coeffs": result.coeffs.round(6).tolist(),
                           "source_coeffs": result.source_coeffs.round(6).tolist(),
                           "points": result.points.round(2).tolist()})
        log.info("myspinbot sadtalker (%s, %s): %d frames %dx%d", sadtalker.name, sadtalker.mapping_name,
                 result.frames, result.width, result.height)
        return io.NodeOutput(InputImpl.VideoFromFile(str(result.path)), text)
