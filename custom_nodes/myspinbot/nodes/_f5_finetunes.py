"""Fine-tuned F5-TTS voices in ComfyUI's ``models/f5_tts/myspinbot/<name>/`` folders.

Each folder holds ``<name>.safetensors`` (released layout, ``load_f5`` reads it unchanged),
``vocab.txt`` (the base model's) and ``model_config.yaml`` (the base's architecture), plus
``train/`` (the package Trainer's state for resume, and the prepared dataset). The voice clone
node lists them as ``myspinbot/<name>``.
"""

from __future__ import annotations

import re
from pathlib import Path

from ..errors import InvalidInputError, ModelsMissingError
from ._folders import comfy_folder_dirs, register_model_folders

SUBFOLDER = "myspinbot"
PREFIX = SUBFOLDER + "/"
VOCAB = "vocab.txt"
CONFIG = "model_config.yaml"


def safe_voice_name(name: str) -> str:
    """A file-system-safe name: letters, digits, ``-``, ``_``, ``.`` (others become ``_``).

    Raises:
        InvalidInputError: empty after cleaning.
    """
    cleaned = re.sub(r"[^A-Za-z0-9._-]+", "_", str(name or "").strip()).strip("._")
    if not cleaned:
        raise InvalidInputError(f"'{name}' is not usable as a model name (use letters, digits, - or _)")
    return cleaned[:80]


def is_finetune(model: str) -> bool:
    return str(model).replace("\\", "/").startswith(PREFIX)


def finetune_dir(name: str) -> Path:
    """Where a new fine-tune goes: ``<first models/f5_tts folder>/myspinbot/<name>``."""
    register_model_folders()
    return comfy_folder_dirs("f5_tts")[0] / SUBFOLDER / safe_voice_name(name)


def finetune_names() -> list[str]:
    """``myspinbot/<name>`` of each complete fine-tune on disk (checkpoint, vocab and config), sorted."""
    register_model_folders()
    found = set()
    for root in comfy_folder_dirs("f5_tts"):
        base = root / SUBFOLDER
        if not base.is_dir():
            continue
        for folder in base.iterdir():
            if all((folder / f).is_file() for f in (f"{folder.name}.safetensors", VOCAB, CONFIG)):
                found.add(PREFIX + folder.name)
    return sorted(found)


def finetune_files(model: str) -> tuple[Path, Path]:
    """``(checkpoint, vocab)`` of ``myspinbot/<name>`` (its ``model_config.yaml`` sits beside them).

    Raises:
        ModelsMissingError: no complete fine-tune of that name in any ``models/f5_tts`` folder.
    """
    register_model_folders()
    name = str(model).replace("\\", "/")[len(PREFIX):]
    for root in comfy_folder_dirs("f5_tts"):
        folder = root / SUBFOLDER / name
        checkpoint = folder / f"{name}.safetensors"
        if checkpoint.is_file() and (folder / VOCAB).is_file() and (folder / CONFIG).is_file():
            return checkpoint, folder / VOCAB
    dirs = ", ".join(str(d / SUBFOLDER / name) for d in comfy_folder_dirs("f5_tts"))
    raise ModelsMissingError(f"fine-tuned F5-TTS voice '{model}' not found (looked in {dirs}); "
                             "train it with the 'MySpinBot Fine-tune F5-TTS Voice' node",
                             details={"missing": [str(model)]})
