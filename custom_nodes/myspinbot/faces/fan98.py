"""The 98-point face alignment network: four stacked hourglasses with CoordConv and a boundary map.

Wang, Bo and Fuxin, "Adaptive Wing Loss for Robust Face Alignment via Heatmap Regression"
(ICCV 2019), the network of the ``alignment_WFLW_4HG.pth`` file (WFLW's 98 landmarks, four
hourglasses) that facexlib publishes and SadTalker's authors use. Layout of facexlib
``alignment/awing_arch.py`` (``FAN(num_modules=4, num_landmarks=98)``; SadTalker's
``src/face3d/util/my_awing_arch.py`` is the same file), itself from protossw512/AdaptiveWingLoss:

* stem: CoordConv 7x7 stride 2 (``conv1.conv``, RGB + 3 coordinate channels, with bias),
  BN + ReLU, the pre-activation bottleneck ``conv2`` (64 -> 128), 2x2 average pool, ``conv3``
  (128 -> 128), ``conv4`` (128 -> 256): ``[B, 3, 256, 256]`` -> ``[B, 256, 64, 64]``.
* each stack ``i``: hourglass ``m{i}`` (a 1x1 CoordConv, then four levels of average-pool /
  bottleneck / nearest-upsample with a bottleneck skip per level), ``top_m_{i}``,
  ``conv_last{i}`` + ``bn_end{i}`` + ReLU, and ``l{i}``: 99 heatmaps (98 landmarks + a
  boundary map); between stacks ``bl{i}`` and ``al{i}`` (1x1 convs) add the features and the
  heatmaps back to the stack's input.
* CoordConv channels appended to the input: the row coordinate and the column coordinate,
  each mapped to -1..1 over the map, their radius divided by its maximum, and, in stacks 2-4,
  the row and column coordinates masked to where the previous stack's boundary map
  (clamped to 0..1) exceeds 0.05.
* bottleneck (``ConvBlock``): BN-ReLU-conv3x3 to C/2, then C/4, then C/4, outputs
  concatenated, plus the input (through BN-ReLU-1x1 conv when the width changes).

Imports no ComfyUI module.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

POINTS = 98
STACKS = 4
DEPTH = 4  # hourglass levels
WIDTH = 256
INPUT_SIZE = 256  # pixels
HEATMAP_SIZE = 64


def coordinate_channels(x: torch.Tensor, boundary: torch.Tensor | None) -> torch.Tensor:
    """``x`` ``[B, C, H, W]`` with the CoordConv channels appended (3, or 5 with ``boundary``
    ``[B, 1, H, W]``)."""
    b, _, h, w = x.shape
    rows = (torch.arange(h, device=x.device, dtype=torch.float32) / (h - 1) * 2 - 1)
    cols = (torch.arange(w, device=x.device, dtype=torch.float32) / (w - 1) * 2 - 1)
    row_map = rows[:, None].expand(h, w)
    col_map = cols[None, :].expand(h, w)
    radius = torch.sqrt(row_map ** 2 + col_map ** 2)
    radius = radius / radius.max()
    extra = [row_map, col_map, radius]
    if boundary is not None:
        near = boundary.clamp(0.0, 1.0) > 0.05
        zero = torch.zeros((), device=x.device)
        masked = [torch.where(near[:, 0], row_map, zero), torch.where(near[:, 0], col_map, zero)]
        coords = torch.stack(extra, dim=0)[None].expand(b, 3, h, w)
        return torch.cat([x, coords.to(x.dtype), torch.stack(masked, dim=1).to(x.dtype)], dim=1)
    return torch.cat([x, torch.stack(extra, dim=0)[None].expand(b, 3, h, w).to(x.dtype)], dim=1)


class CoordConv(nn.Module):
    """Coordinate channels appended, then one convolution (key ``conv``)."""

    def __init__(self, cin: int, cout: int, kernel: int, stride: int = 1, padding: int = 0):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, kernel, stride, padding)

    def forward(self, x: torch.Tensor, boundary: torch.Tensor | None = None) -> torch.Tensor:
        return self.conv(coordinate_channels(x, boundary))


class ConvBlock(nn.Module):
    """Pre-activation multi-scale bottleneck: ``[B, cin, H, W]`` -> ``[B, cout, H, W]``."""

    def __init__(self, cin: int, cout: int):
        super().__init__()
        half, quarter = cout // 2, cout // 4
        self.bn1 = nn.BatchNorm2d(cin)
        self.conv1 = nn.Conv2d(cin, half, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(half)
        self.conv2 = nn.Conv2d(half, quarter, 3, 1, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(quarter)
        self.conv3 = nn.Conv2d(quarter, quarter, 3, 1, 1, bias=False)
        self.downsample = None
        if cin != cout:
            self.downsample = nn.Sequential(nn.BatchNorm2d(cin), nn.ReLU(), nn.Conv2d(cin, cout, 1, bias=False))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = self.conv1(torch.relu(self.bn1(x)))
        b = self.conv2(torch.relu(self.bn2(a)))
        c = self.conv3(torch.relu(self.bn3(b)))
        skip = x if self.downsample is None else self.downsample(x)
        return torch.cat([a, b, c], dim=1) + skip


class Hourglass(nn.Module):
    """1x1 CoordConv then a ``depth``-level hourglass of :class:`ConvBlock` s (256 channels).

    Keys per level ``n`` (``depth`` .. 1): ``b1_n`` (skip), ``b2_n`` (after the pool),
    ``b3_n`` (before the upsample), and ``b2_plus_1`` at the bottom.
    """

    def __init__(self, first: bool, depth: int = DEPTH, width: int = WIDTH):
        super().__init__()
        self.depth = depth
        self.coordconv = CoordConv(width + (3 if first else 5), width, 1)
        for level in range(depth, 0, -1):
            self.add_module(f"b1_{level}", ConvBlock(width, width))
            self.add_module(f"b2_{level}", ConvBlock(width, width))
        self.add_module("b2_plus_1", ConvBlock(width, width))
        for level in range(1, depth + 1):
            self.add_module(f"b3_{level}", ConvBlock(width, width))

    def _level(self, level: int, x: torch.Tensor) -> torch.Tensor:
        skip = self._modules[f"b1_{level}"](x)
        low = self._modules[f"b2_{level}"](F.avg_pool2d(x, 2, stride=2))
        low = self._level(level - 1, low) if level > 1 else self._modules["b2_plus_1"](low)
        low = self._modules[f"b3_{level}"](low)
        return skip + F.interpolate(low, scale_factor=2, mode="nearest")

    def forward(self, x: torch.Tensor, boundary: torch.Tensor | None) -> torch.Tensor:
        return self._level(self.depth, self.coordconv(x, boundary))


class FAN98(nn.Module):
    """Face crop -> heatmaps of every stack.

    Input: float ``[B, 3, 256, 256]`` in ``0..1`` (channel order as the caller prepares it,
    see :mod:`.fan98_points`). Output: list of ``STACKS`` tensors ``[B, 99, 64, 64]``: 98
    landmark heatmaps then the boundary map; the last stack's is the prediction.
    """

    def __init__(self, points: int = POINTS, stacks: int = STACKS):
        super().__init__()
        self.stacks = stacks
        self.conv1 = CoordConv(3 + 3, 64, 7, stride=2, padding=3)
        self.bn1 = nn.BatchNorm2d(64)
        self.conv2 = ConvBlock(64, 128)
        self.conv3 = ConvBlock(128, 128)
        self.conv4 = ConvBlock(128, WIDTH)
        for i in range(stacks):
            self.add_module(f"m{i}", Hourglass(first=i == 0))
            self.add_module(f"top_m_{i}", ConvBlock(WIDTH, WIDTH))
            self.add_module(f"conv_last{i}", nn.Conv2d(WIDTH, WIDTH, 1))
            self.add_module(f"bn_end{i}", nn.BatchNorm2d(WIDTH))
            self.add_module(f"l{i}", nn.Conv2d(WIDTH, points + 1, 1))
            if i < stacks - 1:
                self.add_module(f"bl{i}", nn.Conv2d(WIDTH, WIDTH, 1))
                self.add_module(f"al{i}", nn.Conv2d(points + 1, WIDTH, 1))

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        x = torch.relu(self.bn1(self.conv1(x)))
        x = self.conv4(self.conv3(F.avg_pool2d(self.conv2(x), 2, stride=2)))
        features, heatmaps, outputs = x, None, []
        for i in range(self.stacks):
            boundary = None if heatmaps is None else heatmaps[:, -1:]
            y = self._modules[f"top_m_{i}"](self._modules[f"m{i}"](features, boundary))
            y = torch.relu(self._modules[f"bn_end{i}"](self._modules[f"conv_last{i}"](y)))
            heatmaps = self._modules[f"l{i}"](y)
            outputs.append(heatmaps)
            if i < self.stacks - 1:
                features = features + self._modules[f"bl{i}"](y) + self._modules[f"al{i}"](heatmaps)
        return outputs
