"""P-Net, MTCNN's proposal network (Zhang et al., IEEE SPL 2016, fig. 2, stage 1).

Fully convolutional; on a 12 x 12 window it gives one face probability and a box
regression. Layer layout and names follow ``mtcnn/network/pnet.py`` of the ``mtcnn`` wheel
1.0.0 (MIT): conv 3x3 (10) - PReLU - max pool 2/2 "same" - conv 3x3 (16) - PReLU -
conv 3x3 (32) - PReLU - 1x1 heads (4 box offsets, 2-way softmax). Imports no ComfyUI module.
"""

from __future__ import annotations

import torch
from torch import nn

from .layers import max_pool_same


class PNet(nn.Module):
    """``forward(x)``: float32 ``[N, 3, H, W]`` (RGB, ``(pixel - 127.5) / 128``), ``H, W >= 12``
    -> ``(offsets [N, 4, H', W'], probs [N, 2, H', W'])`` with ``H' = ceil((H - 2) / 2) - 4``;
    ``probs[:, 1]`` is the face probability of the 12 x 12 window at stride 2."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 10, 3)
        self.prelu1 = nn.PReLU(10)
        self.conv2 = nn.Conv2d(10, 16, 3)
        self.prelu2 = nn.PReLU(16)
        self.conv3 = nn.Conv2d(16, 32, 3)
        self.prelu3 = nn.PReLU(32)
        self.conv4_1 = nn.Conv2d(32, 4, 1)
        self.conv4_2 = nn.Conv2d(32, 2, 1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = max_pool_same(self.prelu1(self.conv1(x)), 2, 2)
        x = self.prelu2(self.conv2(x))
        x = self.prelu3(self.conv3(x))
        return self.conv4_1(x), torch.softmax(self.conv4_2(x), dim=1)
