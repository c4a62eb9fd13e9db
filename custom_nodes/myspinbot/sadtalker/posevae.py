"""PoseVAE decoder: audio + pose style -> head motion (checkpoint prefix ``audio2pose.``).

Zhang et al., SadTalker (CVPR 2023), section 3.2: a conditional VAE generates 32 frames of
residual head motion (3 rotation + 3 translation coefficients, relative to the source's pose)
from a latent draw, the audio of those frames and a learned per-style bias (46 styles, the
speaker identities of the training set); at inference only the decoder runs. Layout of
upstream ``DECODER`` (``src/audio2pose_models/cvae.py``), ``ResUnet`` (``res_unet.py``),
``ResidualConv`` / ``Upsample`` (``networks.py``) and ``Audio2Pose`` (``audio2pose.py``) with
``src/config/auido2pose.yaml``. The file also holds the CVAE encoder (``netG.encoder.*``) and
the motion discriminator (``netD_motion.*``): training-only, the loader skips them on purpose.
The window loop of ``Audio2Pose.test`` is the caller's. Imports no ComfyUI module.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from .audio_encoder import mel_encoder

POSE_DIM = 6  # 3 rotation + 3 translation coefficients


@dataclass(frozen=True)
class PoseVaeConfig:
    """Sizes of the PoseVAE decoder (``MODEL.CVAE`` / ``DATASET.NUM_CLASSES`` upstream)."""

    seq_len: int = 32
    latent_size: int = 64
    num_classes: int = 46
    audio_in: int = 512
    audio_out: int = 6
    layer_sizes: tuple[int, ...] = (128, 192)


class ResidualConv(nn.Module):
    """Pre-activation residual conv (BN, ReLU, conv, BN, ReLU, conv) plus a (conv, BN) skip."""

    def __init__(self, cin: int, cout: int, stride):
        super().__init__()
        self.conv_block = nn.Sequential(
            nn.BatchNorm2d(cin), nn.ReLU(), nn.Conv2d(cin, cout, 3, stride=stride, padding=1),
            nn.BatchNorm2d(cout), nn.ReLU(), nn.Conv2d(cout, cout, 3, padding=1))
        self.conv_skip = nn.Sequential(nn.Conv2d(cin, cout, 3, stride=stride, padding=1), nn.BatchNorm2d(cout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv_block(x) + self.conv_skip(x)


class _Upsample(nn.Module):
    def __init__(self, channels: int):
        super().__init__()
        self.upsample = nn.ConvTranspose2d(channels, channels, (2, 1), stride=(2, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.upsample(x)


class ResUnet(nn.Module):
    """Residual U-Net over a ``[B, 1, T, 6]`` motion map, halving/doubling T; sigmoid output ``[B, 1, T, 6]``."""

    def __init__(self, filters: tuple[int, int, int, int] = (32, 64, 128, 256)):
        super().__init__()
        f0, f1, f2, f3 = filters
        self.input_layer = nn.Sequential(nn.Conv2d(1, f0, 3, padding=1), nn.BatchNorm2d(f0), nn.ReLU(),
                                         nn.Conv2d(f0, f0, 3, padding=1))
        self.input_skip = nn.Sequential(nn.Conv2d(1, f0, 3, padding=1))
        self.residual_conv_1 = ResidualConv(f0, f1, (2, 1))
        self.residual_conv_2 = ResidualConv(f1, f2, (2, 1))
        self.bridge = ResidualConv(f2, f3, (2, 1))
        self.upsample_1 = _Upsample(f3)
        self.up_residual_conv1 = ResidualConv(f3 + f2, f2, 1)
        self.upsample_2 = _Upsample(f2)
        self.up_residual_conv2 = ResidualConv(f2 + f1, f1, 1)
        self.upsample_3 = _Upsample(f1)
        self.up_residual_conv3 = ResidualConv(f1 + f0, f0, 1)
        self.output_layer = nn.Sequential(nn.Conv2d(f0, 1, 1), nn.Sigmoid())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x1 = self.input_layer(x) + self.input_skip(x)
        x2 = self.residual_conv_1(x1)
        x3 = self.residual_conv_2(x2)
        x4 = self.bridge(x3)
        x6 = self.up_residual_conv1(torch.cat([self.upsample_1(x4), x3], dim=1))
        x8 = self.up_residual_conv2(torch.cat([self.upsample_2(x6), x2], dim=1))
        x10 = self.up_residual_conv3(torch.cat([self.upsample_3(x8), x1], dim=1))
        return self.output_layer(x10)


class PoseDecoder(nn.Module):
    """``forward(z, style, ref, audio_emb)`` -> ``[B, seq_len, 6]`` motion relative to ``ref``.

    * ``z``: ``[B, latent_size]`` latent draw (standard normal at inference).
    * ``style``: ``[B]`` int64 pose style in ``0..num_classes-1``.
    * ``ref``: ``[B, 6]`` the source's pose coefficients.
    * ``audio_emb``: ``[B, seq_len, 512]`` encoded mel windows.
    """

    def __init__(self, config: PoseVaeConfig | None = None):
        super().__init__()
        cfg = config or PoseVaeConfig()
        self.config = cfg
        self.resunet = ResUnet()
        self.MLP = nn.Sequential()
        sizes = [cfg.latent_size + cfg.seq_len * cfg.audio_out + POSE_DIM, *cfg.layer_sizes]
        for i, (cin, cout) in enumerate(zip(sizes[:-1], sizes[1:])):
            self.MLP.add_module(f"L{i}", nn.Linear(cin, cout))
            self.MLP.add_module(f"A{i}" if i + 2 < len(sizes) else "sigmoid",
                                nn.ReLU() if i + 2 < len(sizes) else nn.Sigmoid())
        self.pose_linear = nn.Linear(POSE_DIM, POSE_DIM)
        self.linear_audio = nn.Linear(cfg.audio_in, cfg.audio_out)
        self.classbias = nn.Parameter(torch.zeros(cfg.num_classes, cfg.latent_size))

    def forward(self, z: torch.Tensor, style: torch.Tensor, ref: torch.Tensor,
                audio_emb: torch.Tensor) -> torch.Tensor:
        b = z.shape[0]
        audio = self.linear_audio(audio_emb).reshape(b, -1)
        x = self.MLP(torch.cat([ref, z + self.classbias[style], audio], dim=-1))
        x = self.resunet(x.reshape(b, 1, self.config.seq_len, -1))
        return self.pose_linear(x.squeeze(1))


class Audio2Pose(nn.Module):
    """The inference part of upstream ``Audio2Pose``: ``audio_encoder.audio_encoder`` + ``netG.decoder``.

    :meth:`encode_audio`: ``[B, T, 1, 80, 16]`` mel windows -> ``[B, T, 512]``;
    :meth:`decode`: see :class:`PoseDecoder`.
    """

    TRAINING_ONLY = ("netG.encoder.", "netD_motion.")  # in the checkpoint, unused at inference

    def __init__(self, config: PoseVaeConfig | None = None):
        super().__init__()
        self.audio_encoder = nn.Module()
        self.audio_encoder.audio_encoder = mel_encoder()
        self.netG = nn.Module()
        self.netG.decoder = PoseDecoder(config)

    def encode_audio(self, mels: torch.Tensor) -> torch.Tensor:
        b, t = mels.shape[:2]
        emb = self.audio_encoder.audio_encoder(mels.reshape(b * t, *mels.shape[2:]))
        return emb.reshape(b, t, -1)

    def decode(self, z: torch.Tensor, style: torch.Tensor, ref: torch.Tensor, audio_emb: torch.Tensor) -> torch.Tensor:
        return self.netG.decoder(z, style, ref, audio_emb)
