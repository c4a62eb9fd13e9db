"""Uploaded inputs: accepting an uploaded file, the content-addressed assets, and asset ids in job inputs.

Every upload is accepted the same way, whether it comes with a job (a multipart file part) or
alone (``POST /myspinbot/assets``): the staged file is decoded and checked against the limits
(``uploads.py``: Pillow for images, PyAV for audio) in a worker thread, never on the event
loop, since a file may be 512 MiB; then it is moved where it belongs under ComfyUI's input
folder. Assets are named by their sha256; a job names one with ``{"asset_id": "<sha256>"}``.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import os
from pathlib import Path
from typing import Any, Callable, TypeVar

from ..api_errors import ApiError
from ..asset_integrity import AssetIntegrity
from ..input_limits import audio_limit
from ..model import Asset
from ..pipelines import FILE_KINDS, Param, Pipeline
from ..settings import Settings
from ..store import JobStore
from ..urls import PREFIX
from ..uploads import Sniffed, accept_audio, accept_image, sniff_asset
from .layout import ASSET_ID, asset_path, assets_dir

log = logging.getLogger("myspinbot.jobs")

T = TypeVar("T")


async def off_loop(fn: Callable[..., T], *args: Any) -> T:
    """Run a blocking step (decoding, hashing, moving a large file) in the default executor."""
    return await asyncio.get_running_loop().run_in_executor(None, functools.partial(fn, *args))


class Assets:
    """Uploads and assets under ``input_dir`` (ComfyUI's input folder); records in ``store``."""

    def __init__(self, store: JobStore, input_dir: Path, settings: Settings, clock: Callable[[], float]):
        self.store = store
        self.input_dir = Path(input_dir)
        self.settings = settings
        self.clock = clock
        self.integrity = AssetIntegrity()
        self.files = None
        """A shared queue's object storage (``shared_files.SharedFiles``): every asset goes to its bucket too."""

    def folder(self) -> Path:
        """``<input>/myspinbot/assets/``."""
        return assets_dir(self.input_dir)

    def get(self, asset_id: str) -> Asset | None:
        return self.store.asset(asset_id) if ASSET_ID.match(asset_id) else None

    # --- accepting uploads (off the event loop) --------------------------------------------
    async def accept_job_file(self, pipeline: Pipeline, param: Param, staged: Path, client_name: str) -> str:
        """Check a job's uploaded file for ``param`` (an image or audio parameter) and rename it in
        its staging folder; returns its path relative to the input folder. Raises ``ApiError``
        (413 over a limit, 400 unreadable)."""
        if param.kind == "image":
            accepted = await off_loop(accept_image, staged, self.settings, param.name)
        else:
            accepted = await off_loop(accept_audio, staged, client_name, audio_limit(self.settings, pipeline), param.name)
        return accepted.relative_to(self.input_dir).as_posix()

    async def accept_asset(self, staged: Path, sha256: str, size: int) -> tuple[Asset, bool]:
        """Check an uploaded asset (its kind and type from its content) and store it under its
        sha256; returns ``(asset, created)``. Raises ``ApiError`` (413, 400 ``invalid_asset``)."""
        sniffed = await off_loop(sniff_asset, staged, self.settings)
        asset, created = await off_loop(self.store_asset, staged, sha256, size, sniffed)
        if self.files is not None:  # any server of the shared queue may run a job naming it
            from ...errors import StorageError

            try:
                await off_loop(self.files.put_input, asset.path)
            except StorageError as err:
                raise ApiError(503, "storage_unavailable", f"object storage did not take the asset: {err.message}",
                               {"storage_code": err.code}, headers={"Retry-After": "5"}) from None
        return asset, created

    def store_asset(self, staged: Path, sha256: str, size: int, sniffed: Sniffed) -> tuple[Asset, bool]:
        """Move a checked upload to its content address and record it; returns ``(asset, created)``.
        Uploading the same bytes again keeps the first record. Blocking (may hash the file)."""
        existing = self.store.asset(sha256)
        rel = existing.path if existing else asset_path(sha256, sniffed.ext)
        dest = self.input_dir / rel
        if existing and dest.is_file() and self.integrity.matches(dest, sha256):
            staged.unlink(missing_ok=True)
            return existing, False
        dest.parent.mkdir(parents=True, exist_ok=True)
        os.replace(staged, dest)  # new, or repairs a file that was overwritten in the input folder
        self.integrity.remember(dest, sha256)
        if existing:
            return existing, False
        asset = Asset(id=sha256, kind=sniffed.kind, content_type=sniffed.content_type, size_bytes=size,
                      path=rel, created_at=self.clock())
        return self.store.add_asset(asset), True

    def _fetch_shared(self, rel: str) -> None:
        """Download an asset another server of the shared queue took (blocking); a failure leaves
        it missing here (the caller answers ``asset_not_found``)."""
        from ...errors import StorageError

        try:
            self.files.fetch_input(rel)
        except StorageError as err:
            log.warning("myspinbot: could not fetch asset %s from object storage: %s", rel, err)

    # --- asset ids in a job's inputs -------------------------------------------------------
    def resolve_inputs(self, pipeline: Pipeline, inputs: dict[str, Any], *, bare_asset_ids: bool = False) -> dict[str, Any]:
        """Replace file parameters given as ``{"asset_id": "<sha256>"}`` (or, with ``bare_asset_ids``,
        the id alone, as in a form field) by the asset's path relative to ComfyUI's input folder.

        Anything else goes through as given, for ``Pipeline.coerce`` to check."""
        values = dict(inputs)
        for name, value in inputs.items():
            param = pipeline.param(name)
            if param is not None and param.kind in FILE_KINDS:
                values[name] = self._asset_path(param, value, bare_asset_ids)
        return values

    def _asset_path(self, param: Param, value: Any, bare: bool) -> str:
        if isinstance(value, dict) and set(value) == {"asset_id"}:
            asset_id = value["asset_id"]
        elif bare and isinstance(value, str):
            asset_id = value
        else:
            raise ApiError(422, "invalid_parameter",
                           f"parameter '{param.name}' must be {{\"asset_id\": \"<sha256>\"}} of a file uploaded to {PREFIX}/assets",
                           {"field": param.name})
        if not isinstance(asset_id, str) or not ASSET_ID.match(asset_id):
            raise ApiError(422, "invalid_asset_id", f"parameter '{param.name}': an asset id is 64 lowercase hex digits (a sha256)",
                           {"field": param.name})
        asset = self.store.asset(asset_id)
        if asset is not None and self.files is not None and not (self.input_dir / asset.path).is_file():
            self._fetch_shared(asset.path)  # uploaded on another server of the shared queue
        if asset is None or not (self.input_dir / asset.path).is_file():
            raise ApiError(422, "asset_not_found", f"parameter '{param.name}': no asset '{asset_id}'",
                           {"field": param.name, "asset_id": asset_id})
        if not self.integrity.matches(self.input_dir / asset.path, asset_id):
            # Overwritten in ComfyUI's input folder (e.g. by core's POST /upload/image): never run on it.
            raise ApiError(409, "asset_modified",
                           f"parameter '{param.name}': asset '{asset_id}' no longer holds the uploaded bytes; upload it again",
                           {"field": param.name, "asset_id": asset_id})
        if asset.kind != param.kind:
            raise ApiError(422, "asset_kind_mismatch",
                           f"parameter '{param.name}' takes {param.kind}, asset '{asset_id}' is {asset.kind}",
                           {"field": param.name, "asset_id": asset_id, "expected": param.kind, "actual": asset.kind})
        return asset.path
