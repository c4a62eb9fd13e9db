"""SPADE decoder of SadTalker's renderer, with convolutions under legacy spectral normalisation.

SPADE: Park et al., "Semantic Image Synthesis with Spatially-Adaptive Normalization" (CVPR
2019); spectral normalisation: Miyato et al. (ICLR 2018). SadTalker (Zhang et al., CVPR 2023,
section 3.3) replaces face-vid2vid's image decoder with a SPADE decoder conditioned on the
warped feature map itself. Layout of upstream ``SPADE`` / ``SPADEResnetBlock``
(``src/facerender/modules/util.py``) and ``SPADEDecoder`` (``generator.py``), checkpoint prefix
``generator.decoder.``.

The residual blocks' convolutions were wrapped in ``torch.nn.utils.spectral_norm`` when the
checkpoint was saved, so they are stored as ``weight_orig`` (the raw weight), ``weight_u`` and
``weight_v`` (the power-iteration vectors). :class:`SpectralNormConv2d` keeps exactly those
keys and computes what that wrapper computes in eval mode: no power iteration, the weight
used is ``weight_orig / (u . (W v))`` with ``W`` the weight flattened to
``[out_channels, -1]``. Imports no ComfyUI module.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

SPADE_HIDDEN = 128  # channels of SPADE's shared MLP
SLOPE = 0.2  # leaky ReLU slope of the SPADE blocks


class SpectralNormConv2d(nn.Module):
    """A 2-D convolution stored in the legacy spectral-norm layout, evaluated as in eval mode.

    Keys: ``weight_orig`` ``[out, in, k, k]``, ``bias`` ``[out]`` (when ``bias``),
    ``weight_u`` ``[out]``, ``weight_v`` ``[in * k * k]``. Same padding, stride 1.
    """

    def __init__(self, cin: int, cout: int, kernel: int, *, bias: bool = True):
        super().__init__()
        self.padding = kernel // 2
        self.weight_orig = nn.Parameter(torch.empty(cout, cin, kernel, kernel))
        self.bias = nn.Parameter(torch.zeros(cout)) if bias else None
        self.register_buffer("weight_u", F.normalize(torch.randn(cout), dim=0))
        self.register_buffer("weight_v", F.normalize(torch.randn(cin * kernel * kernel), dim=0))
        nn.init.kaiming_uniform_(self.weight_orig, a=5 ** 0.5)

    def weight(self) -> torch.Tensor:
        """The normalised weight ``weight_orig / sigma``, ``sigma = u . (W v)``."""
        w = self.weight_orig
        sigma = torch.dot(self.weight_u, torch.mv(w.reshape(w.shape[0], -1), self.weight_v))
        return w / sigma

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, self.weight(), self.bias, padding=self.padding)


class Spade(nn.Module):
    """Parameter-free instance norm, then a per-pixel affine predicted from ``segmap``.

    ``forward(x [B, C, H, W], segmap [B, L, h, w]) -> [B, C, H, W]``; ``segmap`` is resized
    (nearest) to ``H x W``.
    """

    def __init__(self, channels: int, label_channels: int):
        super().__init__()
        self.mlp_shared = nn.Sequential(nn.Conv2d(label_channels, SPADE_HIDDEN, 3, padding=1), nn.ReLU())
        self.mlp_gamma = nn.Conv2d(SPADE_HIDDEN, channels, 3, padding=1)
        self.mlp_beta = nn.Conv2d(SPADE_HIDDEN, channels, 3, padding=1)

    def forward(self, x: torch.Tensor, segmap: torch.Tensor) -> torch.Tensor:
        normalized = F.instance_norm(x, eps=1e-5)
        actv = self.mlp_shared(F.interpolate(segmap, size=x.shape[2:], mode="nearest"))
        return normalized * (1 + self.mlp_gamma(actv)) + self.mlp_beta(actv)


class SpadeResBlock(nn.Module):
    """SPADE residual block: two (SPADE, leaky ReLU, spectral-norm 3x3 conv) steps plus a
    shortcut that is learned (SPADE + spectral-norm 1x1 conv, no bias) when channels change."""

    def __init__(self, cin: int, cout: int, label_channels: int):
        super().__init__()
        mid = min(cin, cout)
        self.learned_shortcut = cin != cout
        self.conv_0 = SpectralNormConv2d(cin, mid, 3)
        self.conv_1 = SpectralNormConv2d(mid, cout, 3)
        if self.learned_shortcut:
            self.conv_s = SpectralNormConv2d(cin, cout, 1, bias=False)
        self.norm_0 = Spade(cin, label_channels)
        self.norm_1 = Spade(mid, label_channels)
        if self.learned_shortcut:
            self.norm_s = Spade(cin, label_channels)

    def forward(self, x: torch.Tensor, seg: torch.Tensor) -> torch.Tensor:
        shortcut = self.conv_s(self.norm_s(x, seg)) if self.learned_shortcut else x
        dx = self.conv_0(F.leaky_relu(self.norm_0(x, seg), SLOPE))
        dx = self.conv_1(F.leaky_relu(self.norm_1(dx, seg), SLOPE))
        return shortcut + dx


class SpadeDecoder(nn.Module):
    """Warped features -> image: ``fc``, six 512-channel SPADE blocks, two (2x upsample, SPADE
    block) steps to 256 then 64 channels, ``conv_img`` and a sigmoid.

    ``forward(feature [B, 256, S/4, S/4]) -> [B, 3, S, S]`` RGB in ``0..1`` (S = 256 or 512).
    """

    def __init__(self, channels: int = 256, out_channels: int = 64):
        super().__init__()
        wide = 2 * channels
        self.fc = nn.Conv2d(channels, wide, 3, padding=1)
        for i in range(6):
            setattr(self, f"G_middle_{i}", SpadeResBlock(wide, wide, channels))
        self.up_0 = SpadeResBlock(wide, channels, channels)
        self.up_1 = SpadeResBlock(channels, out_channels, channels)
        self.conv_img = nn.Conv2d(out_channels, 3, 3, padding=1)

    def forward(self, feature: torch.Tensor) -> torch.Tensor:
        x = self.fc(feature)
        for i in range(6):
            x = getattr(self, f"G_middle_{i}")(x, feature)
        x = self.up_0(F.interpolate(x, scale_factor=2), feature)
        x = self.up_1(F.interpolate(x, scale_factor=2), feature)
        return torch.sigmoid(self.conv_img(F.leaky_relu(x, SLOPE)))
