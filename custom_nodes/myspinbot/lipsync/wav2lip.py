"""The Wav2Lip generator: a face encoder, an audio encoder and a face decoder with skips.

From "A Lip Sync Expert Is All You Need for Speech to Lip Generation In the Wild"
(Prajwal, Mukhopadhyay, Namboodiri, Jawahar; ACM Multimedia 2020), section 3.3. The module
tree follows ``models/wav2lip.py`` (class ``Wav2Lip``) of Rudrabha/Wav2Lip, so the official
``wav2lip.pth`` / ``wav2lip_gan.pth`` state dicts load strictly: ``face_encoder_blocks.<i>``,
``audio_encoder.<j>``, ``face_decoder_blocks.<i>``, ``output_block``. The discriminators used
in training (expert SyncNet, visual-quality critic) are not part of this module.

Inputs, as the official checkpoints were trained:

* ``faces``: float ``[B, 6, 96, 96]`` in 0..1, **BGR** channel order (the authors read
  frames with OpenCV). Channels 0-2: the frame to re-mouth with its lower half (rows 48..95)
  set to 0; channels 3-5: a reference frame of the same face (at inference, the same frame).
* ``mel``: float ``[B, 1, 80, 16]``: 16 mel frames (0.2 s) around the video frame, as made by
  :mod:`.mel` (values in -4..4).

Output: float ``[B, 3, 96, 96]`` BGR in 0..1, the whole face with the mouth redrawn.
Imports no ComfyUI module.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ..errors import InvalidInputError
from .layers import ConvNormReLU


@dataclass(frozen=True)
class Wav2LipConfig:
    """Sizes of the generator; the defaults are the official 96 x 96 model.

    Attributes:
        image_size: side of the square face crop, px (``3 * 2**len(encoder_channels)``).
        face_channels: input channels (masked target + reference, 3 each).
        out_channels: output channels (BGR).
        mel_bins, mel_steps: height and width of one mel window.
        stem_channels: channels of the 7 x 7 full-resolution stem.
        encoder_channels: output channels of each stride-2 face-encoder stage.
        encoder_residuals: residual 3 x 3 blocks after each stage's downsampling.
        embed_channels: channels of the 1 x 1 face and audio embeddings.
        audio_channels, audio_strides, audio_residuals: the audio encoder's stages (a 3 x 3
            convolution with that stride, then residual blocks), before its 1 x 1 embedding.
        decoder_channels: output channels of each upsampling decoder stage.
        decoder_residuals: residual blocks per decoder stage (the first entry belongs to the
            1 x 1 -> 3 x 3 stage).
        head_channels: channels of the last 3 x 3 block before the 1 x 1 output projection.
    """

    image_size: int = 96
    face_channels: int = 6
    out_channels: int = 3
    mel_bins: int = 80
    mel_steps: int = 16
    stem_channels: int = 16
    encoder_channels: tuple[int, ...] = (32, 64, 128, 256, 512)
    encoder_residuals: tuple[int, ...] = (2, 3, 2, 2, 1)
    embed_channels: int = 512
    audio_channels: tuple[int, ...] = (32, 64, 128, 256)
    audio_strides: tuple[tuple[int, int], ...] = ((1, 1), (3, 1), (3, 3), (3, 2))
    audio_residuals: tuple[int, ...] = (2, 2, 2, 1)
    decoder_channels: tuple[int, ...] = (512, 512, 384, 256, 128, 64)
    decoder_residuals: tuple[int, ...] = (1, 2, 2, 2, 2, 2)
    head_channels: int = 32

    def __post_init__(self) -> None:
        stages = len(self.encoder_channels)
        if len(self.encoder_residuals) != stages:
            raise ValueError("encoder_channels and encoder_residuals differ in length")
        if len(self.decoder_channels) != stages + 1 or len(self.decoder_residuals) != stages + 1:
            raise ValueError("the decoder needs one stage per encoder stage plus the 1 x 1 -> 3 x 3 stage")
        if not len(self.audio_channels) == len(self.audio_strides) == len(self.audio_residuals):
            raise ValueError("audio_channels, audio_strides and audio_residuals differ in length")
        if self.image_size != 3 * 2**stages:
            raise ValueError(f"image_size must be {3 * 2**stages} for {stages} encoder stages")
        h, w = self.mel_bins, self.mel_steps
        for sh, sw in self.audio_strides:  # 3 x 3, padding 1
            h, w = (h - 1) // sh + 1, (w - 1) // sw + 1
        if (h, w) != (3, 3):
            raise ValueError(f"the audio encoder must reduce a mel window to 3 x 3 before its embedding, got {h} x {w}")


def _stage(first: ConvNormReLU, channels: int, residuals: int) -> nn.Sequential:
    """``first`` followed by ``residuals`` shape-preserving residual 3 x 3 blocks."""
    rest = [ConvNormReLU(channels, channels, 3, 1, 1, residual=True) for _ in range(residuals)]
    return nn.Sequential(first, *rest)


class Wav2Lip(nn.Module):
    """The Wav2Lip generator (see the module docstring for the input conventions).

    Args:
        config: sizes; ``None`` for the official model.
    """

    def __init__(self, config: Wav2LipConfig | None = None):
        super().__init__()
        cfg = config or Wav2LipConfig()
        self.config = cfg
        embed = cfg.embed_channels

        # Face encoder: stem at full resolution, stride-2 stages, then 3 x 3 -> 1 x 1.
        encoder = [nn.Sequential(ConvNormReLU(cfg.face_channels, cfg.stem_channels, 7, 1, 3))]
        skip_channels = [cfg.stem_channels]
        cin = cfg.stem_channels
        for cout, residuals in zip(cfg.encoder_channels, cfg.encoder_residuals):
            encoder.append(_stage(ConvNormReLU(cin, cout, 3, 2, 1), cout, residuals))
            skip_channels.append(cout)
            cin = cout
        encoder.append(nn.Sequential(ConvNormReLU(cin, embed, 3, 1, 0), ConvNormReLU(embed, embed, 1, 1, 0)))
        skip_channels.append(embed)
        self.face_encoder_blocks = nn.ModuleList(encoder)

        # Audio encoder: [B, 1, 80, 16] -> [B, embed, 1, 1].
        audio: list[nn.Module] = []
        cin = 1
        for cout, stride, residuals in zip(cfg.audio_channels, cfg.audio_strides, cfg.audio_residuals):
            audio.extend(_stage(ConvNormReLU(cin, cout, 3, stride, 1), cout, residuals))
            cin = cout
        audio += [ConvNormReLU(cin, embed, 3, 1, 0), ConvNormReLU(embed, embed, 1, 1, 0)]
        self.audio_encoder = nn.Sequential(*audio)

        # Face decoder: each stage's output is concatenated with the matching encoder output.
        decoder = [nn.Sequential(ConvNormReLU(embed, embed, 1, 1, 0))]
        cin = embed + skip_channels.pop()
        for i, (cout, residuals) in enumerate(zip(cfg.decoder_channels, cfg.decoder_residuals)):
            if i == 0:  # 1 x 1 -> 3 x 3
                up = ConvNormReLU(cin, cout, 3, 1, 0, transpose=True)
            else:  # doubles the side
                up = ConvNormReLU(cin, cout, 3, 2, 1, transpose=True, output_padding=1)
            decoder.append(_stage(up, cout, residuals))
            cin = cout + skip_channels.pop()
        self.face_decoder_blocks = nn.ModuleList(decoder)

        self.output_block = nn.Sequential(
            ConvNormReLU(cin, cfg.head_channels, 3, 1, 1),
            nn.Conv2d(cfg.head_channels, cfg.out_channels, kernel_size=1, stride=1, padding=0),
            nn.Sigmoid(),
        )

    @property
    def folded(self) -> bool:
        """True once :meth:`fold_norms` has merged every batch norm into its convolution."""
        return all(m.folded for m in self.modules() if isinstance(m, ConvNormReLU))

    def fold_norms(self) -> "Wav2Lip":
        """Merge each block's eval-mode batch norm into its convolution, for inference.

        The outputs stay the same up to float rounding (about 1e-7 on the 0..1 output); the
        ``conv_block.1.*`` keys leave the state dict, so fold after the strict load
        (:func:`.loader.load_wav2lip` does) and never save the folded state as a checkpoint.
        Puts the model in eval mode; returns it.
        """
        self.eval()
        for module in self.modules():
            if isinstance(module, ConvNormReLU):
                module.fold_norm()
        return self

    def forward(self, mel: torch.Tensor, faces: torch.Tensor) -> torch.Tensor:
        """Redraw the lower face of each crop to match its mel window.

        Args:
            mel: ``[B, 1, mel_bins, mel_steps]`` (``[B, 1, 80, 16]``), the weights' dtype.
            faces: ``[B, face_channels, S, S]`` (``[B, 6, 96, 96]``) in 0..1, same dtype.

        Returns:
            ``[B, out_channels, S, S]`` in 0..1 (sigmoid), on the inputs' device and dtype.

        Raises:
            InvalidInputError: a shape differs from the above or the batch sizes differ.
        """
        cfg = self.config
        mel_shape = (1, cfg.mel_bins, cfg.mel_steps)
        face_shape = (cfg.face_channels, cfg.image_size, cfg.image_size)
        if mel.ndim != 4 or tuple(mel.shape[1:]) != mel_shape:
            raise InvalidInputError(f"mel must be [B, {', '.join(map(str, mel_shape))}], got {list(mel.shape)}")
        if faces.ndim != 4 or tuple(faces.shape[1:]) != face_shape:
            raise InvalidInputError(f"faces must be [B, {', '.join(map(str, face_shape))}], got {list(faces.shape)}")
        if mel.shape[0] != faces.shape[0]:
            raise InvalidInputError(f"mel and faces batch sizes differ: {mel.shape[0]} vs {faces.shape[0]}")

        return self.decode(mel, self.encode_faces(faces))

    def encode_faces(self, faces: torch.Tensor) -> list[torch.Tensor]:
        """The face encoder alone: the outputs of its blocks, which the decoder takes as skips.

        :meth:`forward` is ``decode(mel, encode_faces(faces))``; split so that a caller whose
        batch repeats one face crop (a still image) encodes it once (then ``expand`` or
        ``index_select`` each tensor to the batch). No shape checks here (see :meth:`forward`).

        Args:
            faces: ``[B, face_channels, S, S]`` in 0..1.

        Returns:
            ``len(encoder_channels) + 2`` tensors ``[B, C_i, S_i, S_i]``, full resolution first,
            the ``[B, embed_channels, 1, 1]`` face embedding last.
        """
        skips = []
        x = faces
        for block in self.face_encoder_blocks:
            x = block(x)
            skips.append(x)
        return skips

    def decode(self, mel: torch.Tensor, skips: list[torch.Tensor]) -> torch.Tensor:
        """The audio encoder and the face decoder: ``[B, out_channels, S, S]`` in 0..1.

        Args:
            mel: ``[B, 1, mel_bins, mel_steps]``.
            skips: :meth:`encode_faces` of ``B`` crops (the list is not modified).
        """
        x = self.audio_encoder(mel)
        for block, skip in zip(self.face_decoder_blocks, reversed(skips)):
            x = torch.cat((block(x), skip), dim=1)
        return self.output_block(x)
