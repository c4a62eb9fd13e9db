"""Reading Wav2Lip weights: the official ``.pth`` checkpoints and ``.safetensors`` conversions.

The official ``wav2lip.pth`` and ``wav2lip_gan.pth`` (Rudrabha/Wav2Lip, saved by its training
scripts) are dictionaries ``{"state_dict", "optimizer", "global_step", "global_epoch"}``; the
state dict's keys may carry the ``module.`` prefix of ``nn.DataParallel``. They are read with
``torch.load(..., weights_only=True)`` (never unpickling code), only ``state_dict`` is used,
and the prefix is removed. A ``.safetensors`` file holds the state dict itself (prefixed or
not). Loading is strict: every key of the architecture must be present with its shape, and
no other key may be (the reading and the checks are :mod:`.weights`'s). Only then, for
inference, each batch norm is folded into its convolution (:meth:`.Wav2Lip.fold_norms`) and
the weights are stored channels-last.
Imports no ComfyUI module.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import torch

from .wav2lip import Wav2Lip, Wav2LipConfig
from .weights import check_keys, read_weights


def read_state_dict(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """The tensors of a Wav2Lip weights file, on the CPU, ``module.`` prefix removed.

    Args:
        path: an official ``.pth`` checkpoint (or a bare state dict saved with ``torch.save``)
            or a ``.safetensors`` file (chosen by the file's suffix).

    Returns:
        ``{name: tensor}`` as stored (dtype kept; ``num_batches_tracked`` entries included).

    Raises:
        ModelsMissingError: the file does not exist.
        InvalidModelError (``invalid_model``): unreadable, refused by the weights-only
            unpickler, or without a state dict of tensors.
    """
    return read_weights(path, what="Wav2Lip weights")


def check_state_dict(model: torch.nn.Module, state: Mapping[str, torch.Tensor], *, source: str = "weights") -> None:
    """Raise unless ``state`` has exactly ``model``'s keys, each with the model's shape.

    Raises:
        InvalidModelError (``invalid_model``): ``details`` lists ``missing``, ``unexpected``
            and ``reshaped`` keys; the message names the first few of each.
    """
    check_keys(model, state, source=source, kind="Wav2Lip generator")


def load_wav2lip(
    path: str | os.PathLike,
    *,
    device: torch.device | str = "cpu",
    dtype: torch.dtype = torch.float32,
    config: Wav2LipConfig | None = None,
    fold_norms: bool = True,
    channels_last: bool = True,
) -> Wav2Lip:
    """Build the generator and load ``path`` into it strictly (see :func:`read_state_dict`).

    Args:
        path: ``wav2lip.pth``, ``wav2lip_gan.pth`` or a ``.safetensors`` conversion.
        device, dtype: where the model is put and the dtype of its floating-point tensors.
        config: architecture sizes; ``None`` for the official model.
        fold_norms: merge each batch norm into its convolution after the strict load (faster
            inference, same outputs up to float rounding; see :meth:`.Wav2Lip.fold_norms`).
            ``False`` keeps the official module tree and state dict.
        channels_last: store the convolution weights channels-last (``torch.channels_last``):
            the convolutions then run without converting every activation to and from the
            backend's blocked layout (on a CPU about 1.2x faster per frame); outputs come back
            channels-last too (same values, other strides).

    Returns:
        The :class:`~.wav2lip.Wav2Lip` in eval mode, gradients off.

    Raises:
        ModelsMissingError: no file at ``path``.
        InvalidModelError (``invalid_model``): unreadable file, or keys/shapes that do not
            match the architecture (named in the message and ``details``).
    """
    state = read_state_dict(path)
    model = Wav2Lip(config)
    check_state_dict(model, state, source=Path(path).name)
    model.load_state_dict(state, strict=True)
    model.requires_grad_(False)
    if fold_norms:  # in float64 on the CPU, before any cast: the checks above saw the file's keys
        model.fold_norms()
    if channels_last:
        model.to(memory_format=torch.channels_last)
    return model.to(device=device, dtype=dtype).eval()
