"""ExpNet: audio -> 3DMM expression coefficients (checkpoint prefix ``audio2exp.``, 93 tensors).

Zhang et al., SadTalker (CVPR 2023), section 3.1: each frame's mel window is encoded
(:func:`~.audio_encoder.mel_encoder`) and a linear layer maps it, together with the reference
expression (the source's first 64 coefficients) and the eye-blink ratio, to 64 expression
coefficients. Layout of upstream ``SimpleWrapperV2`` (``src/audio2exp_models/networks.py``);
the per-10-frame chunking of ``Audio2Exp.test`` (``audio2exp.py``) is the caller's.
Imports no ComfyUI module.
"""

from __future__ import annotations

import torch
from torch import nn

from .audio_encoder import mel_encoder

EXP_DIM = 64
AUDIO_DIM = 512


class ExpNet(nn.Module):
    """``forward(mels, ref, ratio)``:

    * ``mels``: ``[B * T, 1, 80, 16]`` float mel windows (T frames per batch item).
    * ``ref``: ``[B, T, 64]`` reference expression coefficients.
    * ``ratio``: ``[B, T]`` (or ``[B, T, 1]``) eye-blink ratio per frame.

    Returns ``[B, T, 64]`` expression coefficients.
    """

    def __init__(self) -> None:
        super().__init__()
        self.audio_encoder = mel_encoder()
        self.mapping1 = nn.Linear(AUDIO_DIM + EXP_DIM + 1, EXP_DIM)

    def forward(self, mels: torch.Tensor, ref: torch.Tensor, ratio: torch.Tensor) -> torch.Tensor:
        n = mels.shape[0]
        audio = self.audio_encoder(mels).view(n, -1)
        y = self.mapping1(torch.cat([audio, ref.reshape(n, -1), ratio.reshape(n, -1)], dim=1))
        return y.reshape(ref.shape[0], ref.shape[1], -1)
