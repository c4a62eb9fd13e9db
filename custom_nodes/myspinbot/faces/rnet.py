"""R-Net, MTCNN's refinement network (Zhang et al., IEEE SPL 2016, fig. 2, stage 2).

Scores and refines each P-Net candidate resampled to 24 x 24. Layer layout and names follow
``mtcnn/network/rnet.py`` of the ``mtcnn`` wheel 1.0.0 (MIT): conv 3x3 (28) - PReLU - max pool
3/2 "same" - conv 3x3 (48) - PReLU - max pool 3/2 "valid" - conv 2x2 (64) - PReLU - Keras
permute + flatten (576) - dense 128 - PReLU - heads (4 box offsets, 2-way softmax).
Imports no ComfyUI module.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .layers import keras_flatten, max_pool_same


class RNet(nn.Module):
    """``forward(x)``: float32 ``[N, 3, 24, 24]`` (RGB, ``(pixel - 127.5) / 128``) ->
    ``(offsets [N, 4], probs [N, 2])``; offsets are fractions of the box width/height added to
    ``x1, y1, x2, y2``; ``probs[:, 1]`` is the face probability."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 28, 3)
        self.prelu1 = nn.PReLU(28)
        self.conv2 = nn.Conv2d(28, 48, 3)
        self.prelu2 = nn.PReLU(48)
        self.conv3 = nn.Conv2d(48, 64, 2)
        self.prelu3 = nn.PReLU(64)
        self.fc4 = nn.Linear(576, 128)  # 3 x 3 x 64, Keras (w, h, c) order
        self.prelu4 = nn.PReLU(128)
        self.fc5_1 = nn.Linear(128, 4)
        self.fc5_2 = nn.Linear(128, 2)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = max_pool_same(self.prelu1(self.conv1(x)), 3, 2)
        x = F.max_pool2d(self.prelu2(self.conv2(x)), 3, 2)
        x = self.prelu3(self.conv3(x))
        x = self.prelu4(self.fc4(keras_flatten(x)))
        return self.fc5_1(x), torch.softmax(self.fc5_2(x), dim=1)
