"""Strict loading of the official SadTalker checkpoints.

* ``SadTalker_V0.0.2_256.safetensors`` / ``SadTalker_V0.0.2_512.safetensors`` (released by
  OpenTalker/SadTalker, v0.0.2-rc; written by upstream ``src/utils/model2safetensor.py``):
  one state dict whose keys start with exactly one of ``kp_extractor.``, ``generator.``,
  ``audio2exp.``, ``audio2pose.``, ``face_3drecon.`` (1,305 tensors: 75 / 386 / 93 / 419 /
  332). The file is split on those exact prefixes and each part is loaded strictly into its
  network. Of ``audio2pose.``, the CVAE encoder (``audio2pose.netG.encoder.*``) and the motion
  discriminator (``audio2pose.netD_motion.*``), 174 tensors used only in training, are
  skipped on purpose and listed in :attr:`SadTalkerNets.ignored`.
* ``mapping_00229-model.pth.tar`` (70 coefficients: ``crop`` / ``resize``) and
  ``mapping_00109-model.pth.tar`` (73: ``full``): training checkpoints whose ``mapping``
  entry is the :class:`~.mapping.MappingNet` state dict; read with
  ``torch.load(..., weights_only=True)``.

Reading and key checks are :mod:`myspinbot.lipsync.weights`' (shared with Wav2Lip and
SyncNet): any missing, unexpected or reshaped key raises ``InvalidModelError``
(``[invalid_model]``) naming it. Imports no ComfyUI module.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from ..lipsync.errors import InvalidModelError
from ..lipsync.weights import check_keys, read_weights
from .expnet import ExpNet
from .face_recon import FaceReconNet
from .generator import OcclusionAwareSpadeGenerator
from .keypoints import KeypointDetector
from .mapping import MappingConfig, MappingNet
from .posevae import Audio2Pose

PARTS = ("kp_extractor", "generator", "audio2exp", "audio2pose", "face_3drecon")
OFFICIAL_KEY_COUNTS = {"kp_extractor": 75, "generator": 386, "audio2exp": 93, "audio2pose": 419,
                       "face_3drecon": 332}  # per prefix, in both official files (1,305 in all)
TRAINING_ONLY = tuple(f"audio2pose.{p}" for p in Audio2Pose.TRAINING_ONLY)
MAPPING_CHANNELS = (70, 73)  # crop/resize, full


@dataclass
class SadTalkerNets:
    """The five networks of a SadTalker checkpoint, in eval mode, gradients off.

    ``ignored``: the file's keys skipped on purpose (training-only), sorted.
    """

    kp_extractor: KeypointDetector
    generator: OcclusionAwareSpadeGenerator
    audio2exp: ExpNet
    audio2pose: Audio2Pose
    face_3drecon: FaceReconNet
    ignored: tuple[str, ...] = field(default=())

    def modules(self) -> dict[str, nn.Module]:
        """``{prefix: network}`` in the file's order."""
        return {name: getattr(self, name) for name in PARTS}


def build_networks() -> dict[str, nn.Module]:
    """Fresh (randomly initialised) networks for each checkpoint prefix, in the official layout."""
    return {"kp_extractor": KeypointDetector(), "generator": OcclusionAwareSpadeGenerator(), "audio2exp": ExpNet(),
            "audio2pose": Audio2Pose(), "face_3drecon": FaceReconNet()}


def split_checkpoint(state: dict[str, torch.Tensor], *,
                     source: str = "weights") -> tuple[dict[str, dict[str, torch.Tensor]], list[str]]:
    """Split a SadTalker state dict on its exact part prefixes.

    Returns:
        ``({part: {key without prefix: tensor}}, ignored)``: ``ignored`` lists the
        training-only keys (full names, sorted); every part of :data:`PARTS` is present
        (possibly empty).

    Raises:
        InvalidModelError (``invalid_model``): a key under none of the prefixes
            (``details["unexpected"]`` lists them all).
    """
    parts: dict[str, dict[str, torch.Tensor]] = {name: {} for name in PARTS}
    ignored: list[str] = []
    stray: list[str] = []
    for key, value in state.items():
        part = next((name for name in PARTS if key.startswith(name + ".")), None)
        if part is None:
            stray.append(key)
        elif key.startswith(TRAINING_ONLY):
            ignored.append(key)
        else:
            parts[part][key[len(part) + 1:]] = value
    if stray:
        raise InvalidModelError(
            f"{source} is not a SadTalker checkpoint (unexpected {len(stray)} key(s) under none of the prefixes "
            f"{', '.join(p + '.' for p in PARTS)}: {_shown(stray)})",
            details={"path": source, "missing": [], "unexpected": stray, "reshaped": []})
    return parts, sorted(ignored)


