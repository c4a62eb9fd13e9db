"""SyncNet: two towers embedding 0.2 s of speech and of mouth motion in one space.

From Chung & Zisserman, "Out of time: automated lip sync in the wild" (Workshop on
Multi-view Lip-reading, ACCV 2016): an audio tower over MFCCs and a visual tower over five
consecutive face frames, trained so that the Euclidean distance between the two embeddings
is small when audio and video are in sync. The layer sizes and module tree follow the
released PyTorch model, ``SyncNetModel.py`` of joonson/syncnet_python (class ``S``), so the
official ``syncnet_v2.model`` loads strictly: ``netcnnaud.<i>`` and ``netfcaud.<i>`` (audio),
``netcnnlip.<i>`` and ``netfclip.<i>`` (video), with the indices of their ``nn.Sequential``
stacks (convolution, batch norm, ReLU, then a max-pool where the stage has one).

Inputs, as the official model was trained and evaluated (``SyncNetInstance.py`` there):

* audio: float ``[B, 1, 13, 20]``: 13 MFCCs x 20 frames at 100 Hz (0.2 s), from
  :mod:`.mfcc` on 16 kHz speech at int16 scale.
* video: float ``[B, 3, 5, 224, 224]``: five consecutive 25 fps face crops, **BGR** channel
  order, values 0..255 (no normalisation).

Both towers output float ``[B, embed_dim]`` (1024). Imports no ComfyUI module.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ..errors import InvalidInputError

Triple = tuple[int, int, int]


@dataclass(frozen=True)
class Stage:
    """One convolution stage: ``conv -> batch norm -> ReLU [-> max-pool]``.

    ``kernel``, ``stride``, ``padding`` are per spatial axis (2 for audio, 3 for video);
    ``pool`` is ``(kernel, stride, padding)`` of the max-pool after it, or ``None``.
    """

    channels: int
    kernel: tuple[int, ...]
    stride: tuple[int, ...]
    padding: tuple[int, ...]
    pool: tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]] | None = None


# The audio tower over [B, 1, 13, 20] MFCC windows -> [B, 512, 1, 1].
AUDIO_STAGES = (
    Stage(64, (3, 3), (1, 1), (1, 1), pool=((1, 1), (1, 1), (0, 0))),
    Stage(192, (3, 3), (1, 1), (1, 1), pool=((3, 3), (1, 2), (0, 0))),
    Stage(384, (3, 3), (1, 1), (1, 1)),
    Stage(256, (3, 3), (1, 1), (1, 1)),
    Stage(256, (3, 3), (1, 1), (1, 1), pool=((3, 3), (2, 2), (0, 0))),
    Stage(512, (5, 4), (1, 1), (0, 0)),
)

# The video tower over [B, 3, 5, 224, 224] BGR crops -> [B, 512, 1, 1, 1]; only the first
# convolution looks across time (all five frames at once).
VIDEO_STAGES = (
    Stage(96, (5, 7, 7), (1, 2, 2), (0, 0, 0), pool=((1, 3, 3), (1, 2, 2), (0, 0, 0))),
    Stage(256, (1, 5, 5), (1, 2, 2), (0, 1, 1), pool=((1, 3, 3), (1, 2, 2), (0, 1, 1))),
    Stage(256, (1, 3, 3), (1, 1, 1), (0, 1, 1)),
    Stage(256, (1, 3, 3), (1, 1, 1), (0, 1, 1)),
    Stage(256, (1, 3, 3), (1, 1, 1), (0, 1, 1), pool=((1, 3, 3), (1, 2, 2), (0, 0, 0))),
    Stage(512, (1, 6, 6), (1, 1, 1), (0, 0, 0)),
)


@dataclass(frozen=True)
class SyncNetConfig:
    """Sizes of the model; the defaults are the official ``syncnet_v2``.

    Attributes:
        mfcc_bins, mfcc_steps: height and width of one audio window.
        frames, image_size: frames per video window and the side of a face crop, px.
        feature_dim: channels out of each convolution tower.
        embed_dim: size of the embeddings (the output of the two-layer heads).
    """

    mfcc_bins: int = 13
    mfcc_steps: int = 20
    frames: int = 5
    image_size: int = 224
    feature_dim: int = 512
    embed_dim: int = 1024


def _tower(stages: tuple[Stage, ...], in_channels: int, dims: int) -> nn.Sequential:
    conv, norm, pool = (nn.Conv2d, nn.BatchNorm2d, nn.MaxPool2d) if dims == 2 else (nn.Conv3d, nn.BatchNorm3d, nn.MaxPool3d)
    layers: list[nn.Module] = []
    channels = in_channels
    for stage in stages:
        layers += [conv(channels, stage.channels, stage.kernel, stage.stride, stage.padding),
                   norm(stage.channels), nn.ReLU()]
        if stage.pool is not None:
            layers.append(pool(*stage.pool))
        channels = stage.channels
    return nn.Sequential(*layers)


def _head(feature_dim: int, embed_dim: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(feature_dim, feature_dim), nn.BatchNorm1d(feature_dim), nn.ReLU(),
                         nn.Linear(feature_dim, embed_dim))


class SyncNet(nn.Module):
    """The audio and video towers of SyncNet (see the module doc for inputs and layout)."""

    def __init__(self, config: SyncNetConfig | None = None):
        super().__init__()
        self.config = config or SyncNetConfig()
        c = self.config
        if AUDIO_STAGES[-1].channels != c.feature_dim or VIDEO_STAGES[-1].channels != c.feature_dim:
            raise InvalidInputError(f"feature_dim must be {AUDIO_STAGES[-1].channels} for these towers")
        self.netcnnaud = _tower(AUDIO_STAGES, 1, 2)
        self.netfcaud = _head(c.feature_dim, c.embed_dim)
        self.netcnnlip = _tower(VIDEO_STAGES, 3, 3)
        self.netfclip = _head(c.feature_dim, c.embed_dim)

    def _check(self, x: torch.Tensor, shape: tuple[int, ...], what: str) -> None:
        if x.ndim != len(shape) + 1 or tuple(x.shape[1:]) != shape or x.shape[0] == 0:
            raise InvalidInputError(f"{what} must be [B, {', '.join(map(str, shape))}], got {list(x.shape)}")

    def forward_audio(self, mfcc: torch.Tensor) -> torch.Tensor:
        """``[B, 1, 13, 20]`` MFCC windows -> ``[B, embed_dim]`` (the model's dtype and device).

        Raises:
            InvalidInputError: another shape.
        """
        c = self.config
        self._check(mfcc, (1, c.mfcc_bins, c.mfcc_steps), "audio windows")
        return self.netfcaud(self.netcnnaud(mfcc).flatten(1))

    def forward_video(self, crops: torch.Tensor) -> torch.Tensor:
        """``[B, 3, 5, 224, 224]`` BGR 0..255 face crops -> ``[B, embed_dim]``.

        Raises:
            InvalidInputError: another shape.
        """
        c = self.config
        self._check(crops, (3, c.frames, c.image_size, c.image_size), "video windows")
        return self.netfclip(self.netcnnlip(crops).flatten(1))

    def forward(self, mfcc: torch.Tensor, crops: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Both embeddings: ``(forward_audio(mfcc), forward_video(crops))``."""
        return self.forward_audio(mfcc), self.forward_video(crops)
