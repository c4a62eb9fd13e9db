"""Reading model weights without unpickling code: ``.pth`` checkpoints and ``.safetensors``.

Shared by the lip-sync models' loaders (Wav2Lip, SyncNet) and SadTalker's. A ``.pth`` file
is read with ``torch.load(..., weights_only=True)`` (PyTorch's restricted unpickler: tensors,
containers and numbers only, never code) in any format ``torch.save`` ever wrote (zip since
1.6, the legacy pickle stream, the older tar archive); a training checkpoint's ``state_dict``
entry (or another named entry) is used when present, else a bare dictionary of tensors. A
``.safetensors`` file holds the state dict itself. The ``module.`` prefix of
``nn.DataParallel`` is removed. :func:`check_keys` then demands exactly a model's keys with
its shapes. Imports no ComfyUI module.
"""

from __future__ import annotations

import os
import pickle
import re
import warnings
from collections.abc import Iterable, Mapping
from pathlib import Path

import torch

from ..errors import ModelsMissingError
from .errors import InvalidModelError

PREFIX = "module."
_REFUSED_GLOBAL = re.compile(r"Unsupported global: GLOBAL ([\w.]+)")
_LIST_LIMIT = 8  # key names quoted in a message (all of them are in ``details``)


_ZIP_MAGIC = b"PK\x03\x04"  # torch.save since 1.6
_PICKLE_PROTO = b"\x80"  # the legacy format starts with a pickled magic number
_TAR_MAGIC = b"ustar"  # torch.save before 0.1.10: a tar archive ("ustar" at byte 257)


