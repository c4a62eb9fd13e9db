"""The one building block of the Wav2Lip generator: a convolution, batch norm and ReLU.

Layout after ``models/conv.py`` of Rudrabha/Wav2Lip (classes ``Conv2d`` and
``Conv2dTranspose`` there), for the paper "A Lip Sync Expert Is All You Need for Speech to
Lip Generation In the Wild" (Prajwal et al., ACM MM 2020). The parameter names follow the
official checkpoint: ``conv_block.0`` is the (transposed) convolution, ``conv_block.1`` its
batch norm. For inference the batch norm (eval mode: running statistics) can be folded into
the convolution (:meth:`ConvNormReLU.fold_norm`): one pass over the activations instead of
three, the same function up to float rounding. Imports no ComfyUI module.
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
        self.act = nn.ReLU(inplace=True)  # on the block's own new tensor, never on ``x``
        self.residual = residual

    @property
    def folded(self) -> bool:
        """True once :meth:`fold_norm` has merged the batch norm into the convolution."""
        return isinstance(self.conv_block[1], nn.Identity)

    @torch.no_grad()
    def fold_norm(self) -> None:
        """Merge the batch norm, as evaluated in eval mode, into the convolution's weights.

        ``BN(conv(x)) = conv'(x)`` with ``w' = w * s`` (per output channel) and
        ``b' = (b - running_mean) * s + beta``, ``s = gamma / sqrt(running_var + eps)``; computed
        in float64, stored in the convolution's dtype. The batch norm becomes an identity, so
        the state dict loses its ``conv_block.1.*`` keys: fold only after a strict load, for
        inference (training would need the batch norm back). Idempotent.
        """
        if self.folded:
            return
        conv, norm = self.conv_block[0], self.conv_block[1]
        channels = norm.num_features
        var = norm.running_var.double()
        mean = norm.running_mean.double()
        gamma = norm.weight.double() if norm.weight is not None else torch.ones(channels, dtype=torch.float64)
        beta = norm.bias.double() if norm.bias is not None else torch.zeros(channels, dtype=torch.float64)
        scale = gamma / torch.sqrt(var + norm.eps)
        # the output channels are dim 0 of a Conv2d weight, dim 1 of a ConvTranspose2d weight
        shape = (1, -1, 1, 1) if isinstance(conv, nn.ConvTranspose2d) else (-1, 1, 1, 1)
        bias = conv.bias.double() if conv.bias is not None else torch.zeros(channels, dtype=torch.float64)
        conv.weight.copy_((conv.weight.double() * scale.view(shape)).to(conv.weight.dtype))
        new_bias = ((bias - mean) * scale + beta).to(device=conv.weight.device, dtype=conv.weight.dtype)
        if conv.bias is None:
            conv.bias = nn.Parameter(new_bias, requires_grad=conv.weight.requires_grad)
        else:
            conv.bias.copy_(new_bias)
        self.conv_block[1] = nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``[B, in_channels, H, W]`` -> ``[B, out_channels, H', W']`` (same dtype and device)."""
        y = self.conv_block(x)
        if self.residual:
            y += x  # y is this block's own output (conv or batch norm), never x itself
        return self.act(y)
