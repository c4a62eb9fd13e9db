"""RetinaFace with a ResNet-50 backbone: face scores, boxes and five landmarks per anchor.

Deng et al., "RetinaFace: Single-shot Multi-level Face Localisation in the Wild" (CVPR 2020),
the network of the ``detection_Resnet50_Final.pth`` file that facexlib publishes and
SadTalker's authors use to find the face. Layout of facexlib ``detection/retinaface.py``
(``RetinaFace(network_name='resnet50')``) and ``detection/retinaface_net.py`` (``FPN``,
``SSH``, the three heads), itself from biubug6/Pytorch_Retinaface:

* ``body.*``: torchvision's ResNet-50 without its classifier (stride on the 3x3 conv);
  the outputs of ``layer2`` / ``layer3`` / ``layer4`` (512 / 1024 / 2048 channels, strides
  8 / 16 / 32) feed the pyramid. The trunk is :class:`~.resnet50.ResNet50Trunk`
  (same key names), run here up to each stage.
* ``fpn.*``: 1x1 lateral conv + BN + ReLU per level to 256 channels; the coarser level,
  upsampled (nearest) to the finer one's size, is added and smoothed by a 3x3 conv + BN + ReLU
  (``merge2`` then ``merge1``).
* ``ssh1..3``: the SSH context module per level: a 3x3 branch (128 channels) and two stacked
  3x3 branches standing in for 5x5 and 7x7 (64 each, sharing the first conv), concatenated,
  ReLU. Intermediate convs have BN and ReLU (leaky slope 0 at 256 channels).
* ``ClassHead`` / ``BboxHead`` / ``LandmarkHead`` ``.{0,1,2}.conv1x1``: per level a 1x1 conv
  with two anchors per cell: 2 logits, 4 box offsets, 10 landmark offsets per anchor.

Anchors are ordered level by level, then row, column, anchor (as :func:`.retinaface_decode.priors`).
Imports no ComfyUI module.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .resnet50 import ResNet50Trunk

CHANNELS = 256  # pyramid and SSH width
STAGE_CHANNELS = (512, 1024, 2048)  # ResNet-50 layer2..4
ANCHORS = 2  # per cell and level


def _conv_bn(cin: int, cout: int, kernel: int, relu: bool) -> nn.Sequential:
    """conv (no bias) -> BN [-> ReLU]; keys ``0.weight`` and ``1.*`` as upstream's Sequential."""
    layers: list[nn.Module] = [nn.Conv2d(cin, cout, kernel, 1, kernel // 2, bias=False), nn.BatchNorm2d(cout)]
    if relu:
        layers.append(nn.ReLU())
    return nn.Sequential(*layers)


class Pyramid(nn.Module):
    """Three ResNet stages -> three 256-channel maps of the same sizes (top-down sums)."""

    def __init__(self, stages: tuple[int, int, int] = STAGE_CHANNELS, width: int = CHANNELS):
        super().__init__()
        self.output1, self.output2, self.output3 = (_conv_bn(c, width, 1, True) for c in stages)
        self.merge1 = _conv_bn(width, width, 3, True)
        self.merge2 = _conv_bn(width, width, 3, True)

    def forward(self, c3: torch.Tensor, c4: torch.Tensor, c5: torch.Tensor) -> list[torch.Tensor]:
        p5 = self.output3(c5)
        p4 = self.merge2(self.output2(c4) + F.interpolate(p5, size=c4.shape[-2:], mode="nearest"))
        p3 = self.merge1(self.output1(c3) + F.interpolate(p4, size=c3.shape[-2:], mode="nearest"))
        return [p3, p4, p5]


class ContextModule(nn.Module):
    """SSH context module: ``[B, C, H, W]`` -> ``[B, C, H, W]`` (C/2 + C/4 + C/4 channels, ReLU)."""

    def __init__(self, width: int = CHANNELS):
        super().__init__()
        half, quarter = width // 2, width // 4
        self.conv3X3 = _conv_bn(width, half, 3, False)
        self.conv5X5_1 = _conv_bn(width, quarter, 3, True)
        self.conv5X5_2 = _conv_bn(quarter, quarter, 3, False)
        self.conv7X7_2 = _conv_bn(quarter, quarter, 3, True)
        self.conv7x7_3 = _conv_bn(quarter, quarter, 3, False)  # lower-case x as in the checkpoint

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shared = self.conv5X5_1(x)
        wide = self.conv5X5_2(shared)
        widest = self.conv7x7_3(self.conv7X7_2(shared))
        return torch.relu(torch.cat([self.conv3X3(x), wide, widest], dim=1))


class _Head(nn.Module):
    """1x1 conv -> ``[B, H * W * anchors, values]`` (cells row-major, anchors innermost)."""

    def __init__(self, values: int, width: int = CHANNELS, anchors: int = ANCHORS):
        super().__init__()
        self.values = values
        self.conv1x1 = nn.Conv2d(width, anchors * values, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv1x1(x).permute(0, 2, 3, 1)
        return out.reshape(out.shape[0], -1, self.values)


class RetinaFace(nn.Module):
    """RetinaFace-ResNet50: 456 state-dict entries, BN counters included.

    Input: float ``[B, 3, H, W]`` BGR pixels ``0..255`` minus the mean ``(104, 117, 123)``
    (:func:`.retinaface_decode.detect` prepares it), any ``H``, ``W``.
    Output: ``(boxes [B, A, 4], scores [B, A, 2], landmarks [B, A, 10])`` raw offsets per
    anchor (``A`` = anchors of all three levels) and softmax class probabilities
    (column 1: face).
    """

    def __init__(self) -> None:
        super().__init__()
        self.body = ResNet50Trunk()
        self.fpn = Pyramid()
        self.ssh1, self.ssh2, self.ssh3 = ContextModule(), ContextModule(), ContextModule()
        self.ClassHead = nn.ModuleList(_Head(2) for _ in range(3))
        self.BboxHead = nn.ModuleList(_Head(4) for _ in range(3))
        self.LandmarkHead = nn.ModuleList(_Head(10) for _ in range(3))

    def stages(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The ResNet-50 ``layer2``, ``layer3``, ``layer4`` outputs."""
        b = self.body
        x = torch.max_pool2d(torch.relu(b.bn1(b.conv1(x))), 3, 2, 1)
        c3 = b.layer2(b.layer1(x))
        c4 = b.layer3(c3)
        return c3, c4, b.layer4(c4)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        levels = self.fpn(*self.stages(x))
        feats = [ssh(p) for ssh, p in zip((self.ssh1, self.ssh2, self.ssh3), levels)]
        boxes = torch.cat([h(f) for h, f in zip(self.BboxHead, feats)], dim=1)
        logits = torch.cat([h(f) for h, f in zip(self.ClassHead, feats)], dim=1)
        points = torch.cat([h(f) for h, f in zip(self.LandmarkHead, feats)], dim=1)
        return boxes, torch.softmax(logits, dim=-1), points
