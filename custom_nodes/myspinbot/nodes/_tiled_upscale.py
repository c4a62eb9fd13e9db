"""Core's tiled model upscale (``ImageUpscaleWithModel``), one frame at a time, OOM-tolerant.

:class:`TiledUpscaler` runs a spandrel ``ImageModelDescriptor`` (from core's ``Load Upscale
Model``) over one ``[1, 3, H, W]`` frame with ``comfy.utils.tiled_scale``, exactly as core
does for a batch, and keeps the state a video needs across frames: the model is loaded once,
and a tile halved on out-of-memory stays halved for the frames that follow.

Layout: the model always gets a channels-last tensor with canonical strides, the layout core
hands it (core's NHWC IMAGE batch after ``movedim(-1, -3)``). A single frame built as
``from_numpy(hwc).movedim(-1, 0)[None]`` has batch stride 3 instead of ``3*H*W``; PyTorch's
memory-format heuristic (``suggest_memory_format``) then falls back to NCHW, and a CPU ESRGAN
runs about 1.5x slower (see ``bench/bench_upscale_speed.py``).
"""

from __future__ import annotations

import logging

import torch
import torch.nn.functional as F

import comfy.model_management as model_management
import comfy.utils

log = logging.getLogger("myspinbot")

MIN_TILE = 128  # halving stops here, as in core's ImageUpscaleWithModel
_MEMORY_PER_PIXEL = 384.0  # core's rough activation-memory factor for upscale models


def channels_last(x: torch.Tensor, device) -> torch.Tensor:
    """``x`` (any dtype, ``[N, C, H, W]``) as float32 on ``device`` with canonical channels-last
    strides ``(C*H*W, 1, W*C, C)``; no copy when it already is one."""
    n, c, h, w = x.shape
    if x.dtype == torch.float32 and x.device == torch.device(device) and x.stride() == (c * h * w, 1, w * c, c):
        return x
    out = torch.empty((n, c, h, w), dtype=torch.float32, device=device, memory_format=torch.channels_last)
    return out.copy_(x)


class TiledUpscaler:
    """Upscales ``[1, 3, H, W]`` float frames with a spandrel model, tiled, OOM-tolerant.

    ``tile`` shrinks (halves) on out-of-memory and stays shrunk for later frames;
    ``halvings`` records each change as ``(old_tile, new_tile)``.
    """

    def __init__(self, model, tile: int, overlap: int, output_scale: float, also_load: tuple = ()):
        self.model = model
        self.also_load = tuple(also_load)  # other patchers loaded with it (the face restoration model)
        self.scale = float(model.scale)
        self.tile = int(tile)
        self.overlap = int(overlap)
        self.output_scale = float(output_scale)
        self.device = getattr(getattr(model, "patcher", None), "load_device", None) or model.device
        self.output_device = model_management.intermediate_device()
        self.halvings: list[tuple[int, int]] = []
        self._loaded = False

    def out_size(self, height: int, width: int) -> tuple[int, int]:
        """Output ``(height, width)`` for an input frame of ``height`` x ``width``."""
        s = self.output_scale if self.output_scale > 0 else self.scale
        return max(1, int(round(height * s))), max(1, int(round(width * s)))

    def _load(self, x: torch.Tensor) -> None:
        if self._loaded:
            return
        patcher = getattr(self.model, "patcher", None)
        if patcher is not None:
            memory = (self.tile * self.tile * 3) * 4 * max(self.scale, 1.0) * _MEMORY_PER_PIXEL
            memory += x.nelement() * 4
            model_management.load_models_gpu([patcher, *self.also_load], memory_required=memory, force_full_load=True)
        self._loaded = True

    def _run_model(self, tile: torch.Tensor) -> torch.Tensor:
        model_management.throw_exception_if_processing_interrupted()
        return self.model(tile)

    def __call__(self, x: torch.Tensor, index: int = 0) -> torch.Tensor:
        """``x``: float ``[1, 3, H, W]`` in 0..1. Returns float ``[1, 3, H', W']`` in 0..1 on
        ComfyUI's intermediate device (``H', W'`` from :meth:`out_size`)."""
        self._load(x)
        x = channels_last(x, self.device)
        while True:
            overlap = min(self.overlap, self.tile // 2)
            try:
                if x.shape[2] <= self.tile and x.shape[3] <= self.tile:
                    # what tiled_scale does for a frame that fits one tile, minus its output copy
                    out = self._run_model(x).to(self.output_device)
                else:
                    out = comfy.utils.tiled_scale(
                        x, self._run_model, tile_x=self.tile, tile_y=self.tile, overlap=overlap,
                        upscale_amount=self.scale, output_device=self.output_device,
                    )
                break
            except Exception as e:  # noqa: BLE001 - only OOM is handled, the rest re-raised
                model_management.raise_non_oom(e)
                smaller = self.tile // 2
                if smaller < MIN_TILE:
                    raise
                log.warning("myspinbot upscale: out of memory with tile %d on frame %d; retrying with tile %d",
                            self.tile, index, smaller)
                self.halvings.append((self.tile, smaller))
                self.tile = smaller
            model_management.soft_empty_cache()  # after the except block: the failed tile's tensors are freed
        height, width = self.out_size(x.shape[2], x.shape[3])
        if (out.shape[2], out.shape[3]) != (height, width):
            out = F.interpolate(out, size=(height, width), mode="bicubic", align_corners=False, antialias=True)
        return out.clamp_(0.0, 1.0)  # in place: ``out`` is this call's own tensor
