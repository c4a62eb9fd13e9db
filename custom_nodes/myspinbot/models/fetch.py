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

import hashlib
import os
import re
import shutil
from pathlib import Path
from typing import Any, Callable
from urllib.parse import quote, urlparse

from ..errors import ModelChecksumError, ModelConflictError, ModelDownloadError, OfflineError
from .locate import STAGING_DIR_NAME, remember_sha256, sha256_file
from .manifest import ModelEntry, ModelFile

ProgressCallback = Callable[[int, "int | None"], None]
DEFAULT_ENDPOINT = "https://huggingface.co"
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_TRUE = {"1", "ON", "YES", "TRUE"}


def offline_mode() -> bool:
    """Whether downloads are forbidden: ``HF_HUB_OFFLINE`` (or ``TRANSFORMERS_OFFLINE``) set
    now, or set when huggingface_hub was imported (it reads the variable once)."""
    if any(os.environ.get(v, "").strip().upper() in _TRUE for v in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")):
        return True
    import sys

    constants = sys.modules.get("huggingface_hub.constants")
    return bool(constants is not None and getattr(constants, "HF_HUB_OFFLINE", False))


def resolve_endpoint(endpoint: str | None = None) -> str:
    """The hub endpoint: ``endpoint``, else ``HF_ENDPOINT``, else huggingface.co (read at call time)."""
    return (endpoint or os.environ.get("HF_ENDPOINT") or DEFAULT_ENDPOINT).rstrip("/")


def file_url(entry: ModelEntry, file: ModelFile, endpoint: str | None = None) -> str:
    """The hub's ``resolve`` URL of a model file: what huggingface_hub requests, and what a
    user fetches by hand with a browser or wget. Built here from the endpoint read at call
    time (``hf_hub_url`` formats from the endpoint huggingface_hub read at its import)."""
    revision = quote(entry.revision or "main", safe="")
    return f"{resolve_endpoint(endpoint)}/{entry.repo_id}/resolve/{revision}/{quote(file.repo_path)}"


def model_dir(entry: ModelEntry, target_dir: str | os.PathLike) -> Path:
    """``<target_dir>/<subdir>``: where the entry's files live inside its models folder."""
    target = Path(target_dir)
    return target / entry.subdir if entry.subdir else target


def staging_dir(entry: ModelEntry, target_dir: str | os.PathLike) -> Path:
    """``<models>/.myspinbot-downloads/<model>``: beside the models folder, same filesystem."""
    return Path(target_dir).parent / STAGING_DIR_NAME / entry.name


def offline_error(entry: ModelEntry, files: list[ModelFile], target_dir: str | os.PathLike,
                  endpoint: str | None = None) -> OfflineError:
    """The ``offline`` error for ``files`` of ``entry``: what is missing, where to put it, where to get it."""
    directory = model_dir(entry, target_dir)
    lines = [f"  {directory / f.filename}  <-  {file_url(entry, f, endpoint)}"
             + (f"  ({format_size(f.size_bytes)})" if f.size_bytes is not None else "") for f in files]
    notice = f" Note: {entry.licence_notice}." if entry.non_commercial else ""
    message = (f"offline mode is on (HF_HUB_OFFLINE=1), so model '{entry.name}' cannot be downloaded. "
               f"Missing {len(files)} file(s); put them by hand at:\n" + "\n".join(lines) +
               f"\nor unset HF_HUB_OFFLINE and run: {entry.fetch_command}.{notice}")
    return OfflineError(message, details={
        "model": entry.name,
        "missing": [f.filename for f in files],
        "files": [str(directory / f.filename) for f in files],
        "directory": str(directory),
        "urls": [file_url(entry, f, endpoint) for f in files],
        "fetch": entry.fetch_command,
    })


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


class _Progress:
    """Bytes done across the model's files, reported to the callback."""

    def __init__(self, report: ProgressCallback, done: int, total: int | None):
        self.report, self.done, self.total = report, done, total
        self.report(done, total)

    def add(self, n: int) -> None:
        if n:
            self.done += n
            self.report(self.done, self.total)

    def bar_class(self) -> type:
        progress = self

        class _Bar:
            """What huggingface_hub's ``http_get`` needs of a ``tqdm_class``: bytes go to ``_Progress``."""

            def __init__(self, *args: Any, **kwargs: Any):
                # http_get opens its bar once per file, after it knows whether the server honoured
                # the Range request: ``initial`` is the part of the file already on disk.
                self.n = int(kwargs.get("initial") or 0)
                self.total = kwargs.get("total")
                progress.add(self.n)

            def update(self, n: float | None = 1) -> None:
                self.n += int(n or 0)
                progress.add(int(n or 0))

            def close(self) -> None:
                pass

            def refresh(self, *args: Any, **kwargs: Any) -> None:
                pass

            def set_description(self, *args: Any, **kwargs: Any) -> None:
                pass

            def __enter__(self) -> "_Bar":
                return self

            def __exit__(self, *exc: Any) -> None:
                self.close()

        return _Bar


class _Hub:
    """The few huggingface_hub calls a fetch makes (imported here, on first use)."""

    def __init__(self, endpoint: str, token: str | bool | None, target_dir: Path):
        from huggingface_hub.utils import build_hf_headers

        self.endpoint = endpoint
        self.token = token
        self.target_dir = target_dir
        self.headers = build_hf_headers(token=token, library_name="myspinbot")

    def metadata(self, entry: ModelEntry, file: ModelFile) -> dict[str, Any]:
        from huggingface_hub import get_hf_file_metadata

        url = file_url(entry, file, self.endpoint)
        try:
            meta = get_hf_file_metadata(url, token=self.token, headers=dict(self.headers), endpoint=self.endpoint,
                                        retry_on_errors=True)
        except Exception as err:  # noqa: BLE001 - every failure becomes one coded error
            raise self._error(entry, file, err, url) from err
        if not meta.commit_hash or not meta.etag:
            raise ModelDownloadError(f"{url} did not answer like a Hugging Face hub (no X-Repo-Commit/ETag); "
                                     "check HF_ENDPOINT and any proxy", details={"model": entry.name, "url": url})
        return {"url": url, "location": meta.location or url, "etag": meta.etag, "size": meta.size,
                "commit": meta.commit_hash}

    def download(self, entry: ModelEntry, file: ModelFile, meta: dict[str, Any], staging: Path,
                 progress: _Progress) -> Path:
        """Stream the file into ``<staging>/<filename>.<etag>.part``, continuing a previous part."""
        from huggingface_hub.file_download import http_get

        tag = hashlib.sha1(meta["etag"].encode()).hexdigest()[:12]  # a part only continues the same content
        part = staging / f"{file.filename}.{tag}.part"
        for stale in staging.glob(f"{glob_escape(file.filename)}.*.part"):
            if stale != part:
                stale.unlink(missing_ok=True)
        size = meta["size"]
        resume = part.stat().st_size if part.exists() else 0
        if size is not None and resume > size:
            part.unlink()
            resume = 0
        if size is not None and resume == size:
            progress.add(resume)
            return part
        headers = dict(self.headers)
        location = meta["location"]
        if _origin(location) != _origin(meta["url"]):
            headers.pop("authorization", None)  # never send the token to a CDN
        try:
            with open(part, "ab") as f:
                http_get(location, f, resume_size=resume, headers=headers, expected_size=size,
                         displayed_filename=file.filename, tqdm_class=progress.bar_class())
        except Exception as err:  # noqa: BLE001
            raise self._error(entry, file, err, location, kept=part) from err
        return part

    def _error(self, entry: ModelEntry, file: ModelFile, err: Exception, url: str, kept: Path | None = None) -> Exception:
        from huggingface_hub.errors import (
            GatedRepoError,
            OfflineModeIsEnabled,
            RemoteEntryNotFoundError,
            RepositoryNotFoundError,
            RevisionNotFoundError,
        )

        if isinstance(err, OfflineModeIsEnabled):
            return offline_error(entry, [file], self.target_dir, self.endpoint)
        if isinstance(err, GatedRepoError):
            why = "the repository is gated: accept its terms on the hub and set HF_TOKEN"
        elif isinstance(err, RepositoryNotFoundError):
            why = f"repository {entry.repo_id} not found (or private: set HF_TOKEN)"
        elif isinstance(err, RevisionNotFoundError):
            why = f"revision {entry.revision} not found in {entry.repo_id}"
        elif isinstance(err, RemoteEntryNotFoundError):
            why = f"{file.repo_path} not found in {entry.repo_id}"
        else:
            why = f"{type(err).__name__}: {err}".splitlines()[0]
        resume = f"; the {kept.stat().st_size if kept.exists() else 0} bytes received are kept and the next fetch resumes" \
            if kept is not None else ""
        return ModelDownloadError(f"could not download {file.repo_path} of model '{entry.name}' from {url}: {why}{resume}",
                                  details={"model": entry.name, "file": file.filename, "url": url})


def _origin(url: str) -> tuple[str, str]:
    parsed = urlparse(url)
    return parsed.scheme, parsed.netloc.lower()


def glob_escape(name: str) -> str:
    return re.sub(r"([*?\[])", r"[\1]", name)


def format_size(n: int | None) -> str:
    """``1348435761`` -> ``1.26 GiB``; None -> ``unknown size``."""
    if n is None:
        return "unknown size"
    value = float(n)
    for unit in ("bytes", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{int(value)} bytes" if unit == "bytes" else f"{value:.2f} {unit}"
        value /= 1024
    return f"{n} bytes"
