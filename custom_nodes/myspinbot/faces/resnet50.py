"""The ResNet-50 trunk (He et al., "Deep Residual Learning for Image Recognition", CVPR 2016).

torchvision's layout (``torchvision/models/resnet.py`` ``resnet50``: the v1.5 bottleneck with
the stride on the 3x3 conv) without the classifier: keys ``conv1``, ``bn1``,
``layer1``..``layer4`` (3, 4, 6, 3 bottlenecks; ``downsample.0`` / ``.1`` on each stage's
first block). Shared by SadTalker's 3DMM regressor (:mod:`myspinbot.sadtalker.face_recon`)
and RetinaFace (:mod:`.retinaface`), whose checkpoints store it under ``backbone.`` and
``body.``. Imports no ComfyUI module.
"""

from __future__ import annotations

import torch
from torch import nn


class Bottleneck(nn.Module):
    """1x1 -> 3x3 (stride) -> 1x1 x4 with batch norms, ReLU, optional ``downsample`` skip."""

    def __init__(self, cin: int, planes: int, stride: int = 1):
        super().__init__()
        cout = planes * 4
        self.conv1 = nn.Conv2d(cin, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, cout, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(cout)
        self.downsample = None
        if stride != 1 or cin != cout:
            self.downsample = nn.Sequential(nn.Conv2d(cin, cout, 1, stride=stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.relu(self.bn1(self.conv1(x)))
        out = torch.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return torch.relu(out + (self.downsample(x) if self.downsample is not None else x))


class ResNet50Trunk(nn.Module):
    """ResNet-50 up to the global average pool: ``[B, 3, H, W]`` -> ``[B, 2048, 1, 1]``."""

    def __init__(self, layers: tuple[int, int, int, int] = (3, 4, 6, 3)):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        cin = 64
        for i, (planes, blocks) in enumerate(zip((64, 128, 256, 512), layers)):
            stride = 1 if i == 0 else 2
            stage = [Bottleneck(cin, planes, stride)] + [Bottleneck(planes * 4, planes) for _ in range(blocks - 1)]
            setattr(self, f"layer{i + 1}", nn.Sequential(*stage))
            cin = planes * 4

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.max_pool2d(torch.relu(self.bn1(self.conv1(x))), 3, 2, 1)
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return x.mean(dim=(2, 3), keepdim=True)
