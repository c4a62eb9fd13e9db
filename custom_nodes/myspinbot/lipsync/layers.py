"""The one building block of the Wav2Lip generator: a convolution, batch norm and ReLU.

Layout after ``models/conv.py`` of Rudrabha/Wav2Lip (classes ``Conv2d`` and
``Conv2dTranspose`` there), for the paper "A Lip Sync Expert Is All You Need for Speech to
Lip Generation In the Wild" (Prajwal et al., ACM MM 2020). The parameter names follow the
official checkpoint: ``conv_block.0`` is the (transposed) convolution, ``conv_block.1`` its
batch norm. Imports no ComfyUI module.
"""

from __future__ import annotations

import torch
from torch import nn

Size2 = int | tuple[int, int]


class ConvNormReLU(nn.Module):
    """``ReLU(BN(conv(x)) [+ x])``: a 2-D (or transposed) convolution with batch norm.

    Args:
        in_channels, out_channels: channel counts.
        kernel_size, stride, padding: as for :class:`torch.nn.Conv2d`.
        residual: add the input before the ReLU (needs ``in_channels == out_channels`` and a
            shape-preserving convolution).
        transpose: use :class:`torch.nn.ConvTranspose2d` (an upsampling step) instead.
        output_padding: extra rows/columns of a transposed convolution's output.

    Raises:
        ValueError: ``residual`` with differing channel counts, or with ``transpose``.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: Size2,
        stride: Size2 = 1,
        padding: Size2 = 0,
        *,
        residual: bool = False,
        transpose: bool = False,
        output_padding: Size2 = 0,
    ):
        super().__init__()
        if residual and (transpose or in_channels != out_channels):
            raise ValueError("a residual block needs a plain convolution with in_channels == out_channels")
        if transpose:
            conv = nn.ConvTranspose2d(in_channels, out_channels, kernel_size, stride, padding, output_padding)
        else:
            conv = nn.Conv2d(in_channels, out_channels, kernel_size, stride, padding)
        self.conv_block = nn.Sequential(conv, nn.BatchNorm2d(out_channels))
        self.act = nn.ReLU()
        self.residual = residual

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``[B, in_channels, H, W]`` -> ``[B, out_channels, H', W']`` (same dtype and device)."""
        y = self.conv_block(x)
        if self.residual:
            y = y + x
        return self.act(y)
