"""Convolution blocks and coordinate helpers shared by the face-vid2vid renderer.

The renderer is face-vid2vid (Wang, Mallya & Liu, "One-Shot Free-View Neural Talking-Head
Synthesis for Video Conferencing", CVPR 2021) as SadTalker ships it; the blocks follow the
key layout of upstream ``src/facerender/modules/util.py`` (OpenTalker/SadTalker): every
block is ``conv`` then ``norm`` (batch norm with affine parameters and running statistics;
the authors' synchronised batch norm stores the same keys and, in eval mode, computes the
same thing). Imports no ComfyUI module.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def coordinate_grid(spatial: tuple[int, ...], like: torch.Tensor) -> torch.Tensor:
    """A regular grid over ``[-1, 1]`` per axis, last dimension ordered ``(x, y[, z])``.

    Args:
        spatial: ``(h, w)`` or ``(d, h, w)``; every size must be at least 2.
        like: a tensor giving the dtype and device.

    Returns:
        ``[h, w, 2]`` or ``[d, h, w, 3]``: ``x`` varies along ``w``, ``y`` along ``h``,
        ``z`` along ``d``.
    """
    axes = [torch.linspace(-1.0, 1.0, n, dtype=like.dtype, device=like.device) for n in spatial]
    mesh = torch.meshgrid(*axes, indexing="ij")  # (z,) y, x
    return torch.stack(mesh[::-1], dim=-1)


def keypoint_gaussians(kp: torch.Tensor, spatial: tuple[int, int, int], variance: float) -> torch.Tensor:
    """Isotropic Gaussians centred on 3-D keypoints, sampled on :func:`coordinate_grid`.

    Args:
        kp: ``[B, K, 3]`` keypoints in ``[-1, 1]`` (``x, y, z``).
        spatial: ``(d, h, w)`` of the volume.
        variance: the Gaussians' variance (0.01 in face-vid2vid).

    Returns:
        ``[B, K, d, h, w]``, peak value 1.
    """
    grid = coordinate_grid(spatial, kp)
    diff = grid[None, None] - kp[:, :, None, None, None, :]
    return torch.exp(-0.5 * (diff ** 2).sum(-1) / variance)


class ConvNorm2d(nn.Module):
    """``conv`` (2-D) -> ``norm`` (batch norm) -> ReLU or LeakyReLU(0.01); optional 2x2 average pool.

    Upstream ``SameBlock2d`` (no pool) and ``DownBlock2d`` (pool) of ``util.py``.
    """

    def __init__(self, cin: int, cout: int, kernel: int = 3, padding: int = 1, *, pool: bool = False,
                 leaky: bool = False):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, kernel, padding=padding)
        self.norm = nn.BatchNorm2d(cout)
        self.pool = pool
        self.leaky = leaky

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.norm(self.conv(x))
        x = F.leaky_relu(x) if self.leaky else F.relu(x)
        return F.avg_pool2d(x, 2) if self.pool else x


class DownBlock3d(nn.Module):
    """``conv`` (3-D, 3x3x3) -> batch norm -> ReLU -> average pool ``(1, 2, 2)`` (upstream ``DownBlock3d``)."""

    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.conv = nn.Conv3d(cin, cout, 3, padding=1)
        self.norm = nn.BatchNorm3d(cout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.avg_pool3d(F.relu(self.norm(self.conv(x))), (1, 2, 2))


class UpBlock2d(nn.Module):
    """Nearest 2x upsampling -> ``conv`` -> batch norm -> ReLU (upstream ``UpBlock2d``)."""

    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, 3, padding=1)
        self.norm = nn.BatchNorm2d(cout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.norm(self.conv(F.interpolate(x, scale_factor=2))))


class UpBlock3d(nn.Module):
    """Nearest ``(1, 2, 2)`` upsampling -> ``conv`` (3-D) -> batch norm -> ReLU (upstream ``UpBlock3d``)."""

    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.conv = nn.Conv3d(cin, cout, 3, padding=1)
        self.norm = nn.BatchNorm3d(cout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.norm(self.conv(F.interpolate(x, scale_factor=(1.0, 2.0, 2.0)))))


class PreActResBlock(nn.Module):
    """Pre-activation residual block: ``x + conv2(relu(norm2(conv1(relu(norm1(x))))))``.

    Upstream ``ResBlock2d`` / ``ResBlock3d`` (3x3 kernels, channels kept).
    """

    def __init__(self, channels: int, dims: int):
        super().__init__()
        conv, norm = (nn.Conv2d, nn.BatchNorm2d) if dims == 2 else (nn.Conv3d, nn.BatchNorm3d)
        self.conv1 = conv(channels, channels, 3, padding=1)
        self.conv2 = conv(channels, channels, 3, padding=1)
        self.norm1 = norm(channels)
        self.norm2 = norm(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv1(F.relu(self.norm1(x)))
        return x + self.conv2(F.relu(self.norm2(out)))


class AntiAliasDownsample(nn.Module):
    """Gaussian blur then keep every ``1/scale``-th pixel (upstream ``AntiAliasInterpolation2d``).

    The kernel is a persistent buffer named ``weight`` (it is in the checkpoint):
    ``[channels, 1, k, k]`` with ``sigma = (1/scale - 1) / 2`` and ``k = 2 round(4 sigma) + 1``.
    """

    def __init__(self, channels: int, scale: float):
        super().__init__()
        sigma = (1.0 / scale - 1.0) / 2.0
        size = 2 * round(sigma * 4) + 1
        self.pad = size // 2
        self.step = int(1.0 / scale)
        mean = (size - 1) / 2.0
        r = torch.arange(size, dtype=torch.float32)
        g = torch.exp(-((r - mean) ** 2) / (2.0 * sigma ** 2))
        kernel = g[:, None] * g[None, :]
        kernel = kernel / kernel.sum()
        self.register_buffer("weight", kernel[None, None].repeat(channels, 1, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.conv2d(F.pad(x, (self.pad,) * 4), self.weight, groups=x.shape[1])
        return out[:, :, :: self.step, :: self.step]
