"""O-Net, MTCNN's output network (Zhang et al., IEEE SPL 2016, fig. 2, stage 3).

Scores each R-Net box resampled to 48 x 48, refines it and places the five facial landmarks.
Layer layout and names follow ``mtcnn/network/onet.py`` of the ``mtcnn`` wheel 1.0.0 (MIT):
conv 3x3 (32) - PReLU - max pool 3/2 "same" - conv 3x3 (64) - PReLU - max pool 3/2 "valid" -
conv 3x3 (64) - PReLU - max pool 2/2 "same" - conv 2x2 (128) - PReLU - Keras permute +
flatten (1152) - dense 256 - PReLU - heads (4 box offsets, 10 landmark coordinates, 2-way
softmax). Imports no ComfyUI module.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .layers import keras_flatten, max_pool_same


class ONet(nn.Module):
    """``forward(x)``: float32 ``[N, 3, 48, 48]`` (RGB, ``(pixel - 127.5) / 128``) ->
    ``(offsets [N, 4], landmarks [N, 10], probs [N, 2])``. ``landmarks`` are
    ``x1..x5, y1..y5`` as fractions of the box (left eye, right eye, nose, left and right
    mouth corner, "left" meaning the image's left); ``probs[:, 1]`` is the face probability."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 32, 3)
        self.prelu1 = nn.PReLU(32)
        self.conv2 = nn.Conv2d(32, 64, 3)
        self.prelu2 = nn.PReLU(64)
        self.conv3 = nn.Conv2d(64, 64, 3)
        self.prelu3 = nn.PReLU(64)
        self.conv4 = nn.Conv2d(64, 128, 2)
        self.prelu4 = nn.PReLU(128)
        self.fc5 = nn.Linear(1152, 256)  # 3 x 3 x 128, Keras (w, h, c) order
        self.prelu5 = nn.PReLU(256)
        self.fc6_1 = nn.Linear(256, 4)
        self.fc6_2 = nn.Linear(256, 10)
        self.fc6_3 = nn.Linear(256, 2)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        x = max_pool_same(self.prelu1(self.conv1(x)), 3, 2)
        x = F.max_pool2d(self.prelu2(self.conv2(x)), 3, 2)
        x = max_pool_same(self.prelu3(self.conv3(x)), 2, 2)
        x = self.prelu4(self.conv4(x))
        x = self.prelu5(self.fc5(keras_flatten(x)))
        return self.fc6_1(x), self.fc6_2(x), torch.softmax(self.fc6_3(x), dim=1)
