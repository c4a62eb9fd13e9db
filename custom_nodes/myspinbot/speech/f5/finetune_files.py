"""The files of an F5-TTS fine-tune: the base checkpoint placed where the package's ``Trainer``
looks for a pretrained one, and the inference checkpoint written from the trainer in the
released layout (upstream: ``f5_tts/model/trainer.py`` ``load_checkpoint``;
``f5_tts/infer/utils_infer.py`` ``load_checkpoint``, which reads ``ema_model.<key>`` tensors).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from ...errors import InvalidInputError

PRETRAINED = "pretrained_base.safetensors"


def place_base(base: Path, work_dir: Path) -> None:
    """Put the base checkpoint at ``work_dir/pretrained_base.safetensors``, where the Trainer
    looks for a pretrained one (a symlink, else a hard link, else a copy; a ``.pt`` base has its
    ``ema_model_state_dict`` written out as safetensors).

    Raises:
        InvalidInputError: a ``.pt`` without ``ema_model_state_dict``.
    """
    target = work_dir / PRETRAINED
    if target.exists() or target.is_symlink():
        target.unlink()
    if base.suffix == ".safetensors":
        for link in (os.symlink, os.link):
            try:
                link(base.resolve(), target)
                return
            except OSError:
                continue
        shutil.copyfile(base, target)
        return
    import torch  # noqa: PLC0415
    from safetensors.torch import save_file  # noqa: PLC0415

    state = torch.load(base, map_location="cpu", weights_only=True)
    ema = state.get("ema_model_state_dict") if isinstance(state, dict) else None
    if ema is None:
        raise InvalidInputError(f"{base} holds no 'ema_model_state_dict' (not an F5-TTS checkpoint)")
    save_file({k: v.contiguous() for k, v in ema.items()}, str(target))


def export_checkpoint(trainer, path: Path, step: int, weights: str, metadata: dict[str, str]) -> Path:
    """Write the trainer's online or EMA weights as ``ema_model.<key>`` safetensors (the
    released layout ``load_f5`` reads), atomically. ``metadata`` values are strings."""
    import torch  # noqa: PLC0415
    from safetensors.torch import save_file  # noqa: PLC0415

    if weights == "ema":
        source = trainer.ema_model.ema_model.state_dict()
    else:
        source = trainer.accelerator.unwrap_model(trainer.model).state_dict()
    tensors = {f"ema_model.{k}": v.detach().to("cpu", torch.float32).contiguous().clone() for k, v in source.items()}
    tensors["initted"], tensors["step"] = torch.tensor(True), torch.tensor(int(step))
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    save_file(tensors, str(partial), metadata={**metadata, "steps": str(int(step))})
    os.replace(partial, path)
    return path


def read_metadata(path: str | os.PathLike) -> dict[str, str]:
    """The metadata of a checkpoint written by ``export_checkpoint`` (``{}`` for others):
    ``format``, ``base_model``, ``steps``, ``clips``, ``seconds``, ``learning_rate``, ``seed``,
    ``weights``, ``batch_frames`` (all strings)."""
    from safetensors import safe_open  # noqa: PLC0415

    with safe_open(str(path), framework="pt") as f:
        return dict(f.metadata() or {})
