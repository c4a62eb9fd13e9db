"""MappingNet: 3DMM motion coefficients -> face-vid2vid head pose and keypoint deltas.

Zhang et al., SadTalker (CVPR 2023), section 3.3 ("Face Render"): a 1-D convolutional
network maps a window of 27 frames of coefficients (64 expression + 6 pose [+ 3 crop
parameters for the ``full`` mode checkpoint]) to yaw/pitch/roll logits over 66 bins of 3
degrees, a translation and 15 keypoint expression offsets; the keypoints of a frame are then
the canonical ones rotated, translated and offset (face-vid2vid, eq. 1). Layout of upstream
``src/facerender/modules/mapping.py`` (``MappingNet``, ``mapping_params`` of
``src/config/facerender.yaml``: 70 inputs, ``facerender_still.yaml``: 73) and the maths of
``keypoint_transformation`` in ``src/facerender/modules/make_animation.py``. Checkpoints
``mapping_00229-model.pth.tar`` (70) and ``mapping_00109-model.pth.tar`` (73), entry
``mapping``. Imports no ComfyUI module.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

PI_APPROX = 3.14  # the authors convert degrees with 3.14, not pi; kept for identical motion


@dataclass(frozen=True)
class MappingConfig:
    """Sizes of the mapping network: ``coeff_channels`` 70 (crop/resize) or 73 (full)."""

    coeff_channels: int = 70
    descriptor_channels: int = 1024
    layers: int = 3
    num_kp: int = 15
    num_bins: int = 66


class MappingNet(nn.Module):
    """``[B, coeff_channels, 27]`` coefficient window -> dict of head-pose terms.

    Returns ``{"yaw", "pitch", "roll"}`` ``[B, 66]`` bin logits, ``"t"`` ``[B, 3]`` and
    ``"exp"`` ``[B, 3 * num_kp]``.
    """

    def __init__(self, config: MappingConfig | None = None):
        super().__init__()
        cfg = config or MappingConfig()
        self.config = cfg
        self.first = nn.Sequential(nn.Conv1d(cfg.coeff_channels, cfg.descriptor_channels, 7))
        for i in range(cfg.layers):
            setattr(self, f"encoder{i}", nn.Sequential(
                nn.LeakyReLU(0.1), nn.Conv1d(cfg.descriptor_channels, cfg.descriptor_channels, 3, dilation=3)))
        self.fc_roll = nn.Linear(cfg.descriptor_channels, cfg.num_bins)
        self.fc_pitch = nn.Linear(cfg.descriptor_channels, cfg.num_bins)
        self.fc_yaw = nn.Linear(cfg.descriptor_channels, cfg.num_bins)
        self.fc_t = nn.Linear(cfg.descriptor_channels, 3)
        self.fc_exp = nn.Linear(cfg.descriptor_channels, 3 * cfg.num_kp)

    def forward(self, coeffs: torch.Tensor) -> dict[str, torch.Tensor]:
        out = self.first(coeffs)
        for i in range(self.config.layers):
            out = getattr(self, f"encoder{i}")(out) + out[:, :, 3:-3]
        out = out.mean(dim=2)
        return {"yaw": self.fc_yaw(out), "pitch": self.fc_pitch(out), "roll": self.fc_roll(out),
                "t": self.fc_t(out), "exp": self.fc_exp(out)}


def bins_to_degrees(logits: torch.Tensor) -> torch.Tensor:
    """``[B, 66]`` logits -> ``[B]`` degrees: softmax expectation of bin index ``* 3 - 99``."""
    index = torch.arange(logits.shape[1], dtype=logits.dtype, device=logits.device)
    return (F.softmax(logits, dim=1) * index).sum(1) * 3 - 99


def rotation_matrix(yaw: torch.Tensor, pitch: torch.Tensor, roll: torch.Tensor) -> torch.Tensor:
    """``[B]`` degrees -> ``[B, 3, 3]`` rotation ``P @ Y @ R`` (pitch about x, yaw about y, roll about z)."""
    p, y, r = (a / 180 * PI_APPROX for a in (pitch, yaw, roll))
    one, zero = torch.ones_like(p), torch.zeros_like(p)

    def mat(rows):
        return torch.stack([torch.stack(row, dim=-1) for row in rows], dim=-2)

    pm = mat([[one, zero, zero], [zero, p.cos(), -p.sin()], [zero, p.sin(), p.cos()]])
    ym = mat([[y.cos(), zero, y.sin()], [zero, one, zero], [-y.sin(), zero, y.cos()]])
    rm = mat([[r.cos(), -r.sin(), zero], [r.sin(), r.cos(), zero], [zero, zero, one]])
    return pm @ ym @ rm


def transform_keypoints(canonical: torch.Tensor, pose: dict[str, torch.Tensor],
                        angles: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None = None) -> torch.Tensor:
    """Posed keypoints: ``R @ kp + t + exp`` with ``t``'s x and z zeroed (as upstream).

    Args:
        canonical: ``[B, K, 3]`` from the keypoint detector.
        pose: :class:`MappingNet` output.
        angles: optional ``(yaw, pitch, roll)`` in degrees ``[B]`` replacing the predicted
            ones (upstream ``yaw_c_seq`` & co.).

    Returns:
        ``[B, K, 3]``.
    """
    yaw, pitch, roll = angles if angles is not None else (
        bins_to_degrees(pose["yaw"]), bins_to_degrees(pose["pitch"]), bins_to_degrees(pose["roll"]))
    rotated = torch.einsum("bmp,bkp->bkm", rotation_matrix(yaw, pitch, roll), canonical)
    t = pose["t"] * torch.tensor([0.0, 1.0, 0.0], dtype=pose["t"].dtype, device=pose["t"].device)
    return rotated + t[:, None, :] + pose["exp"].view(pose["exp"].shape[0], -1, 3)
