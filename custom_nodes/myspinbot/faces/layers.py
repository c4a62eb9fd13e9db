"""Layers shared by the three MTCNN networks, with Keras semantics where they differ from torch.

Zhang et al., "Joint Face Detection and Alignment using Multi-task Cascaded Convolutional
Networks", IEEE SPL 2016. The layer layout follows the Keras port in the ``mtcnn`` wheel 1.0.0
(``mtcnn/network/{pnet,rnet,onet}.py``, MIT): ``MaxPooling2D(padding="same")`` pads at the
bottom/right first (TensorFlow's rule), and the dense heads of R-Net and O-Net read the
feature map after ``Permute((2, 1, 3))`` of the NHWC tensor, i.e. flattened in
(width, height, channel) order. Imports no ComfyUI module.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def max_pool_same(x: torch.Tensor, kernel: int, stride: int) -> torch.Tensor:
    """TensorFlow ``padding="same"`` max pooling of float ``[N, C, H, W]``.

    Output ``[N, C, ceil(H / stride), ceil(W / stride)]``; the padding (``-inf``, so never
    picked) is split with the smaller half before, as TensorFlow does.
    """
    pads = []
    for size in (x.shape[3], x.shape[2]):  # F.pad order: width then height
        total = max((-(-size // stride) - 1) * stride + kernel - size, 0)
        pads += [total // 2, total - total // 2]
    if any(pads):
        x = F.pad(x, pads, value=float("-inf"))
    return F.max_pool2d(x, kernel, stride)


def keras_flatten(x: torch.Tensor) -> torch.Tensor:
    """float ``[N, C, H, W]`` -> ``[N, W * H * C]`` in the order of Keras ``Permute((2, 1, 3))``
    followed by ``Flatten`` on the NHWC tensor (width slowest, channel fastest)."""
    return x.permute(0, 3, 2, 1).flatten(1)
