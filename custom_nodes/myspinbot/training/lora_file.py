"""The character LoRA file: a ``.safetensors`` with the trained tensors in core's LoRA key
layout (``diffusion_model.<module>.lora_up.weight`` / ``.lora_down.weight`` / ``.alpha``,
``.diff`` for 1-D weights, ``.diff_b`` for biases: what ComfyUI's ``LoraLoader`` reads) and
string metadata under ``myspinbot.*`` keys. Written atomically (a ``.tmp`` sibling renamed over
the target), so an interrupted save never leaves half a file where a checkpoint was.

Imports no ComfyUI module.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from ..errors import InvalidInputError

META_PREFIX = "myspinbot."
_NAME = re.compile(r"[^A-Za-z0-9._-]+")


@dataclass(frozen=True)
class LoraMeta:
    """What the file records about its training (all written as strings).

    Attributes:
        trigger_word: the word the captions used for the character.
        steps: optimizer steps the tensors have been trained for (the resume point).
        target_steps: steps the run was asked for.
        rank: LoRA rank.
        dataset_size: training images (crops and flips) the run used.
        base_model: core's model config class name (``SD15``, ``SDXL``, ...).
        base_model_sha256: :func:`state_sha256` of the base diffusion model's weights.
        resolution: training image side, px.
        learning_rate, seed, batch_size: the run's settings.
        captions: the distinct captions used.
    """

    trigger_word: str
    steps: int
    target_steps: int
    rank: int
    dataset_size: int
    base_model: str
    base_model_sha256: str
    resolution: int
    learning_rate: float
    seed: int
    batch_size: int
    captions: tuple[str, ...] = ()

    def to_metadata(self) -> dict[str, str]:
        """``{"myspinbot.<field>": text}`` for safetensors (captions as a JSON list)."""
        out = {}
        for key, value in asdict(self).items():
            out[META_PREFIX + key] = json.dumps(list(value)) if key == "captions" else str(value)
        out["format"] = "pt"
        return out

    @classmethod
    def from_metadata(cls, metadata: dict[str, str] | None) -> "LoraMeta":
        """Parse what :meth:`to_metadata` wrote.

        Raises:
            InvalidInputError: a field is missing or malformed (not a LoRA this pack trained).
        """
        metadata = metadata or {}
        kinds = {f: t for f, t in cls.__annotations__.items()}
        values, name = {}, ""
        try:
            for name, kind in kinds.items():
                text = metadata.get(META_PREFIX + name)
                if text is None:
                    if name == "captions":
                        continue
                    raise KeyError(name)
                if name == "captions":
                    values[name] = tuple(json.loads(text))
                elif kind == "int":
                    values[name] = int(text)
                elif kind == "float":
                    values[name] = float(text)
                else:
                    values[name] = text
        except (KeyError, ValueError, TypeError) as err:
            raise InvalidInputError(f"the LoRA's metadata has no usable '{META_PREFIX}{name}' "
                                    "(only LoRAs trained by 'MySpinBot Train Character LoRA' can be resumed)") from err
        return cls(**values)


def safe_name(name: str) -> str:
    """A file stem from a user's LoRA name: letters, digits, ``.``, ``_``, ``-`` (others become
    ``_``); no leading dots; a ``.safetensors`` suffix is dropped.

    Raises:
        InvalidInputError: nothing usable is left.
    """
    stem = str(name or "").strip()
    if stem.lower().endswith(".safetensors"):
        stem = stem[: -len(".safetensors")]
    stem = _NAME.sub("_", stem).lstrip(".")[:100]
    if not stem.strip("_"):
        raise InvalidInputError(f"'{name}' is not a usable LoRA name: use letters, digits, '.', '_' or '-'")
    return stem


def _tensor_bytes(tensor: torch.Tensor) -> bytes:
    flat = tensor.detach().to("cpu").contiguous().reshape(-1)
    return flat.view(torch.uint8).numpy().tobytes() if flat.numel() else b""


def state_sha256(named_tensors: Iterable[tuple[str, torch.Tensor]]) -> str:
    """sha256 (hex) of a model's weights: for each tensor in key order its name, dtype, shape
    and raw bytes. Tensors are copied to the CPU one at a time."""
    digest = hashlib.sha256()
    for name, tensor in sorted(named_tensors, key=lambda kv: kv[0]):
        digest.update(f"{name}|{tensor.dtype}|{tuple(tensor.shape)}\n".encode())
        try:
            digest.update(_tensor_bytes(tensor))
        except (RuntimeError, TypeError):  # a tensor subclass (e.g. quantized) without a plain byte view
            digest.update(b"?")
    return digest.hexdigest()


def _atomic_save(path: Path, tensors: dict[str, torch.Tensor], metadata: dict[str, str]) -> Path:
    from safetensors.torch import save_file

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    cpu = {k: v.detach().to("cpu").contiguous() for k, v in tensors.items()}
    save_file(cpu, str(tmp), metadata=metadata)
    os.replace(tmp, path)
    return path


def save_lora(path: str | os.PathLike, tensors: dict[str, torch.Tensor], meta: LoraMeta) -> Path:
    """Write ``tensors`` (moved to the CPU, contiguous) and ``meta`` to ``path`` atomically."""
    return _atomic_save(Path(path), tensors, meta.to_metadata())


def optimizer_path(lora_path: str | os.PathLike) -> Path:
    """Where the optimizer state of a LoRA checkpoint lives: ``<stem>.optimizer`` beside it (an
    extension ComfyUI does not list as a model, so it stays out of the LoRA dropdowns)."""
    path = Path(lora_path)
    return path.with_name(path.stem + ".optimizer")


def save_optimizer_state(path: str | os.PathLike, tensors: dict[str, torch.Tensor], steps: int) -> Path:
    """Write an optimizer state (``{"<lora key>:<state name>": tensor}``) saved after ``steps``
    steps, atomically, in safetensors format."""
    return _atomic_save(Path(path), tensors, {META_PREFIX + "steps": str(int(steps)), "format": "pt"})


def load_optimizer_state(path: str | os.PathLike, steps: int) -> dict[str, torch.Tensor] | None:
    """The optimizer state at ``path`` if it was saved after exactly ``steps`` steps (the LoRA
    it belongs to), else ``None`` (missing, unreadable, or from another save)."""
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as f:
            if (f.metadata() or {}).get(META_PREFIX + "steps") != str(int(steps)):
                return None
            return {k: f.get_tensor(k) for k in f.keys()}
    except Exception:  # a missing or damaged state only costs the optimizer's moments
        return None


def load_lora(path: str | os.PathLike) -> tuple[dict[str, torch.Tensor], LoraMeta]:
    """The tensors and metadata of a LoRA written by :func:`save_lora`.

    Raises:
        InvalidInputError: unreadable, or without this pack's metadata.
    """
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as f:
            metadata = f.metadata()
            tensors = {k: f.get_tensor(k) for k in f.keys()}
    except Exception as err:  # safetensors raises its own SafetensorError and OSError
        raise InvalidInputError(f"cannot read the LoRA {path}: {err}") from err
    return tensors, LoraMeta.from_metadata(metadata)


def lora_rank(tensors: dict[str, torch.Tensor]) -> int | None:
    """The rank of the first ``*.lora_down.weight`` tensor, or ``None`` when there is none."""
    for key in sorted(tensors):
        if key.endswith(".lora_down.weight"):
            return int(tensors[key].shape[0])
    return None
