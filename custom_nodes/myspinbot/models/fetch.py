"""Downloading a manifest model from the Hugging Face hub: resumable, verified, atomic.

Files are downloaded into a staging folder beside the models folder
(``<models>/.myspinbot-downloads/<model>/<file>.<etag>.part``), checked against the
manifest's size and sha256 and only then moved into ``<models>/<folder>/<subdir>/`` with
``os.replace`` (atomic on one filesystem). An interrupted download keeps its ``.part`` and
the next fetch continues it with an HTTP Range request; a file that fails the check is
deleted together with the model's staging folder, so nothing of it is left in ``models/``.

The hub is reached through ``huggingface_hub`` (imported on first use):
``get_hf_file_metadata`` resolves the file's ``resolve`` URL (endpoint from ``HF_ENDPOINT``;
token, headers and redirects as huggingface_hub does them) and ``file_download.http_get`` streams it with resume
and retries. ``hf_hub_download`` itself is not used: in huggingface_hub 2.x it writes to a
per-call temporary file and deletes it on failure, so a download interrupted by a restart
would start again from zero.

Offline mode (``HF_HUB_OFFLINE=1``) is honoured: the fetch fails with code ``offline``
and a message listing the missing files, where to put them and where to get them.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path
from typing import Any

from ..errors import ModelChecksumError, ModelConflictError
from .locate import remember_sha256, sha256_file
from .manifest import ModelEntry, ModelFile
from .hub_client import _Hub, _Progress
from .hub_paths import (DEFAULT_ENDPOINT, ProgressCallback, file_url, format_size, glob_escape,  # noqa: F401 (re-exported)
                        model_dir, offline_error, offline_mode, resolve_endpoint, staging_dir)

_SHA256 = re.compile(r"^[0-9a-f]{64}$")


def fetch_model(entry: ModelEntry, target_dir: str | os.PathLike, on_progress: ProgressCallback | None = None, *,
                endpoint: str | None = None, token: str | bool | None = None, overwrite: bool = False) -> dict[str, Path]:
    """Download the entry's files into ``<target_dir>/<subdir>/`` and return their paths by filename.

    ``target_dir`` is the models folder for ``entry.folder`` (e.g. ``ComfyUI/models/f5_tts``).
    Files already there and matching the manifest are kept (not downloaded again). A file
    there that does *not* match (placed by hand) raises ``ModelConflictError`` unless
    ``overwrite``. ``on_progress(done_bytes, total_bytes)`` is called from this thread as
    bytes arrive (``total_bytes`` None while unknown).

    Raises ``OfflineError`` (``offline``), ``ModelChecksumError`` (``model_checksum_mismatch``:
    the file was deleted, nothing is left in ``models/``) or ``ModelDownloadError``
    (``model_download_failed``: a partial download is kept for the next try)."""
    target_dir = Path(target_dir)
    dest_dir = model_dir(entry, target_dir)
    report = on_progress or (lambda done, total: None)

    found: dict[str, Path] = {}
    todo: list[ModelFile] = []
    for file in entry.files:
        dest = dest_dir / file.filename
        if dest.is_file():
            if _matches_manifest(dest, file):
                found[file.filename] = dest
                continue
            if not overwrite:
                raise ModelConflictError(
                    f"{dest} is already there and differs from the manifest entry '{entry.name}' "
                    "(a custom file placed by hand?); it is never overwritten: move it away to download the original",
                    details={"model": entry.name, "file": file.filename, "path": str(dest)})
        todo.append(file)
    done_before = sum(p.stat().st_size for p in found.values())
    if not todo:
        report(done_before, done_before)
        return found
    if offline_mode():
        raise offline_error(entry, todo, target_dir, endpoint)

    endpoint = resolve_endpoint(endpoint)
    hub = _Hub(endpoint, token, target_dir)
    remote = [hub.metadata(entry, file) for file in todo]  # every HEAD before any byte: refuse early
    for file, meta in zip(todo, remote):
        _check_metadata(entry, file, meta, target_dir)

    sizes = [meta["size"] for meta in remote]
    total = None if any(s is None for s in sizes) else done_before + sum(sizes)
    progress = _Progress(report, done_before, total)

    staging = staging_dir(entry, target_dir)
    staging.mkdir(parents=True, exist_ok=True)
    staged: list[tuple[ModelFile, Path, str]] = []
    for file, meta in zip(todo, remote):
        part = hub.download(entry, file, meta, staging, progress)
        digest = _verify(entry, file, meta, part, target_dir)
        staged.append((file, part, digest))

    dest_dir.mkdir(parents=True, exist_ok=True)
    for file, part, digest in staged:
        dest = dest_dir / file.filename
        os.replace(part, dest)
        remember_sha256(dest, digest)
        found[file.filename] = dest
    _remove_staging(staging)
    report(progress.done, progress.done)
    return {f.filename: found[f.filename] for f in entry.files}


# --- internals ------------------------------------------------------------------------------

def _matches_manifest(path: Path, file: ModelFile) -> bool:
    size = path.stat().st_size
    if file.size_bytes is not None and size != file.size_bytes:
        return False
    return file.sha256 is None or sha256_file(path) == file.sha256


def _expected_sha256(file: ModelFile, meta: dict[str, Any]) -> tuple[str | None, str]:
    """The sha256 to check and where it comes from: the manifest, else the hub's LFS etag
    (a git-LFS file's etag is its sha256), else none (size-only check)."""
    if file.sha256 is not None:
        return file.sha256, "manifest"
    etag = meta.get("etag") or ""
    if _SHA256.match(etag):
        return etag, "hub"
    return None, "none"


def _check_metadata(entry: ModelEntry, file: ModelFile, meta: dict[str, Any], target_dir: Path) -> None:
    """Refuse before downloading when the hub already says the file cannot match."""
    if file.size_bytes is not None and meta["size"] is not None and meta["size"] != file.size_bytes:
        raise _mismatch(entry, file, target_dir, reason="size", expected=file.size_bytes, actual=meta["size"],
                        when="the hub reports")
    etag = meta.get("etag") or ""
    if file.sha256 is not None and _SHA256.match(etag) and etag != file.sha256:
        raise _mismatch(entry, file, target_dir, reason="sha256", expected=file.sha256, actual=etag,
                        when="the hub reports")
    if meta["size"] is None:
        meta["size"] = file.size_bytes


def _verify(entry: ModelEntry, file: ModelFile, meta: dict[str, Any], part: Path, target_dir: Path) -> str:
    size = part.stat().st_size
    expected_size = file.size_bytes if file.size_bytes is not None else meta["size"]
    if expected_size is not None and size != expected_size:
        raise _mismatch(entry, file, target_dir, reason="size", expected=expected_size, actual=size,
                        when="the download has", staged=part)
    digest = sha256_file(part, use_cache=False)
    expected, _source = _expected_sha256(file, meta)
    if expected is not None and digest != expected:
        raise _mismatch(entry, file, target_dir, reason="sha256", expected=expected, actual=digest,
                        when="the download has", staged=part)
    return digest


def _mismatch(entry: ModelEntry, file: ModelFile, target_dir: Path, *, reason: str, expected: Any, actual: Any,
              when: str, staged: Path | None = None) -> ModelChecksumError:
    """Delete the model's staging folder and build the refusal."""
    _remove_staging(staging_dir(entry, target_dir))
    what = "size" if reason == "size" else "sha256"
    return ModelChecksumError(
        f"refused {entry.repo_id}/{file.repo_path} for model '{entry.name}': {when} {what} {actual}, "
        f"the manifest expects {expected}; nothing was written to {model_dir(entry, target_dir)}",
        details={"model": entry.name, "file": file.filename, "reason": reason,
                 "expected": expected, "actual": actual})


def _remove_staging(staging: Path) -> None:
    shutil.rmtree(staging, ignore_errors=True)
    try:
        staging.parent.rmdir()  # the shared .myspinbot-downloads, only when empty
    except OSError:
        pass
