"""Upload staging folders that a crash left behind, removed when the pack starts.

A multipart job submission stages its files in ``<input>/myspinbot/<job id>/`` before the job
row exists, and an asset upload in ``<input>/myspinbot/assets/.incoming-<uuid>/``; both are
removed when the request ends, but not when ComfyUI dies in the middle of one. At start (before
the server accepts requests, so no upload can be in flight) :func:`remove_orphan_staging`
removes:

- every folder named like a job id (a UUID) directly in ``<input>/myspinbot/`` that has no job
  row (a job's folder, whatever its status, is never touched);
- every ``.incoming-*`` folder in ``<input>/myspinbot/assets/`` (never the assets themselves).

Anything else there (files, folders with other names, symlinks) is left alone.
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path
from typing import TYPE_CHECKING

from .jobs.layout import ASSETS_SUBDIR, INCOMING_PREFIX, INPUT_SUBDIR, JOB_ID

if TYPE_CHECKING:
    from .jobs import JobService

log = logging.getLogger("myspinbot.leftovers")

__all__ = ["INCOMING_PREFIX", "JOB_ID", "orphan_staging", "remove_orphan_staging"]


def orphan_staging(service: "JobService") -> list[Path]:
    """The staging folders under ``<input>/myspinbot/`` that no job and no running upload owns."""
    root = service.host.input_dir / INPUT_SUBDIR
    found: list[Path] = []
    for entry in _folders(root):
        if JOB_ID.match(entry.name) and service.store.get(entry.name) is None:
            found.append(entry)
    found.extend(e for e in _folders(root / ASSETS_SUBDIR) if e.name.startswith(INCOMING_PREFIX))
    return found


def remove_orphan_staging(service: "JobService") -> list[Path]:
    """Remove :func:`orphan_staging`'s folders; returns them. Never raises (a folder that cannot
    be removed is logged and left)."""
    try:
        orphans = orphan_staging(service)
    except OSError:
        log.exception("myspinbot: could not list the upload staging folders")
        return []
    removed = []
    for folder in orphans:
        try:
            shutil.rmtree(folder)
            removed.append(folder)
        except OSError as err:
            log.warning("myspinbot: could not remove the leftover staging folder %s: %s", folder, err)
    if removed:
        log.info("myspinbot: removed %d upload staging folder(s) that an interrupted upload left", len(removed))
    return removed


def _folders(root: Path) -> list[Path]:
    """The real folders (no symlinks) directly in ``root``; none when ``root`` is absent."""
    if not root.is_dir():
        return []
    return [e for e in root.iterdir() if e.is_dir() and not e.is_symlink()]
