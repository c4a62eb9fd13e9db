"""Canonical 3-D keypoint detector of the face-vid2vid renderer.

Wang, Mallya & Liu, "One-Shot Free-View Neural Talking-Head Synthesis for Video
Conferencing" (CVPR 2021), section 3.1: the source image gives ``K`` canonical 3-D keypoints
as the soft-argmax of ``K`` heatmaps over a ``16``-deep feature volume. Layout and maths of
upstream ``src/facerender/modules/keypoint_detector.py`` (``KPDetector``, without the unused
jacobian head, ``estimate_jacobian: False`` in ``src/config/facerender.yaml``) and
``KPHourglass`` of ``util.py``. Checkpoint prefix ``kp_extractor.`` (75 tensors).
Imports no ComfyUI module.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .blocks import AntiAliasDownsample, ConvNorm2d, UpBlock3d, coordinate_grid


@dataclass(frozen=True)
class KeypointConfig:
    """Sizes of the keypoint detector (``kp_detector_params`` + ``common_params`` upstream)."""

    num_kp: int = 15
    image_channels: int = 3
    block_expansion: int = 32
    max_features: int = 1024
    num_blocks: int = 5
    reshape_channels: int = 16384
    reshape_depth: int = 16
    temperature: float = 0.1
    scale_factor: float = 0.25


class _Hourglass2dTo3d(nn.Module):
    """2-D encoder, 1x1 conv to ``reshape_channels``, reshape to a volume, 3-D decoder (``KPHourglass``)."""

    def __init__(self, cfg: KeypointConfig):
        super().__init__()

        def width(i: int) -> int:
            return min(cfg.max_features, cfg.block_expansion * 2 ** i)

        self.down_blocks = nn.Sequential()
        for i in range(cfg.num_blocks):
            cin = cfg.image_channels if i == 0 else width(i)
            self.down_blocks.add_module(f"down{i}", ConvNorm2d(cin, width(i + 1), pool=True))
        self.conv = nn.Conv2d(width(cfg.num_blocks), cfg.reshape_channels, 1)
        self.up_blocks = nn.Sequential()
        for i in range(cfg.num_blocks):
            self.up_blocks.add_module(f"up{i}", UpBlock3d(width(cfg.num_blocks - i), width(cfg.num_blocks - i - 1)))
        self.depth = cfg.reshape_depth
        self.out_channels = width(0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv(self.down_blocks(x))
        b, c, h, w = out.shape
        return self.up_blocks(out.view(b, c // self.depth, self.depth, h, w))


class KeypointDetector(nn.Module):
    """Image -> ``K`` canonical keypoints.

    Input: ``[B, 3, S, S]`` float RGB in ``0..1`` (``S`` = 256 or 512; the image is first
    blurred and subsampled by ``scale_factor``). Output: ``[B, K, 3]`` keypoints ``(x, y, z)``
    in ``[-1, 1]``, dtype of the input.
    """

    def __init__(self, config: KeypointConfig | None = None):
        super().__init__()
        cfg = config or KeypointConfig()
        self.config = cfg
        self.predictor = _Hourglass2dTo3d(cfg)
        self.kp = nn.Conv3d(self.predictor.out_channels, cfg.num_kp, 3, padding=1)
        self.down = AntiAliasDownsample(cfg.image_channels, cfg.scale_factor) if cfg.scale_factor != 1 else None

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        x = self.down(image) if self.down is not None else image
        logits = self.kp(self.predictor(x))
        b, k, d, h, w = logits.shape
        heat = F.softmax(logits.view(b, k, -1) / self.config.temperature, dim=2).view(b, k, d, h, w, 1)
        grid = coordinate_grid((d, h, w), logits)
        return (heat * grid).sum(dim=(2, 3, 4))
