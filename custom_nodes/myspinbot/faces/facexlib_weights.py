"""Strict loading of the two facexlib files SadTalker's authors use for landmarks.

* ``detection_Resnet50_Final.pth`` (facexlib release v0.1.0, from biubug6/Pytorch_Retinaface):
  a bare state dict of :class:`~.retinaface.RetinaFace`, keys prefixed ``module.``
  (``nn.DataParallel``), removed on reading.
* ``alignment_WFLW_4HG.pth`` (facexlib release v0.1.0, from protossw512/AdaptiveWingLoss):
  a training checkpoint whose ``state_dict`` entry is :class:`~.fan98.FAN98`'s state dict.

Both are read with :func:`myspinbot.lipsync.weights.read_weights` (``torch.load(...,
weights_only=True)``, ``module.`` removed, a ``state_dict`` entry used when present; a
``.safetensors`` conversion works too) and checked with :func:`~myspinbot.lipsync.weights.check_keys`:
every key and shape, BN ``num_batches_tracked`` counters optional (files from older PyTorch
lack them). A file that does not fit raises ``InvalidModelError`` (``[invalid_model]``)
naming the missing, unexpected and reshaped keys. Imports no ComfyUI module.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
from torch import nn

from ..lipsync.errors import InvalidModelError
from ..lipsync.weights import check_keys, read_weights
from .fan98 import FAN98
from .retinaface import RetinaFace

RETINAFACE_FILE = "detection_Resnet50_Final.pth"
FAN_FILE = "alignment_WFLW_4HG.pth"


def _load(model: nn.Module, path: str | os.PathLike, what: str, kind: str,
          device: torch.device | str, dtype: torch.dtype) -> nn.Module:
    source = Path(path).name
    state = read_weights(path, what=what)
    counters = [k for k in model.state_dict() if k.endswith("num_batches_tracked")]
    check_keys(model, state, source=source, kind=kind, optional=counters)
    result = model.load_state_dict(state, strict=False)
    if result.unexpected_keys or set(result.missing_keys) - set(counters):  # check_keys has ruled this out
        raise InvalidModelError(f"{source} does not fit {kind}", details={"path": str(path)})
    model.requires_grad_(False)
    return model.to(device=device, dtype=dtype).eval()


def load_retinaface(path: str | os.PathLike, *, device: torch.device | str = "cpu",
                    dtype: torch.dtype = torch.float32) -> RetinaFace:
    """RetinaFace-ResNet50 from ``detection_Resnet50_Final.pth`` (or a conversion), eval mode.

    Raises:
        ModelsMissingError: no file at ``path``.
        InvalidModelError (``invalid_model``): unreadable, refused by the weights-only
            unpickler, or keys/shapes other than RetinaFace-ResNet50's (named in the message
            and ``details``).
    """
    return _load(RetinaFace(), path, "RetinaFace weights", "RetinaFace-ResNet50", device, dtype)


def load_fan98(path: str | os.PathLike, *, device: torch.device | str = "cpu",
               dtype: torch.dtype = torch.float32) -> FAN98:
    """The 98-point, four-hourglass network from ``alignment_WFLW_4HG.pth``, eval mode.

    Raises:
        ModelsMissingError: no file at ``path``.
        InvalidModelError (``invalid_model``): as :func:`load_retinaface`.
    """
    return _load(FAN98(), path, "FAN landmark weights", "FAN-98 (AWing, four hourglasses)", device, dtype)
