"""Node "MySpinBot Upscale Video": a core UPSCALE_MODEL (spandrel, from ``Load Upscale Model``)
applied frame by frame to a VIDEO (file to file, streaming) and/or to an IMAGE batch.

Upscaling follows core's ``ImageUpscaleWithModel``: ``comfy.utils.tiled_scale`` with
overlapping tiles, the model loaded through ``comfy.model_management``, and on out-of-memory
the tile is halved (down to 128) and the frame retried; the smaller tile is kept for the
frames that follow. The video path decodes, upscales and encodes one frame at a time
(``video.frame_map.map_video_frames``), so memory stays flat in clip length; the audio is
carried over untouched (packets remuxed).

An optional face restoration pass (``restore.FaceRestorer``) cuts the main face from each
source frame, restores it with a spandrel face model (GFPGAN v1.4, RestoreFormer++) loaded
by core's ``Load Upscale Model``, and pastes it onto the upscaled frame.
"""

from __future__ import annotations

import logging
import os
import uuid

import numpy as np
import torch

import comfy.model_management as model_management
import folder_paths
from comfy_api.latest import InputImpl, io

from ..errors import InvalidInputError
from ..restore import FaceRestorer, check_face_model, face_restore_fn
from ..video.frame_map import encode_frames, map_video_frames
from ._heap import steady_heap
from ._progress import progress_callback
from ._tiled_upscale import TiledUpscaler

log = logging.getLogger("myspinbot")


def _temp_mp4(prefix: str) -> str:
    out_dir = os.path.join(folder_paths.get_temp_directory(), "myspinbot")
    os.makedirs(out_dir, exist_ok=True)
    return os.path.join(out_dir, f"{prefix}_{uuid.uuid4().hex}.mp4")


def _to_uint8(image: torch.Tensor) -> np.ndarray:
    """float ``[H, W, 3]`` 0..1 tensor (any strides, any device) -> C-contiguous uint8 numpy
    array on the CPU (the conversion and the transposition of a channels-first view are one copy)."""
    out = torch.empty(tuple(image.shape), dtype=torch.uint8)
    return out.copy_(image.mul(255.0).add_(0.5).clamp_(0, 255)).numpy()


class _Uint8Frames:
    """Turns the upscaler's float frames into uint8 frames for the encoder through one reused
    buffer, scaling the float frame in place: no per-frame allocations besides the model's own.
    (Fresh 7 MB temporaries per 768² frame shifted glibc's heap so that the model's activations
    page-faulted about twice as often as in core's loop.) The returned array is valid until the
    next call; the MP4 writer copies each frame before that."""

    def __init__(self):
        self.buffer: torch.Tensor | None = None

    def __call__(self, image: torch.Tensor) -> np.ndarray:
        """``image``: float ``[H, W, 3]`` in 0..1, this frame's own tensor (it is overwritten)."""
        if self.buffer is None or tuple(self.buffer.shape) != tuple(image.shape):
            self.buffer = torch.empty(tuple(image.shape), dtype=torch.uint8)
        image.mul_(255.0).add_(0.5)  # already clamped to 0..1 by the upscaler
        return self.buffer.copy_(image).numpy()  # the float -> uint8 copy truncates: round half up


def _to_float(image: np.ndarray) -> torch.Tensor:
    """uint8 ``[H, W, 3]`` numpy array -> float ``[H, W, 3]`` 0..1 tensor on ComfyUI's intermediate device."""
    return torch.from_numpy(image).float().div_(255.0).to(model_management.intermediate_device())


def _face_restorer(face_model, strength: float, *, temporal: bool) -> FaceRestorer | None:
    """A FaceRestorer around ``face_model`` (on its patcher's load device; the TiledUpscaler
    loads it together with the upscale model before the first frame), or None."""
    if face_model is None:
        return None
    patcher = getattr(face_model, "patcher", None)
    device = patcher.load_device if patcher is not None else face_model.device
    return FaceRestorer(face_restore_fn(face_model, device), strength=strength, temporal=temporal)


