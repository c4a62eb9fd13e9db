"""The pack's ComfyUI model folders (``models/f5_tts``, ``models/vocoders``, ``models/wav2lip``,
``models/syncnet``, ``models/sadtalker``, ``models/facexlib``), a ``ModelLocator`` over ComfyUI's
``folder_paths``, and the model dropdowns of single-file loaders (files present + the manifest's,
a missing one named with its fetch command)."""

from __future__ import annotations

import os
from pathlib import Path

import folder_paths

from ..errors import ModelsMissingError
from ..models.locate import ModelLocator

MODEL_FOLDERS = ("f5_tts", "vocoders", "wav2lip", "syncnet", "sadtalker", "facexlib")


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


def _manifest_files(folder: str) -> dict[str, tuple[object, object]]:
    """``{filename: (entry, file)}`` of the manifest's files that go to ``folder``."""
    try:
        from ..models.manifest import load_manifest

        return {f.filename: (e, f) for e in load_manifest().values() if e.folder == folder for f in e.files}
    except Exception:  # a broken manifest must not keep a node from registering
        return {}


def file_choices(folder: str, suffixes: tuple[str, ...]) -> list[str]:
    """A loader's dropdown: files in ``models/<folder>`` ending in ``suffixes`` and the
    manifest's files for that folder (listed first, even when absent: choosing one that is
    not there says how to fetch it)."""
    register_model_folders()
    present = [n for n in folder_paths.get_filename_list(folder) if n.lower().endswith(suffixes)]
    known = _manifest_files(folder)
    return sorted(set(present) | set(known), key=lambda n: (n not in known, n))


def folder_file(folder: str, name: str) -> Path:
    """The path of ``name`` in ``models/<folder>``.

    Raises:
        ModelsMissingError: absent; for a manifest file the message names where it goes and
            the fetch command (``python install.py --models <model>``).
    """
    register_model_folders()
    found = folder_paths.get_full_path(folder, name)
    if found:
        return Path(found)
    known = _manifest_files(folder).get(name)
    if known is not None:
        entry, file = known
        raise comfy_locator().missing_error([(entry, [file])])
    dirs = folder_paths.get_folder_paths(folder)
    raise ModelsMissingError(f"'{name}' not found in {', '.join(dirs)}",
                             details={"missing": [name], "files": [os.path.join(d, name) for d in dirs]})
