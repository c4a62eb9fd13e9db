"""A profile's files under ComfyUI's input folder (``jobs.layout.profile_folder``) and its LoRA
under ``models/loras/myspinbot/``. Blocking: call off the event loop where files are large."""

from __future__ import annotations

import shutil
from pathlib import Path

from ...speech.voice_profile import clean_voice_file
from ..jobs.layout import profile_folder

PHOTOS = "photos"
VOICE_PREFIX = "voice"
REFERENCE = "reference.png"


def folder(input_dir: Path, profile_id: str) -> Path:
    """``<input>/myspinbot/profiles/<profile id>/``."""
    return Path(input_dir) / profile_folder(profile_id)


def photos_folder(profile_id: str) -> str:
    """The photos' folder relative to the input folder (the trainer's ``folder`` input)."""
    return f"{profile_folder(profile_id)}/{PHOTOS}"


def store_photo(input_dir: Path, profile_id: str, index: int, accepted: Path, copy: bool = False) -> str:
    """Move (or ``copy``) an accepted photo to ``photos/photo_<nn><ext>``; returns its file name."""
    target = folder(input_dir, profile_id) / PHOTOS / f"photo_{index:02d}{accepted.suffix.lower()}"
    target.parent.mkdir(parents=True, exist_ok=True)
    (shutil.copyfile if copy else shutil.move)(accepted, target)
    return target.name


def store_voice(input_dir: Path, profile_id: str, source: Path, tag: str) -> tuple[str, float]:
    """Clean ``source`` (``speech.voice_profile``) into ``voice_<tag>.wav``; returns (its path
    relative to the input folder, seconds). Raises ``InvalidInputError``."""
    target = folder(input_dir, profile_id) / f"{VOICE_PREFIX}_{tag}.wav"
    target.parent.mkdir(parents=True, exist_ok=True)
    seconds = clean_voice_file(source, target)
    return f"{profile_folder(profile_id)}/{target.name}", seconds


def store_reference(input_dir: Path, profile_id: str, source: Path) -> str:
    """Copy the training job's reference crop in; returns its path relative to the input folder."""
    target = folder(input_dir, profile_id) / REFERENCE
    shutil.copyfile(source, target)
    return f"{profile_folder(profile_id)}/{REFERENCE}"


def remove_file(input_dir: Path, relative: str | None) -> None:
    if relative:
        (Path(input_dir) / relative).unlink(missing_ok=True)


def remove(input_dir: Path, profile_id: str, lora_name: str | None) -> None:
    """The profile's folder and its LoRA file (where ComfyUI's ``models/loras`` can be found)."""
    shutil.rmtree(folder(input_dir, profile_id), ignore_errors=True)
    remove_lora(lora_name)


def remove_lora(lora_name: str | None) -> None:
    """The LoRA file and its optimizer state, where they can be found (``lora_file``)."""
    lora = lora_file(lora_name)
    if lora is not None:
        lora.unlink(missing_ok=True)
        lora.with_suffix(".optimizer").unlink(missing_ok=True)


def lora_file(lora_name: str | None) -> Path | None:
    """The LoRA ``myspinbot/<name>.safetensors`` in ComfyUI's first ``loras`` folder; None
    outside ComfyUI or for no name."""
    if not lora_name:
        return None
    try:
        import folder_paths
    except ImportError:
        return None
    return Path(folder_paths.get_folder_paths("loras")[0]) / lora_name
