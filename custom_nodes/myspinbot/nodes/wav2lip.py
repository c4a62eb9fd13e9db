"""Nodes "MySpinBot Load Wav2Lip" and "MySpinBot Lip Sync (Wav2Lip)".

The loader reads a Wav2Lip generator from ComfyUI's ``models/wav2lip`` with the pack's strict
loader (``lipsync.load_wav2lip``: weights-only, every key and shape checked) and hands it to
ComfyUI's model management as a ``ModelPatcher`` (as core's upscale-model loader does with a
plain torch module): ``load_models_gpu`` moves it to the inference device before each lip
sync and ComfyUI offloads it when it needs the memory. The lip-sync node turns the IMAGE /
VIDEO and AUDIO inputs into files, runs ``lipsync.lip_sync`` (streaming, file to file) and
returns a file-backed VIDEO in ComfyUI's temp folder plus a line on faceless frames.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

import torch
from comfy_api.latest import InputImpl, io

from ..errors import InvalidInputError
from ..lipsync import BoxSettings, LipSyncSettings, lip_sync, load_wav2lip
from ..lipsync.replay import LOOP_MODES
from ._folders import file_choices, folder_file
from ._media import TempFiles, audio_to_wav_file, faceless_report, images_to_face_file, video_to_file
from ._progress import progress_callback

log = logging.getLogger("myspinbot")

FOLDER = "wav2lip"
SUFFIXES = (".pth", ".pt", ".safetensors")
LICENCE_NOTE = ("The official Wav2Lip checkpoints (wav2lip.pth, wav2lip_gan.pth) are for non-commercial "
                "research use only (Wav2Lip licence; trained on LRS2).")
BYTES_PER_FRAME = 16 * 1024 * 1024  # rough activation memory of the 96 x 96 generator per batch item

Wav2LipType = io.Custom("MYSPINBOT_WAV2LIP")


@dataclass
class Wav2LipModel:
    """What "Load Wav2Lip" outputs: the generator (on ComfyUI's offload device until a run
    loads it), its ``ModelPatcher``, and where it came from."""

    model: torch.nn.Module
    patcher: object
    name: str
    path: Path


def model_choices() -> list[str]:
    """The dropdown: checkpoints in ``models/wav2lip`` and the manifest's (wav2lip.pth, wav2lip_gan.pth)."""
    return file_choices(FOLDER, SUFFIXES)


class LoadWav2Lip(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="MySpinBotLoadWav2Lip",
            display_name="MySpinBot Load Wav2Lip",
            category="MySpinBot/lipsync",
            description="Loads a Wav2Lip generator (Prajwal et al., ACM MM 2020) from models/wav2lip: the "
            "official wav2lip.pth / wav2lip_gan.pth (weights-only, every key and shape checked) or a "
            ".safetensors conversion. " + LICENCE_NOTE,
            inputs=[
                io.Combo.Input("model_name", options=model_choices(),
                               tooltip="Checkpoint in models/wav2lip. wav2lip: most accurate lip sync; "
                               "wav2lip_gan: sharper mouths. Missing ones: python install.py --models wav2lip_gan"),
            ],
            outputs=[Wav2LipType.Output("wav2lip", tooltip="The generator, managed by ComfyUI's model management.")],
        )

    @classmethod
    def validate_inputs(cls, model_name: str) -> bool | str:
        if not str(model_name).lower().endswith(SUFFIXES):
            return f"model_name must be a {', '.join(SUFFIXES)} file, got {model_name!r}"
        if model_name not in model_choices():
            return f"{model_name!r} is neither in models/wav2lip nor in the pack's model manifest"
        return True

    @classmethod
    def execute(cls, model_name: str) -> io.NodeOutput:
        import comfy.model_management as mm
        import comfy.model_patcher

        path = folder_file(FOLDER, model_name)
        load_device, offload_device = mm.get_torch_device(), mm.unet_offload_device()
        model = load_wav2lip(path, device=offload_device)
        patcher = comfy.model_patcher.ModelPatcher(model, load_device=load_device, offload_device=offload_device)
        return io.NodeOutput(Wav2LipModel(model=model, patcher=patcher, name=model_name, path=path))


