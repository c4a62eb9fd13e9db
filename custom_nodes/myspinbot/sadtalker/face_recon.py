"""3DMM coefficient regressor (checkpoint prefix ``face_3drecon.``, 332 tensors).

Deng et al., "Accurate 3D Face Reconstruction with Weakly-Supervised Learning: From Single
Image to Image Set" (CVPRW 2019), the "Deep3DFaceRecon" network SadTalker uses to read the
source portrait's coefficients (SadTalker, CVPR 2023, section 3): a ResNet-50 (He et al., CVPR
2016; torchvision's v1.5 bottleneck with the stride on the 3x3 conv) without its classifier,
then seven 1x1 convolutions giving 80 identity, 64 expression, 80 texture, 3 angle, 27
lighting, 2 + 1 translation = 257 coefficients. Layout of upstream ``ReconNetWrapper`` with
``resnet50(use_last_fc=False)`` (``src/face3d/models/networks.py``). Imports no ComfyUI module.
"""

from __future__ import annotations

import torch
from torch import nn

HEADS = (80, 64, 80, 3, 27, 2, 1)  # id, exp, tex, angle, gamma (lighting), (tx, ty), tz
COEFFS = sum(HEADS)  # 257


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


class FaceReconNet(nn.Module):
    """Aligned face crop -> 257 3DMM coefficients.

    Input: ``[B, 3, 224, 224]`` float RGB in ``0..1`` (the crop aligned to the 5-point
    standard). Output: ``[B, 257]``: id 0:80, exp 80:144, tex 144:224, angle 224:227,
    gamma 227:254, translation 254:257.
    """

    def __init__(self) -> None:
        super().__init__()
        self.backbone = ResNet50Trunk()
        self.final_layers = nn.ModuleList(nn.Conv2d(2048, n, 1) for n in HEADS)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        x = self.backbone(image)
        return torch.cat([layer(x) for layer in self.final_layers], dim=1).flatten(1)
