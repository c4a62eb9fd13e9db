"""The Wav2Lip-style audio encoder that both of SadTalker's audio networks start from.

Zhang et al., SadTalker (CVPR 2023), sections 3.1-3.2: ExpNet and PoseVAE encode each
video frame's 0.2 s mel window (``[1, 80, 16]``, Wav2Lip's front end) with the audio encoder of
Wav2Lip (Prajwal et al., ACM MM 2020) to a 512-vector. Layout of upstream ``audio_encoder``
in ``src/audio2exp_models/networks.py`` (``SimpleWrapperV2``) and
``src/audio2pose_models/audio_encoder.py`` (``AudioEncoder``): thirteen (conv, batch norm,
ReLU) blocks, some residual. Imports no ComfyUI module.
"""

from __future__ import annotations

import torch
from torch import nn

# (in, out, stride, padding, residual) of the thirteen blocks, kernel 3 except the last (1)
_BLOCKS = (
    (1, 32, 1, 1, False), (32, 32, 1, 1, True), (32, 32, 1, 1, True),
    (32, 64, (3, 1), 1, False), (64, 64, 1, 1, True), (64, 64, 1, 1, True),
    (64, 128, 3, 1, False), (128, 128, 1, 1, True), (128, 128, 1, 1, True),
    (128, 256, (3, 2), 1, False), (256, 256, 1, 1, True),
    (256, 512, 1, 0, False), (512, 512, 1, 0, False),
)


class ConvBlock(nn.Module):
    """``conv_block`` = (conv, batch norm); ``+ x`` when residual; then ReLU."""

    def __init__(self, cin: int, cout: int, kernel: int, stride, padding: int, residual: bool):
        super().__init__()
        self.conv_block = nn.Sequential(nn.Conv2d(cin, cout, kernel, stride, padding), nn.BatchNorm2d(cout))
        self.residual = residual

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv_block(x)
        return torch.relu(out + x if self.residual else out)


def mel_encoder() -> nn.Sequential:
    """The encoder: ``[N, 1, 80, 16]`` mel windows -> ``[N, 512, 1, 1]``."""
    return nn.Sequential(*(ConvBlock(cin, cout, 1 if i == len(_BLOCKS) - 1 else 3, stride, pad, res)
                           for i, (cin, cout, stride, pad, res) in enumerate(_BLOCKS)))
