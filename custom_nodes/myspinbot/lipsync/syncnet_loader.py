"""Loading SyncNet weights: the official ``syncnet_v2.model`` and ``.safetensors`` conversions.

The official file (VGG, distributed with joonson/syncnet_python) is a ``torch.save``'d
state dict of the model ``S`` in ``SyncNetModel.py``: the authors' ``loadParameters`` copies
each of its tensors into the model by name. Here it is read with ``torch.load(...,
weights_only=True)`` (:mod:`.weights`: tensors and containers only, never code) and loaded
strictly: every parameter and batch-norm statistic of :class:`.syncnet.SyncNet` must be
present with its shape, no other key may be. Only the ``num_batches_tracked`` counters may
be missing (a file saved by PyTorch before 0.4.1 has none; evaluation never reads them).
A file that the weights-only unpickler refuses is an ``invalid_model`` error that says so
and how to convert a trusted file to ``.safetensors``. Imports no ComfyUI module.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

from .errors import InvalidModelError
from .syncnet import SyncNet, SyncNetConfig
from .weights import check_keys, read_weights

WHAT = "SyncNet weights"
KIND = "SyncNet (syncnet_v2)"


def _counters(model: torch.nn.Module) -> list[str]:
    return [k for k in model.state_dict() if k.endswith(".num_batches_tracked")]


def read_syncnet_state(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """The tensors of a SyncNet weights file (``.model`` / ``.pth`` / ``.pt`` via a weights-only
    ``torch.load``; ``.safetensors`` by suffix), on the CPU, ``module.`` prefix removed.

    Raises:
        ModelsMissingError: the file does not exist.
        InvalidModelError (``invalid_model``): unreadable, refused by the weights-only
            unpickler (the message says so), or without a dictionary of tensors.
    """
    try:
        return read_weights(path, what=WHAT)
    except InvalidModelError as err:
        if "refused_global" in err.details:
            raise InvalidModelError(
                f"{Path(path).name} cannot be read weights-only: {err.message}",
                details=err.details) from err
        raise


def load_syncnet(
    path: str | os.PathLike,
    *,
    device: torch.device | str = "cpu",
    dtype: torch.dtype = torch.float32,
    config: SyncNetConfig | None = None,
) -> SyncNet:
    """Build SyncNet and load ``path`` into it strictly (see the module doc).

    Args:
        path: ``syncnet_v2.model`` or a ``.safetensors`` conversion of it.
        device, dtype: where the model is put and the dtype of its floating-point tensors.
        config: sizes; ``None`` for the official model.

    Returns:
        The :class:`~.syncnet.SyncNet` in eval mode, gradients off.

    Raises:
        ModelsMissingError: no file at ``path``.
        InvalidModelError (``invalid_model``): unreadable file, a weights-only refusal, or
            keys/shapes that do not match the architecture (named in message and ``details``).
    """
    state = read_syncnet_state(path)
    model = SyncNet(config)
    counters = _counters(model)
    check_keys(model, state, source=Path(path).name, kind=KIND, optional=counters)
    missing = model.load_state_dict(state, strict=False)
    if missing.unexpected_keys or set(missing.missing_keys) - set(counters):  # check_keys has ruled this out
        raise InvalidModelError(f"{Path(path).name} does not fit SyncNet", details={"path": str(path)})
    model.requires_grad_(False)
    return model.to(device=device, dtype=dtype).eval()