def _last_line(exc: BaseException) -> str:
    """The unpickler's own complaint, without torch's advice around it."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    detail = [line for line in lines if "WeightsUnpickler error" in line or line.startswith("Unsupported")]
    return (detail[-1] if detail else lines[-1] if lines else type(exc).__name__)[:200]


def _describe(keys: list[str]) -> str:
    shown = ", ".join(keys[:_LIST_LIMIT])
    return shown + (f" and {len(keys) - _LIST_LIMIT} more" if len(keys) > _LIST_LIMIT else "")


def _strip_prefix(state: Mapping, path: Path) -> dict[str, torch.Tensor]:
    out: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        if not isinstance(key, str) or not isinstance(value, torch.Tensor):
            raise InvalidModelError(f"{path.name}: the state dict holds a non-tensor entry {key!r}",
                                    details={"path": str(path)})
        name = key[len(PREFIX):] if key.startswith(PREFIX) else key
        if name in out:
            raise InvalidModelError(f"{path.name}: key {name!r} appears with and without the '{PREFIX}' prefix",
                                    details={"path": str(path)})
        out[name] = value
    return out


def _read_pth(path: Path, entry: str = "state_dict") -> Mapping:
    with path.open("rb") as f:
        start = f.read(262)
    head = start[:4]
    if not (head.startswith(_ZIP_MAGIC) or head[:1] == _PICKLE_PROTO or start[257:262] == _TAR_MAGIC):
        raise InvalidModelError(
            f"{path.name} is not a readable PyTorch checkpoint (it starts with {head!r}, neither a zip archive "
            "nor a pickle; an interrupted or redirected download leaves such files)", details={"path": str(path)})
    try:
        with warnings.catch_warnings():  # torch warns before refusing a TorchScript archive
            warnings.simplefilter("ignore", UserWarning)
            checkpoint = torch.load(str(path), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        refused = _REFUSED_GLOBAL.search(str(exc))
        if refused is None:
            raise InvalidModelError(f"{path.name} is not a readable PyTorch checkpoint ({_last_line(exc)})",
                                    details={"path": str(path)}) from exc
        what = f"a Python object of type {refused.group(1)}"
        raise InvalidModelError(
            f"{path.name} holds {what}, which a weights-only load refuses (no code is unpickled from model "
            "files). If the file comes from a source you trust, convert its 'state_dict' once to .safetensors "
            "(safetensors.torch.save_file) and load that instead",
            details={"path": str(path), "refused_global": refused.group(1)},
        ) from exc
    except (RuntimeError, EOFError, OSError, ValueError) as exc:
        if "TorchScript" in str(exc):
            reason = "it is a TorchScript archive (compiled code), not a checkpoint of weights"
        else:
            reason = _last_line(exc)
        raise InvalidModelError(f"{path.name} is not a readable PyTorch checkpoint ({reason})",
                                details={"path": str(path)}) from exc
    if isinstance(checkpoint, Mapping) and isinstance(checkpoint.get(entry), Mapping):
        return checkpoint[entry]
    if isinstance(checkpoint, Mapping) and checkpoint and all(isinstance(v, torch.Tensor) for v in checkpoint.values()):
        return checkpoint  # a bare state dict
    top = sorted(map(str, checkpoint)) if isinstance(checkpoint, Mapping) else type(checkpoint).__name__
    raise InvalidModelError(f"{path.name} has no {entry!r} of tensors (top level: {top})",
                            details={"path": str(path)})


def _read_safetensors(path: Path) -> Mapping:
    from safetensors import SafetensorError  # noqa: PLC0415
    from safetensors.torch import load_file  # noqa: PLC0415

    try:
        return load_file(str(path), device="cpu")
    except (SafetensorError, OSError, ValueError) as exc:
        raise InvalidModelError(f"{path.name} is not a readable safetensors file ({exc})",
                                details={"path": str(path)}) from exc


def read_weights(path: str | os.PathLike, *, what: str = "model weights",
                 entry: str = "state_dict") -> dict[str, torch.Tensor]:
    """The tensors of a weights file, on the CPU, ``module.`` prefix removed.

    Args:
        path: a ``.pth`` checkpoint (``{entry: ...}`` or a bare state dict saved with
            ``torch.save``) or a ``.safetensors`` file (chosen by the file's suffix).
        what: how messages name the file's kind (e.g. ``"Wav2Lip weights"``).
        entry: the training checkpoint's entry holding the state dict (``"state_dict"`` for
            Wav2Lip; SadTalker's mapping checkpoints use ``"mapping"``).

    Returns:
        ``{name: tensor}`` as stored (dtype kept; ``num_batches_tracked`` entries included).

    Raises:
        ModelsMissingError: the file does not exist.
        InvalidModelError (``invalid_model``): unreadable, refused by the weights-only
            unpickler, or without a state dict of tensors.
    """
    p = Path(path)
    if not p.is_file():
        raise ModelsMissingError(f"{what} not found: {p}", details={"missing": [p.name], "files": [str(p)]})
    raw = _read_safetensors(p) if p.suffix.lower() == ".safetensors" else _read_pth(p, entry)
    return _strip_prefix(raw, p)


def check_keys(model: torch.nn.Module, state: Mapping[str, torch.Tensor], *, source: str = "weights",
               kind: str = "model", optional: Iterable[str] = (), prefix: str = "") -> None:
    """Raise unless ``state`` has exactly ``model``'s keys, each with the model's shape.

    Args:
        model, state: the architecture and the file's tensors.
        source: the file's name, for messages; ``kind``: what it should be (``"... is not a
            <kind> checkpoint"``).
        optional: model keys that may be absent from the file (they keep the model's values).
        prefix: prepended to every key name reported (``state`` holds one part of a file
            whose keys carry that prefix, e.g. ``"generator."``).

    Raises:
        InvalidModelError (``invalid_model``): ``details`` lists ``missing``, ``unexpected``
            and ``reshaped`` keys; the message names the first few of each.
    """
    expected = model.state_dict()
    may_lack = set(optional)
    missing = [prefix + k for k in expected if k not in state and k not in may_lack]
    unexpected = [prefix + k for k in state if k not in expected]
    reshaped = [f"{prefix}{k}: file {list(state[k].shape)} vs model {list(v.shape)}"
                for k, v in expected.items() if k in state and tuple(state[k].shape) != tuple(v.shape)]
    if not (missing or unexpected or reshaped):
        return
    parts = []
    if missing:
        parts.append(f"missing {len(missing)} key(s): {_describe(missing)}")
    if unexpected:
        parts.append(f"unexpected {len(unexpected)} key(s): {_describe(unexpected)}")
    if reshaped:
        parts.append(f"{len(reshaped)} key(s) of another shape: {_describe(reshaped)}")
    raise InvalidModelError(
        f"{source} is not a {kind} checkpoint ({'; '.join(parts)})",
        details={"path": source, "missing": missing, "unexpected": unexpected, "reshaped": reshaped},
    )
