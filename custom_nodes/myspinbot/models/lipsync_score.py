"""Whether the job service scores lip sync: the SyncNet model file (``syncnet_v2``) on disk.

Every job's ``video`` output carries a lip-sync ``quality`` block when this model is present
in ComfyUI's ``models/syncnet`` (the job service adds a score node to the prompt then); when
it is absent the field is left out and ``GET /myspinbot/capabilities`` says why
(:func:`lipsync_score_report`). Presence only (a stat, no hashing): checked per submission,
so placing or removing the file takes effect without a restart. Imports no ComfyUI module.
"""

from __future__ import annotations

from typing import Any

from .locate import ModelLocator

SCORE_MODEL = "syncnet_v2"
"""The manifest entry of the SyncNet weights the job service scores with."""


def lipsync_score_file(locator: ModelLocator) -> str | None:
    """The model's file name as the score node's ``syncnet_model`` dropdown lists it (relative to
    ``models/syncnet``), or None when a file of the entry is missing (or the manifest lacks it)."""
    entry = locator.manifest.get(SCORE_MODEL)
    if entry is None or len(entry.files) != 1 or locator.missing_files(SCORE_MODEL):
        return None
    name = entry.files[0].filename
    return f"{entry.subdir.strip('/')}/{name}" if entry.subdir else name


def lipsync_score_report(locator: ModelLocator) -> dict[str, Any]:
    """The ``lipsync_score`` entry of the capabilities: ``{"enabled", "model", "file", "reason",
    "missing_files", "fetch_command"}``; ``reason`` (None when enabled) says why job outputs
    carry no ``quality`` block and how to turn it on."""
    entry = locator.manifest.get(SCORE_MODEL)
    if entry is None:
        return {"enabled": False, "model": SCORE_MODEL, "file": None, "missing_files": [], "fetch_command": None,
                "reason": f"the model manifest has no '{SCORE_MODEL}' entry: lip-sync scores are off"}
    fetch = entry.fetch_command
    file = lipsync_score_file(locator)
    if file is not None:
        return {"enabled": True, "model": SCORE_MODEL, "file": file, "missing_files": [], "fetch_command": fetch,
                "reason": None}
    missing = locator.missing_files(SCORE_MODEL)
    directory = locator.expected_dir(entry)
    paths = [str(directory / f.filename) if directory else f.filename for f in missing]
    return {"enabled": False, "model": SCORE_MODEL, "file": None, "missing_files": paths, "fetch_command": fetch,
            "reason": f"the SyncNet model '{SCORE_MODEL}' is not installed (missing {', '.join(paths)}): job "
                      f"outputs carry no lip-sync 'quality' block. Fetch it with: {fetch}"}