def _video_source(video) -> tuple[object, str | None]:
    """A path or file object to stream ``video`` from, and a temporary file to delete after.

    An untrimmed file-backed VIDEO (``VideoFromFile``) is read in place; anything else (a
    trimmed file, frames held in memory) is first written to a temporary MP4 with the
    VIDEO's own ``save_to``."""
    start, duration = getattr(video, "get_active_trim_window", lambda: (0.0, 0.0))()
    if isinstance(video, InputImpl.VideoFromFile) and not start and not duration:
        return video.get_stream_source(), None
    tmp = _temp_mp4("upscale_src")
    try:
        video.save_to(tmp)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise
    return tmp, tmp


class UpscaleVideo(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="MySpinBotUpscaleVideo",
            display_name="MySpinBot Upscale Video",
            category="MySpinBot/video",
            description="Upscales a video (frame by frame, file to file, audio kept as is) and/or an image "
            "batch with an upscale model from models/upscale_models (ESRGAN / RealESRGAN and every other "
            "architecture spandrel loads; use core's 'Load Upscale Model'). Tiled like core's 'Upscale Image "
            "(using Model)'; on out-of-memory the tile is halved and the frame retried.",
            inputs=[
                io.UpscaleModel.Input("upscale_model", tooltip="From core's 'Load Upscale Model'."),
                io.Video.Input("video", optional=True,
                               tooltip="Video to upscale; streamed frame by frame, its audio is carried over untouched."),
                io.Image.Input("images", optional=True,
                               tooltip="Image batch to upscale (give this and/or a video)."),
                io.Float.Input("output_scale", default=0.0, min=0.0, max=16.0, step=0.05,
                               tooltip="0 = the model's own scale. Otherwise the model's output is resized "
                               "(bicubic, antialiased) to input size x this factor, e.g. 2 with a x4 model."),
                io.Int.Input("tile", default=512, min=64, max=4096, step=8,
                             tooltip="Tile side in input pixels; halved automatically (down to 128) on out-of-memory."),
                io.Int.Input("overlap", default=32, min=0, max=512, step=8,
                             tooltip="Overlap between tiles in input pixels (at most half the tile)."),
                io.UpscaleModel.Input("face_restore_model", optional=True,
                                      tooltip="Optional face restoration model (GFPGAN v1.4, RestoreFormer++) "
                                      "from core's 'Load Upscale Model'. The main face of each frame is aligned, "
                                      "restored at 512 px and pasted onto the upscaled frame."),
                io.Float.Input("face_restore_strength", default=1.0, min=0.0, max=1.0, step=0.05, optional=True,
                               tooltip="Blend of the restored face over the upscaled frame's face (1 = restored only, 0 = off)."),
                io.Float.Input("fps", default=25.0, min=1.0, max=240.0, step=1.0, optional=True, advanced=True,
                               tooltip="Frame rate of the VIDEO output when only images are given (a video keeps its own)."),
            ],
            outputs=[
                io.Video.Output("video", tooltip="Upscaled MP4 (H.264), file-backed in ComfyUI's temp folder; "
                                "same frame rate and frame count, audio untouched. With images only: the "
                                "upscaled batch encoded at 'fps', silent."),
                io.Image.Output("images", tooltip="The upscaled image batch; with a video only: its first "
                                "upscaled frame (1 image, a preview)."),
            ],
        )

    @classmethod
    def execute(cls, upscale_model, video=None, images=None, output_scale=0.0, tile=512, overlap=32,
                face_restore_model=None, face_restore_strength=1.0, fps=25.0) -> io.NodeOutput:
        # inference mode as ComfyUI runs nodes (also when execute is called directly); a steady
        # heap so that the frames do not page-fault the model's activations in again (_heap.py)
        with torch.inference_mode(), steady_heap():
            return cls._run(upscale_model, video, images, output_scale, tile, overlap, fps,
                            face_restore_model, face_restore_strength)

    @classmethod
    def _run(cls, upscale_model, video, images, output_scale, tile, overlap, fps,
             face_model=None, face_strength=1.0) -> io.NodeOutput:
        if video is None and images is None:
            raise InvalidInputError("connect a video or images to upscale (neither was given)")
        if not callable(upscale_model) or not hasattr(upscale_model, "scale"):
            raise InvalidInputError("upscale_model must be a single-image upscale model from 'Load Upscale Model'")
        if images is not None and (images.ndim != 4 or images.shape[0] == 0):
            raise InvalidInputError(f"images must be a non-empty IMAGE batch [B,H,W,C], got {list(images.shape)}")
        if face_model is not None:
            check_face_model(face_model)
        face_patcher = getattr(face_model, "patcher", None)
        upscaler = TiledUpscaler(upscale_model, tile, overlap, output_scale,
                                 also_load=(face_patcher,) if face_patcher is not None else ())
        n_images = int(images.shape[0]) if images is not None else 0
        progress = progress_callback(n_images + (1 if video is not None else 0))
        state = {"video_total": 1 if video is not None else 0}

        out_images = None
        if images is not None:
            faces = _face_restorer(face_model, face_strength, temporal=False)
            out_images = cls._upscale_images(upscaler, images, progress, state, faces)

        if video is not None:
            faces = _face_restorer(face_model, face_strength, temporal=True)
            video_out, first = cls._upscale_video(upscaler, video, progress, state, n_images, faces)
            if out_images is None:
                out_images = first
        else:
            video_out = cls._encode_images(out_images, fps)
        if upscaler.halvings:
            log.info("myspinbot upscale: finished with tile %d after out-of-memory halving(s) %s",
                     upscaler.tile, upscaler.halvings)
        return io.NodeOutput(video_out, out_images)

    @staticmethod
    def _upscale_images(upscaler: TiledUpscaler, images: torch.Tensor, progress, state,
                        faces: FaceRestorer | None) -> torch.Tensor:
        n = int(images.shape[0])
        height, width = upscaler.out_size(images.shape[1], images.shape[2])
        out = torch.empty((n, height, width, 3), dtype=model_management.intermediate_dtype(),
                          device=model_management.intermediate_device())
        progress(0, n + state["video_total"])
        for i in range(n):
            x = images[i:i + 1, ..., :3].movedim(-1, 1).float()
            y = upscaler(x, i)[0].movedim(0, -1)
            if faces is not None:
                y = _to_float(faces(_to_uint8(images[i, ..., :3]), _to_uint8(y)))
            out[i] = y.to(out.dtype)
            progress(i + 1, n + state["video_total"])
        return out

    @staticmethod
    def _upscale_video(upscaler: TiledUpscaler, video, progress, state, offset: int,
                       faces: FaceRestorer | None):
        first: dict[str, torch.Tensor] = {}
        counter = [0]
        to_uint8 = _Uint8Frames()

        def keep_first(y: torch.Tensor) -> None:
            if not first:
                first["image"] = y.unsqueeze(0).to(model_management.intermediate_dtype(), copy=True).cpu()

        def frame_fn(frame: np.ndarray) -> np.ndarray:
            # [1, H, W, 3] first, then movedim: canonical channels-last strides, as core's batches
            x = torch.from_numpy(frame).unsqueeze(0).movedim(-1, 1).float().div_(255.0)
            y = upscaler(x, counter[0])[0].movedim(0, -1)
            counter[0] += 1
            if faces is None:
                keep_first(y)  # before y is scaled in place
                return to_uint8(y)
            model_management.throw_exception_if_processing_interrupted()
            out = faces(frame, _to_uint8(y))
            keep_first(_to_float(out))
            return out

        def on_frames(done: int, total: int) -> None:
            state["video_total"] = total
            progress(offset + done, offset + total)

        source, cleanup = _video_source(video)
        try:
            progress(offset, offset + state["video_total"])
            result = map_video_frames(source, _temp_mp4("upscale"), frame_fn, on_progress=on_frames)
        finally:
            if cleanup is not None:
                try:
                    os.remove(cleanup)
                except FileNotFoundError:
                    pass
        log.info("myspinbot upscale: %s", result.summary)
        return InputImpl.VideoFromFile(str(result.path)), first["image"]

    @staticmethod
    def _encode_images(images: torch.Tensor, fps: float):
        def frames():
            for i in range(images.shape[0]):
                yield _to_uint8(images[i])

        result = encode_frames(frames(), _temp_mp4("upscale"), fps)
        return InputImpl.VideoFromFile(str(result.path))
