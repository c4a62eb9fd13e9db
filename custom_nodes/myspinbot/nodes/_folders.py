"""The pack's ComfyUI model folders (``models/f5_tts``, ``models/vocoders``, ``models/wav2lip``,
``models/syncnet``) and a ``ModelLocator`` over ComfyUI's ``folder_paths``."""

from __future__ import annotations

import os
from pathlib import Path

import folder_paths

from ..models.locate import ModelLocator

MODEL_FOLDERS = ("f5_tts", "vocoders", "wav2lip", "syncnet")


def register_model_folders() -> None:
    """Make ComfyUI search ``<models_dir>/<folder>`` for each of the pack's folders.

    Idempotent. A folder ComfyUI does not know yet gets that directory as its default (first)
    entry; for one already configured (extra_model_paths.yaml), it is appended, so the
    user's directories keep precedence."""
    for folder in MODEL_FOLDERS:
        known = folder in folder_paths.folder_names_and_paths
        default = os.path.join(folder_paths.models_dir, folder)
        if known and default in folder_paths.get_folder_paths(folder):
            continue
        folder_paths.add_model_folder_path(folder, default, is_default=not known)


def comfy_folder_dirs(folder: str) -> list[Path]:
    """The directories ComfyUI searches for ``folder``."""
    return [Path(p) for p in folder_paths.get_folder_paths(folder)]


def comfy_locator() -> ModelLocator:
    """A ``ModelLocator`` over ComfyUI's model folders (registering the pack's first)."""
    register_model_folders()
    return ModelLocator(comfy_folder_dirs)
