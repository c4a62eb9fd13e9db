"""The few huggingface_hub calls a fetch makes (metadata, a resumable streamed download, errors
turned into the pack's coded errors), and the byte progress they report. huggingface_hub is
imported on first use."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from ..errors import ModelDownloadError
from .hub_paths import ProgressCallback, _origin, file_url, glob_escape, offline_error
from .manifest import ModelEntry, ModelFile


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
