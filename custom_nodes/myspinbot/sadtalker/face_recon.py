"""3DMM coefficient regressor (checkpoint prefix ``face_3drecon.``, 332 tensors).

Deng et al., "Accurate 3D Face Reconstruction with Weakly-Supervised Learning: From Single
Image to Image Set" (CVPRW 2019), the "Deep3DFaceRecon" network SadTalker uses to read the
source portrait's coefficients (SadTalker, CVPR 2023, section 3): a ResNet-50 (He et al., CVPR
2016; torchvision's v1.5 bottleneck with the stride on the 3x3 conv;
:mod:`myspinbot.faces.resnet50`, shared with RetinaFace) without its classifier, then seven
1x1 convolutions giving 80 identity, 64 expression, 80 texture, 3 angle, 27 lighting,
2 + 1 translation = 257 coefficients. Layout of upstream ``ReconNetWrapper`` with
``resnet50(use_last_fc=False)`` (``src/face3d/models/networks.py``). Imports no ComfyUI module.
"""

from __future__ import annotations

import torch
from torch import nn

from ..faces.resnet50 import ResNet50Trunk

HEADS = (80, 64, 80, 3, 27, 2, 1)  # id, exp, tex, angle, gamma (lighting), (tx, ty), tz
COEFFS = sum(HEADS)  # 257


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