class LipSyncWav2Lip(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="MySpinBotLipSyncWav2Lip",
            display_name="MySpinBot Lip Sync (Wav2Lip)",
            category="MySpinBot/lipsync",
            description="Redraws the mouth of the face in a video or image to match speech, with Wav2Lip: the face "
            "is found in every frame (OpenCV Haar cascades, boxes smoothed over 5 frames), cropped to 96 x 96 and "
            "its lower half regenerated from 0.2 s of mel spectrogram. Streams file to file; the video lasts as "
            "long as the audio (a shorter source is looped or played ping-pong). Frames without a face pass "
            "through unchanged; no face in any frame is an error (unless require_face is off). " + LICENCE_NOTE,
            inputs=[
                Wav2LipType.Input("wav2lip", tooltip="From 'MySpinBot Load Wav2Lip'."),
                io.Audio.Input("audio", tooltip="The speech; the output lasts as long as it (to within a frame)."),
                io.Video.Input("video", optional=True, tooltip="Video of the speaker (its own audio is replaced)."),
                io.Image.Input("images", optional=True, tooltip="Instead of a video: one image (a still portrait) "
                               "or a batch of frames played at 'fps'."),
                io.Int.Input("batch_size", default=16, min=1, max=256,
                             tooltip="Frames per generator call (more: faster on a GPU, more memory)."),
                io.Int.Input("pad_bottom", default=10, min=0, max=200,
                             tooltip="Pixels added below the detected face so the chin is included (the authors' default: 10)."),
                io.Combo.Input("loop", options=list(LOOP_MODES), default="loop",
                               tooltip="A source shorter than the audio: 'loop' restarts it, 'ping_pong' plays it "
                               "back and forth (no jump; frames kept in a temporary file)."),
                io.Float.Input("fps", default=25.0, min=1.0, max=120.0, step=1.0,
                               tooltip="Frame rate for a still image or an image batch (a video keeps its own)."),
                io.Boolean.Input("require_face", default=True, optional=True,
                                 tooltip="On: no face in any frame is an error (no_face_detected). Off: such a "
                                 "source passes through unchanged with the speech (a voice-over)."),
            ],
            outputs=[
                io.Video.Output("video", tooltip="MP4 (H.264 + AAC), file-backed in ComfyUI's temp folder."),
                io.String.Output("faceless_frames", tooltip="Which frames had no face (passed through unchanged)."),
            ],
        )

    @classmethod
    def execute(cls, wav2lip: Wav2LipModel, audio: dict, video=None, images=None, batch_size: int = 16,
                pad_bottom: int = 10, loop: str = "loop", fps: float = 25.0, require_face: bool = True) -> io.NodeOutput:
        import comfy.model_management as mm
        import folder_paths

        if video is None and images is None:
            raise InvalidInputError("connect a video or images of the face to lip-sync (neither was given)")
        if not isinstance(wav2lip, Wav2LipModel):
            raise InvalidInputError("wav2lip must come from 'MySpinBot Load Wav2Lip'")
        settings = LipSyncSettings(batch_size=int(batch_size), boxes=BoxSettings(pads=(0, int(pad_bottom), 0, 0)),
                                   still_fps=float(fps), loop=str(loop), require_face=bool(require_face))
        out_dir = Path(folder_paths.get_temp_directory()) / "myspinbot"
        temp = TempFiles(out_dir, "lipsync_in")
        try:
            face = video_to_file(video, temp) if video is not None else images_to_face_file(images, fps, temp)
            speech = audio_to_wav_file(audio, temp)
            mm.load_models_gpu([wav2lip.patcher], memory_required=batch_size * BYTES_PER_FRAME, force_full_load=True)
            bar = {}

            def progress(done: int, total: int) -> None:
                if "cb" not in bar:
                    bar["cb"] = progress_callback(total)
                bar["cb"](done, total)  # also raises InterruptProcessingException when cancelled

            mm.throw_exception_if_processing_interrupted()
            with torch.inference_mode():
                result = lip_sync(wav2lip.model, face, speech, out_dir / f"lipsync_{os.urandom(8).hex()}.mp4",
                                  settings, progress)
        finally:
            temp.cleanup()
        report = faceless_report(result.frames, result.fps, result.faceless_ranges)
        log.info("myspinbot lip sync (%s): %d frames at %.3g fps, %s", wav2lip.name, result.frames, result.fps, report)
        return io.NodeOutput(InputImpl.VideoFromFile(str(result.path)), report)