def _check_all(nets: dict[str, nn.Module], parts: dict[str, dict[str, torch.Tensor]], source: str) -> None:
    """Check every part before loading any; one error naming the faults of all parts."""
    found: dict[str, list[str]] = {"missing": [], "unexpected": [], "reshaped": []}
    for name, model in nets.items():
        try:
            check_keys(model, parts[name], source=source, kind="SadTalker", prefix=name + ".")
        except InvalidModelError as exc:
            for kind in found:
                found[kind] += exc.details.get(kind, [])
    if not any(found.values()):
        return
    said = [f"{label} {len(found[kind])} key(s): {_shown(found[kind])}" for kind, label in
            (("missing", "missing"), ("unexpected", "unexpected"), ("reshaped", "of another shape"))
            if found[kind]]
    raise InvalidModelError(f"{source} is not a SadTalker checkpoint ({'; '.join(said)})",
                            details={"path": source, **found})


def _shown(keys: list[str], limit: int = 8) -> str:
    return ", ".join(keys[:limit]) + (f" and {len(keys) - limit} more" if len(keys) > limit else "")


def _ready(model: nn.Module, device: torch.device | str, dtype: torch.dtype) -> nn.Module:
    model.requires_grad_(False)
    return model.to(device=device, dtype=dtype).eval()


def load_sadtalker(path: str | os.PathLike, *, device: torch.device | str = "cpu",
                   dtype: torch.dtype = torch.float32) -> SadTalkerNets:
    """Build the five networks and load ``path`` into them strictly.

    Args:
        path: ``SadTalker_V0.0.2_256.safetensors`` or ``_512.safetensors`` (same layout; the
            size only changes the renderer's input).
        device, dtype: where the networks go and the dtype of their floating-point tensors.

    Raises:
        ModelsMissingError: no file at ``path``.
        InvalidModelError (``invalid_model``): unreadable, or a key missing, unexpected or of
            another shape in any part (full key names in the message and ``details``).
    """
    source = Path(path).name
    parts, ignored = split_checkpoint(read_weights(path, what="SadTalker weights"), source=source)
    nets = build_networks()
    _check_all(nets, parts, source)
    for name, model in nets.items():
        model.load_state_dict(parts[name], strict=True)
        _ready(model, device, dtype)
    return SadTalkerNets(**nets, ignored=tuple(ignored))


def load_mapping(path: str | os.PathLike, *, device: torch.device | str = "cpu",
                 dtype: torch.dtype = torch.float32) -> MappingNet:
    """Load a mapping checkpoint (its ``mapping`` entry, or a bare state dict) strictly.

    The input width (70 or 73 coefficients) is read from the file's first convolution.

    Raises:
        ModelsMissingError: no file at ``path``.
        InvalidModelError (``invalid_model``): unreadable, no ``mapping`` entry, an input width
            other than 70/73, or keys/shapes that differ from :class:`~.mapping.MappingNet`.
    """
    source = Path(path).name
    state = read_weights(path, what="SadTalker mapping weights", entry="mapping")
    first = state.get("first.0.weight")
    channels = int(first.shape[1]) if first is not None and first.ndim == 3 else MAPPING_CHANNELS[0]
    if channels not in MAPPING_CHANNELS:
        raise InvalidModelError(
            f"{source} is not a SadTalker mapping checkpoint (first.0.weight takes {channels} coefficients, "
            f"expected 70 or 73)", details={"path": source, "missing": [], "unexpected": [],
                                            "reshaped": [f"first.0.weight: file {list(first.shape)}"]})
    model = MappingNet(MappingConfig(coeff_channels=channels))
    check_keys(model, state, source=source, kind="SadTalker mapping")
    model.load_state_dict(state, strict=True)
    return _ready(model, device, dtype)
