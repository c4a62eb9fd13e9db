"""Dense motion network of the face-vid2vid renderer: keypoint motion -> 3-D warp field + occlusion.

Wang, Mallya & Liu (CVPR 2021), section 3.2: each of the ``K`` keypoint pairs (source,
driving) gives a translation of the whole feature volume; a 3-D hourglass looks at the ``K+1``
warped volumes (the first one unwarped, for the background) and the keypoint heatmap
differences and predicts per-voxel soft masks that mix them into one flow field, plus a 2-D
occlusion map. Layout and maths of upstream ``src/facerender/modules/dense_motion.py``
(``DenseMotionNetwork``, without jacobians) and ``Hourglass`` / ``Encoder`` / ``Decoder`` of
``util.py``. Checkpoint prefix ``generator.dense_motion_network.``. Imports no ComfyUI module.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .blocks import DownBlock3d, UpBlock3d, coordinate_grid, keypoint_gaussians

KP_VARIANCE = 0.01  # of the keypoint Gaussians (face-vid2vid)
MASK_FLOOR = 1e-3  # mask weights below this are zeroed before mixing (upstream)


@dataclass(frozen=True)
class DenseMotionConfig:
    """Sizes of the dense motion network (``dense_motion_params`` upstream)."""

    num_kp: int = 15
    feature_channels: int = 32
    block_expansion: int = 32
    max_features: int = 1024
    num_blocks: int = 5
    reshape_depth: int = 16
    compress: int = 4


class _Hourglass3d(nn.Module):
    """3-D U-Net: ``encoder.down_blocks``, ``decoder.up_blocks`` with skips, ``decoder.conv/norm``."""

    def __init__(self, block_expansion: int, in_channels: int, num_blocks: int, max_features: int):
        super().__init__()

        def width(i: int) -> int:
            return min(max_features, block_expansion * 2 ** i)

        self.encoder = nn.Module()
        self.encoder.down_blocks = nn.ModuleList(
            DownBlock3d(in_channels if i == 0 else width(i), width(i + 1)) for i in range(num_blocks))
        self.decoder = nn.Module()
        self.decoder.up_blocks = nn.ModuleList(
            UpBlock3d((1 if i == num_blocks - 1 else 2) * width(i + 1), width(i)) for i in reversed(range(num_blocks)))
        self.out_channels = block_expansion + in_channels
        self.decoder.conv = nn.Conv3d(self.out_channels, self.out_channels, 3, padding=1)
        self.decoder.norm = nn.BatchNorm3d(self.out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skips = [x]
        for block in self.encoder.down_blocks:
            skips.append(block(skips[-1]))
        out = skips.pop()
        for block in self.decoder.up_blocks:
            out = torch.cat([block(out), skips.pop()], dim=1)
        return F.relu(self.decoder.norm(self.decoder.conv(out)))


class DenseMotionNetwork(nn.Module):
    """Source feature volume + keypoints -> backward warp field and occlusion map.

    ``forward(feature, kp_driving, kp_source)``:

    * ``feature``: ``[B, C, D, H, W]`` the source's 3-D appearance features (C = 32, D = 16,
      H = W = 64 at 256 px).
    * ``kp_driving``, ``kp_source``: ``[B, K, 3]`` keypoints in ``[-1, 1]``.

    Returns ``(deformation, occlusion)``: ``[B, D, H, W, 3]`` sampling coordinates into the
    source volume (for ``grid_sample``) and ``[B, 1, H, W]`` occlusion in ``0..1``.
    """

    def __init__(self, config: DenseMotionConfig | None = None):
        super().__init__()
        cfg = config or DenseMotionConfig()
        self.config = cfg
        self.hourglass = _Hourglass3d(cfg.block_expansion, (cfg.num_kp + 1) * (cfg.compress + 1), cfg.num_blocks,
                                      cfg.max_features)
        self.mask = nn.Conv3d(self.hourglass.out_channels, cfg.num_kp + 1, 7, padding=3)
        self.compress = nn.Conv3d(cfg.feature_channels, cfg.compress, 1)
        self.norm = nn.BatchNorm3d(cfg.compress)
        self.occlusion = nn.Conv2d(self.hourglass.out_channels * cfg.reshape_depth, 1, 7, padding=3)

    def forward(self, feature: torch.Tensor, kp_driving: torch.Tensor,
                kp_source: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        b, _, d, h, w = feature.shape
        k = self.config.num_kp
        feature = F.relu(self.norm(self.compress(feature)))
        c = feature.shape[1]

        # K+1 candidate motions: identity (background), then one translation per keypoint.
        identity = coordinate_grid((d, h, w), feature)[None, None]  # [1, 1, d, h, w, 3]
        shifted = identity - kp_driving[:, :, None, None, None, :] + kp_source[:, :, None, None, None, :]
        motions = torch.cat([identity.expand(b, 1, d, h, w, 3), shifted], dim=1)  # [b, k+1, d, h, w, 3]

        repeated = feature[:, None].expand(b, k + 1, c, d, h, w).reshape(b * (k + 1), c, d, h, w)
        deformed = F.grid_sample(repeated, motions.reshape(b * (k + 1), d, h, w, 3), align_corners=False)
        deformed = deformed.view(b, k + 1, c, d, h, w)

        heat = keypoint_gaussians(kp_driving, (d, h, w), KP_VARIANCE) - \
            keypoint_gaussians(kp_source, (d, h, w), KP_VARIANCE)
        heat = torch.cat([heat.new_zeros(b, 1, d, h, w), heat], dim=1)[:, :, None]  # [b, k+1, 1, d, h, w]

        prediction = self.hourglass(torch.cat([heat, deformed], dim=2).view(b, -1, d, h, w))
        mask = F.softmax(self.mask(prediction), dim=1)
        mask = torch.where(mask < MASK_FLOOR, torch.zeros_like(mask), mask)[:, :, None]  # [b, k+1, 1, d, h, w]
        deformation = (motions.permute(0, 1, 5, 2, 3, 4) * mask).sum(dim=1).permute(0, 2, 3, 4, 1)

        occlusion = torch.sigmoid(self.occlusion(prediction.reshape(b, -1, h, w)))
        return deformation, occlusion
