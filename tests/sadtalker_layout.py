"""Random SadTalker weights written in the official checkpoint layouts (test helper).

* :func:`official_state`: the 1,305 tensors of ``SadTalker_V0.0.2_256.safetensors`` (five
  prefixes), built from our networks plus :func:`training_only_modules`, the layout of the
  parts the inference never uses (the CVAE encoder ``audio2pose.netG.encoder.*`` and the
  motion discriminator ``audio2pose.netD_motion.*``, sizes of upstream ``cvae.ENCODER`` and
  ``discriminator.PoseSequenceDiscriminator`` with ``auido2pose.yaml``). When the authors'
  code is at hand, ``test_sadtalker_reference`` checks this layout against theirs.
* :func:`mapping_checkpoint`: a ``mapping_*.pth.tar`` training checkpoint (``mapping`` entry
  beside an optimizer state and the epoch).

Every floating-point tensor is random (batch-norm variances positive, spectral-norm vectors
unit length), so a wrong key mapping changes outputs.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from myspinbot.sadtalker import MappingConfig, MappingNet, build_networks
from myspinbot.sadtalker.posevae import ResUnet


def training_only_modules() -> nn.Module:
    """``netG.encoder`` and ``netD_motion`` of the authors' ``Audio2Pose`` (174 tensors)."""
    encoder = nn.Module()
    encoder.resunet = ResUnet()
    encoder.MLP = nn.Sequential()
    encoder.MLP.add_module("L0", nn.Linear(192 + 64 + 32 * 6 + 6, 128))
    encoder.linear_means = nn.Linear(128, 64)
    encoder.linear_logvar = nn.Linear(128, 64)
    encoder.linear_audio = nn.Linear(512, 6)
    encoder.classbias = nn.Parameter(torch.zeros(46, 64))

    def conv_norm(cin: int, cout: int, kernel: int) -> nn.Module:
        block = nn.Module()
        block.conv = nn.Conv1d(cin, cout, kernel, bias=False)
        block.norm = nn.BatchNorm1d(cout)
        return block

    disc = nn.Module()
    disc.seq = nn.Sequential(conv_norm(6, 256, 4), conv_norm(256, 512, 4), conv_norm(512, 1024, 3),
                             nn.Conv1d(1024, 1, 3))
    root = nn.Module()
    root.netG = nn.Module()
    root.netG.encoder = encoder
    root.netD_motion = disc
    return root


def randomize(state: dict[str, torch.Tensor], seed: int) -> dict[str, torch.Tensor]:
    """A copy of ``state`` with random floating-point values of the same shapes."""
    g = torch.Generator().manual_seed(seed)
    out = {}
    for key, value in state.items():
        if not value.is_floating_point():
            out[key] = torch.randint(0, 1000, value.shape, generator=g, dtype=value.dtype)
        elif key.endswith("running_var"):
            out[key] = torch.rand(value.shape, generator=g) * 0.5 + 0.75
        elif key.endswith(("weight_u", "weight_v")):
            out[key] = torch.nn.functional.normalize(torch.randn(value.shape, generator=g), dim=0)
        elif key.endswith("down.weight") and key.startswith("kp_extractor."):
            out[key] = value.clone()  # the anti-alias kernel is a constant
        else:
            scale = 1.0 / max(1, value[0].numel()) ** 0.5 if value.ndim > 1 else 0.1
            out[key] = torch.randn(value.shape, generator=g) * scale
    return out


def official_state(seed: int = 0, nets: dict[str, nn.Module] | None = None) -> dict[str, torch.Tensor]:
    """The 1,305 tensors of the official 256 file, random; ``nets`` defaults to ours."""
    nets = nets if nets is not None else build_networks()
    state: dict[str, torch.Tensor] = {}
    for name, model in nets.items():
        state.update({f"{name}.{k}": v for k, v in model.state_dict().items()})
    if not any(k.startswith("audio2pose.netD_motion.") for k in state):
        state.update({f"audio2pose.{k}": v for k, v in training_only_modules().state_dict().items()})
    return randomize(state, seed)


def part(state: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    """The tensors under ``prefix.``, prefix removed."""
    return {k[len(prefix) + 1:]: v for k, v in state.items() if k.startswith(prefix + ".")}


def mapping_checkpoint(path: Path, channels: int = 70, seed: int = 1) -> dict[str, torch.Tensor]:
    """Write a ``mapping_*.pth.tar`` in the authors' training-checkpoint layout; returns its state dict."""
    model = MappingNet(MappingConfig(coeff_channels=channels))
    state = randomize(model.state_dict(), seed)
    optimizer = torch.optim.Adam(model.parameters())
    torch.save({"mapping": state, "optimizer_mapping": optimizer.state_dict(), "epoch": 229}, path)
    return state
