"""Where a job's files live under ComfyUI's input and output folders (a leaf: imports nothing of the pack).

- ``<input>/myspinbot/<job id>/``: the uploads of one multipart submission (its staging folder);
- ``<input>/myspinbot/assets/<sha256><ext>``: uploaded assets, shared by every job that names them;
- ``<input>/myspinbot/assets/.incoming-<uuid>/``: an asset upload while it is being checked;
- ``<output>/myspinbot/<job id>/``: what the job's workflow writes (``save_prefix``);
- ``<input>/myspinbot/profiles/<profile id>/``: a character profile's files (``photos/``, the
  cleaned voice clip, the reference photo); the trainer reads ``photos/`` (a folder under input).
"""

from __future__ import annotations

import re
from pathlib import Path

INPUT_SUBDIR = "myspinbot"
"""The pack's subfolder of ComfyUI's input folder."""
OUTPUT_SUBDIR = "myspinbot"
"""The pack's subfolder of ComfyUI's output folder."""
ASSETS_SUBDIR = "assets"
"""The shared assets' folder inside ``INPUT_SUBDIR``."""
PROFILES_SUBDIR = "profiles"
"""The character profiles' folder inside ``INPUT_SUBDIR``."""
INCOMING_PREFIX = ".incoming-"
"""The name prefix of an asset upload's staging folder."""

JOB_ID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
"""What ``POST /myspinbot/jobs`` names a job (``str(uuid.uuid4())``)."""
ASSET_ID = re.compile(r"^[0-9a-f]{64}$")
"""An asset id: the sha256 of its bytes, lowercase hex."""


def staging_dir(input_dir: Path, job_id: str) -> Path:
    """``<input>/myspinbot/<job id>/``: where a multipart submission stages its files."""
    return Path(input_dir) / INPUT_SUBDIR / job_id


def assets_dir(input_dir: Path) -> Path:
    """``<input>/myspinbot/assets/``: uploaded inputs, named by their sha256."""
    return Path(input_dir) / INPUT_SUBDIR / ASSETS_SUBDIR


def profile_folder(profile_id: str) -> str:
    """A profile's folder relative to ComfyUI's input folder: ``myspinbot/profiles/<profile id>``."""
    return f"{INPUT_SUBDIR}/{PROFILES_SUBDIR}/{profile_id}"


def asset_path(sha256: str, ext: str) -> str:
    """An asset's path relative to ComfyUI's input folder: ``myspinbot/assets/<sha256><ext>``."""
    return f"{INPUT_SUBDIR}/{ASSETS_SUBDIR}/{sha256}{ext}"


def save_prefix(job_id: str) -> str:
    """The ``filename_prefix`` a job's save nodes get, relative to ComfyUI's output folder."""
    return f"{OUTPUT_SUBDIR}/{job_id}/output"


def job_folder(root: Path, job_id: str) -> Path | None:
    """``<root>/myspinbot/<job id>``: a job's own folder under ComfyUI's input or output folder
    (both use the ``myspinbot`` subfolder), or None for an id that could name anything else
    (the shared ``assets`` folder, a path, a hidden name)."""
    if (not job_id or job_id in (ASSETS_SUBDIR, PROFILES_SUBDIR) or job_id.startswith(".") or "/" in job_id
            or "\\" in job_id):
        return None
    return Path(root) / INPUT_SUBDIR / job_id
