"""Occlusion-aware SPADE generator: SadTalker's face renderer (checkpoint prefix ``generator.``).

Zhang et al., "SadTalker: Learning Realistic 3D Motion Coefficients for Stylized Audio-Driven
Single Image Talking Face Animation" (CVPR 2023), section 3.3, built on face-vid2vid (Wang,
Mallya & Liu, CVPR 2021): the source image is encoded into a 3-D feature volume, warped by the
dense motion field that the keypoint pairs imply, masked by the occlusion map and decoded by a
SPADE decoder. Layout and maths of upstream ``OcclusionAwareSPADEGenerator``
(``src/facerender/modules/generator.py``) with ``generator_params`` of
``src/config/facerender.yaml``; 386 tensors. Imports no ComfyUI module.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from .blocks import ConvNorm2d, PreActResBlock
from .dense_motion import DenseMotionConfig, DenseMotionNetwork
from .spade import SpadeDecoder


@dataclass(frozen=True)
class GeneratorConfig:
    """Sizes of the generator (``generator_params`` + ``common_params`` upstream)."""

    image_channels: int = 3
    block_expansion: int = 64
    max_features: int = 512
    num_down_blocks: int = 2
    reshape_channels: int = 32
    reshape_depth: int = 16
    num_resblocks: int = 6
    dense_motion: DenseMotionConfig = field(default_factory=DenseMotionConfig)


class OcclusionAwareSpadeGenerator(nn.Module):
    """Source image + source/driving keypoints -> rendered frame.

    ``forward(source, kp_driving, kp_source)``: ``source`` ``[B, 3, S, S]`` RGB ``0..1``;
    keypoints ``[B, K, 3]`` in ``[-1, 1]``. Returns ``[B, 3, S, S]`` RGB ``0..1``.
    :meth:`encode` and :meth:`render` split the work so a video encodes its source once.
    """

    def __init__(self, config: GeneratorConfig | None = None):
        super().__init__()
        cfg = config or GeneratorConfig()
        self.config = cfg
        self.dense_motion_network = DenseMotionNetwork(cfg.dense_motion)
        self.first = ConvNorm2d(cfg.image_channels, cfg.block_expansion)
        widths = [min(cfg.max_features, cfg.block_expansion * 2 ** i) for i in range(cfg.num_down_blocks + 1)]
        self.down_blocks = nn.ModuleList(
            ConvNorm2d(widths[i], widths[i + 1], pool=True) for i in range(cfg.num_down_blocks))
        self.second = nn.Conv2d(widths[-1], cfg.max_features, 1)
        self.resblocks_3d = nn.Sequential()
        for i in range(cfg.num_resblocks):
            self.resblocks_3d.add_module(f"3dr{i}", PreActResBlock(cfg.reshape_channels, dims=3))
        out = cfg.block_expansion * 2 ** cfg.num_down_blocks
        self.third = ConvNorm2d(cfg.max_features, out, leaky=True)
        self.fourth = nn.Conv2d(out, out, 1)
        self.decoder = SpadeDecoder(out)

    def encode(self, source: torch.Tensor) -> torch.Tensor:
        """``[B, 3, S, S]`` -> the appearance volume ``[B, 32, 16, S/4, S/4]``."""
        out = self.first(source)
        for block in self.down_blocks:
            out = block(out)
        out = self.second(out)
        b, _, h, w = out.shape
        return self.resblocks_3d(out.view(b, self.config.reshape_channels, self.config.reshape_depth, h, w))

    def render(self, volume: torch.Tensor, kp_driving: torch.Tensor, kp_source: torch.Tensor) -> torch.Tensor:
        """Warp the appearance volume (from :meth:`encode`) to the driving keypoints and decode."""
        deformation, occlusion = self.dense_motion_network(volume, kp_driving, kp_source)
        if deformation.shape[1:4] != volume.shape[2:]:
            deformation = F.interpolate(deformation.permute(0, 4, 1, 2, 3), size=volume.shape[2:],
                                        mode="trilinear").permute(0, 2, 3, 4, 1)
        out = F.grid_sample(volume, deformation, align_corners=False)
        b, c, d, h, w = out.shape
        out = self.fourth(self.third(out.view(b, c * d, h, w)))
        if out.shape[2:] != occlusion.shape[2:]:
            occlusion = F.interpolate(occlusion, size=out.shape[2:], mode="bilinear")
        return self.decoder(out * occlusion)

    def forward(self, source: torch.Tensor, kp_driving: torch.Tensor, kp_source: torch.Tensor) -> torch.Tensor:
        return self.render(self.encode(source), kp_driving, kp_source)
