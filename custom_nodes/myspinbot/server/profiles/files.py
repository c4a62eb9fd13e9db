"""A profile's files under ComfyUI's input folder (``jobs.layout.profile_folder``) and its LoRA
under ``models/loras/myspinbot/``. Blocking: call off the event loop where files are large."""

from __future__ import annotations

import shutil
from pathlib import Path

from ...speech.voice_profile import clean_voice_file
from ..jobs.layout import profile_folder

PHOTOS = "photos"
VOICE_CLIPS = "voice_clips"
CLIP_METADATA = "metadata.csv"
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


def clips_folder(profile_id: str) -> str:
    """The voice clips' folder relative to the input folder (the voice fine-tune's ``folder`` input)."""
    return f"{profile_folder(profile_id)}/{VOICE_CLIPS}"


def has_clips(input_dir: Path, profile_id: str) -> bool:
    return (folder(input_dir, profile_id) / VOICE_CLIPS / CLIP_METADATA).is_file()


def store_clips(input_dir: Path, profile_id: str, clips: list[tuple[Path, str]], copy: bool = False) -> float:
    """Move (or ``copy``) the voice clips to ``voice_clips/clip_<nnn><ext>`` and write their
    ``metadata.csv`` (``file|transcript`` per line, F5-TTS' custom dataset format); returns their
    total length, s. ``clips``: (file, transcript). Raises ``InvalidInputError`` for a file that
    is not audio or is over 30 s (nothing is kept then)."""
    from ...errors import InvalidInputError
    from ...speech.audio_io import probe_audio
    from ...speech.f5.finetune_data import MAX_CLIP_SECONDS

    target = folder(input_dir, profile_id) / VOICE_CLIPS
    shutil.rmtree(target, ignore_errors=True)
    target.mkdir(parents=True)
    lines, total = [], 0.0
    try:
        for index, (source, text) in enumerate(clips, start=1):
            seconds = float(probe_audio(source)["duration_s"])
            if seconds > MAX_CLIP_SECONDS:
                raise InvalidInputError(f"voice clip {index} is {seconds:.1f} s long; clips must be at most "
                                        f"{MAX_CLIP_SECONDS:.0f} s (cut recordings into sentences)",
                                        details={"clip": index})
            name = f"clip_{index:03d}{Path(source).suffix.lower() or '.wav'}"
            (shutil.copyfile if copy else shutil.move)(source, target / name)
            lines.append(f"{name}|{' '.join(text.split())}")
            total += seconds
    except BaseException:
        shutil.rmtree(target, ignore_errors=True)
        raise
    (target / CLIP_METADATA).write_text("\n".join(lines) + "\n", encoding="utf-8")
    return total


def store_reference(input_dir: Path, profile_id: str, source: Path) -> str:
    """Copy the training job's reference crop in; returns its path relative to the input folder."""
    target = folder(input_dir, profile_id) / REFERENCE
    shutil.copyfile(source, target)
    return f"{profile_folder(profile_id)}/{REFERENCE}"


def remove_file(input_dir: Path, relative: str | None) -> None:
    if relative:
        (Path(input_dir) / relative).unlink(missing_ok=True)


def remove(input_dir: Path, profile_id: str, lora_name: str | None, voice_model: str | None = None) -> None:
    """The profile's folder, its LoRA file and fine-tuned voice (where ComfyUI's models folders can be found)."""
    shutil.rmtree(folder(input_dir, profile_id), ignore_errors=True)
    remove_lora(lora_name)
    remove_voice_model(voice_model)


def voice_model_dir(voice_model: str | None) -> Path | None:
    """A fine-tuned voice's folder ``models/f5_tts/myspinbot/<name>/`` (checkpoint, vocab, config and
    training state) in ComfyUI's first ``f5_tts`` folder; None outside ComfyUI or for no such name."""
    if not voice_model or not voice_model.startswith("myspinbot/") or "/" in voice_model[len("myspinbot/"):]:
        return None
    try:
        import folder_paths
    except ImportError:
        return None
    known = "f5_tts" in folder_paths.folder_names_and_paths
    root = folder_paths.get_folder_paths("f5_tts")[0] if known else Path(folder_paths.models_dir) / "f5_tts"
    return Path(root) / voice_model


def voice_model_file(voice_model: str | None) -> Path | None:
    """The fine-tuned voice's checkpoint ``<folder>/<name>.safetensors`` (``voice_model_dir``)."""
    folder = voice_model_dir(voice_model)
    return None if folder is None else folder / f"{folder.name}.safetensors"


def remove_voice_model(voice_model: str | None) -> None:
    """The fine-tuned voice's whole folder (``voice_model_dir``); nothing for no such folder."""
    folder = voice_model_dir(voice_model)
    if folder is not None:
        shutil.rmtree(folder, ignore_errors=True)


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
