"""The model manager behind the HTTP routes: model listing, background downloads with
progress in memory, and the capabilities report (pipelines, models, engines, device, and
whether job outputs get a lip-sync score).

Downloads run the blocking ``fetch_model`` in a worker thread from an asyncio task; the
progress callback writes plain numbers that request handlers read. Imports no ComfyUI
module; torch is imported only when the device report is asked for.
"""

from __future__ import annotations

import asyncio
import importlib.util
import logging
import os
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping

from ..errors import DownloadInProgressError, ModelConflictError, MySpinBotError
from .fetch import fetch_model, model_dir, offline_error, offline_mode
from .lipsync_score import lipsync_score_report
from .locate import ModelLocator, sha256_file
from .manifest import ModelEntry
from .preflight import preflight

log = logging.getLogger("myspinbot.models")

QUEUED, RUNNING, DONE, FAILED = "queued", "running", "done", "failed"
Fetcher = Callable[..., "dict[str, Path]"]


@dataclass
class Download:
    """One download's state; written by the worker thread, read by handlers."""

    name: str
    status: str = QUEUED
    done_bytes: int = 0
    total_bytes: int | None = None
    started_at: float = 0.0
    finished_at: float | None = None
    error: dict[str, Any] | None = None

    @property
    def active(self) -> bool:
        return self.status in (QUEUED, RUNNING)

    def to_json(self) -> dict[str, Any]:
        total = self.total_bytes
        fraction = 1.0 if self.status == DONE else (round(min(1.0, self.done_bytes / total), 4) if total else None)
        return {
            "status": self.status,
            "done_bytes": self.done_bytes,
            "total_bytes": total,
            "fraction": fraction,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "error": self.error,
        }


class ModelManager:
    """Holds the locator, the manifest, where downloads go and the download tasks.

    ``models_root`` is ComfyUI's models directory: a model is downloaded into
    ``<models_root>/<folder>/<subdir>/``. Without it, the first directory the locator
    searches for the folder is used."""

    def __init__(self, locator: ModelLocator, manifest: Mapping[str, ModelEntry] | None = None,
                 models_root: str | os.PathLike | None = None, *, fetcher: Fetcher = fetch_model,
                 clock: Callable[[], float] = time.time):
        self.locator = locator
        self.manifest: Mapping[str, ModelEntry] = manifest if manifest is not None else locator.manifest
        self.models_root = Path(models_root) if models_root is not None else None
        self.fetcher = fetcher
        self.clock = clock
        self._downloads: dict[str, Download] = {}
        self._tasks: dict[str, asyncio.Task] = {}
        self._lock = threading.Lock()

    # --- lookups -------------------------------------------------------------------------
    def entry(self, name: str) -> ModelEntry:
        """The manifest entry (``UnknownModelError`` for an unknown name)."""
        return self.locator.entry(name)

    def target_dir(self, entry: ModelEntry) -> Path:
        """The models folder a download of ``entry`` goes to."""
        if self.models_root is not None:
            return self.models_root / entry.folder
        dirs = self.locator.dirs(entry.folder)
        if not dirs:
            raise MySpinBotError(f"no directory is registered for the models folder '{entry.folder}'")
        return dirs[0]

    def download(self, name: str) -> Download | None:
        return self._downloads.get(name)

    # --- downloads -----------------------------------------------------------------------
    async def start_download(self, name: str) -> Download | None:
        """Start fetching ``name`` in the background; returns its ``Download``, or None when
        every file is already present and matches the manifest.

        Raises ``UnknownModelError``, ``DownloadInProgressError``, ``OfflineError`` (offline
        and files are missing) or ``ModelConflictError`` (a hand-placed file is in the way)
        before anything starts."""
        entry = self.entry(name)
        current = self._downloads.get(name)
        if current is not None and current.active:
            raise DownloadInProgressError(f"model '{name}' is already downloading", details={"model": name})
        status = await asyncio.to_thread(self.locator.status, name)
        if status["state"] == "present":
            return None
        target = self.target_dir(entry)
        if offline_mode():
            todo = [f for f in entry.files if not (model_dir(entry, target) / f.filename).is_file()]
            if todo:
                raise offline_error(entry, todo, target)
        await asyncio.to_thread(_check_conflicts, entry, target)
        with self._lock:
            current = self._downloads.get(name)
            if current is not None and current.active:  # raced with another request
                raise DownloadInProgressError(f"model '{name}' is already downloading", details={"model": name})
            dl = Download(name=name, started_at=self.clock(), total_bytes=entry.size_bytes)
            self._downloads[name] = dl
        self._tasks[name] = asyncio.get_running_loop().create_task(self._run(entry, dl, target))
        return dl

    async def wait(self, name: str) -> Download | None:
        """Wait for the model's running download (if any) and return its final state."""
        task = self._tasks.get(name)
        if task is not None:
            await asyncio.shield(task)
        return self._downloads.get(name)

    async def _run(self, entry: ModelEntry, dl: Download, target: Path) -> None:
        def on_progress(done: int, total: int | None) -> None:
            dl.done_bytes = int(done)
            if total is not None:
                dl.total_bytes = int(total)

        dl.status = RUNNING
        try:
            await asyncio.to_thread(self.fetcher, entry, target, on_progress)
        except MySpinBotError as err:
            dl.status, dl.error = FAILED, {"code": err.code, "message": err.message, "details": err.details}
            log.warning("myspinbot: download of model %s failed: %s", entry.name, err)
        except Exception as err:  # noqa: BLE001 - reported to the client, logged with traceback
            dl.status, dl.error = FAILED, {"code": "internal_error", "message": f"{type(err).__name__}: {err}", "details": {}}
            log.exception("myspinbot: download of model %s failed", entry.name)
        else:
            dl.status = DONE
            if dl.total_bytes is not None:
                dl.done_bytes = dl.total_bytes
            log.info("myspinbot: model %s downloaded to %s", entry.name, model_dir(entry, target))
        finally:
            dl.finished_at = self.clock()
            self._tasks.pop(entry.name, None)

    # --- reports (blocking: hash files; run them in a worker thread from handlers) -----------
    def model_json(self, name: str, *, verify: bool = True) -> dict[str, Any]:
        entry = self.entry(name)
        dl = self._downloads.get(name)
        body = entry.to_json()
        body["status"] = self.locator.status(name, verify=verify)
        body["download"] = dl.to_json() if dl else None
        return body

    def models_json(self, *, verify: bool = True) -> dict[str, Any]:
        folders = {}
        for folder in self.locator.folders():
            folders[folder] = {
                "directories": [str(d) for d in self.locator.dirs(folder)],
                "hand_placed": [str(p) for p in self.locator.hand_placed(folder)],
            }
        return {
            "models": [self.model_json(name, verify=verify) for name in self.manifest],
            "folders": folders,
            "models_root": str(self.models_root) if self.models_root else None,
            "offline": offline_mode(),
        }

    def capabilities(self, *, nodes: Iterable[str] = (), pipeline_models: Mapping[str, Iterable[str]] | None = None,
                     engines: Mapping[str, Any] | None = None, verify: bool = True) -> dict[str, Any]:
        models = {}
        for name, entry in self.manifest.items():
            status = self.locator.status(name, verify=verify)
            models[name] = {
                "present": status["present"],
                "state": status["state"],
                "size_bytes": status["size_bytes"],
                "expected_size_bytes": entry.size_bytes,
                "missing": status["missing"],
                "licence": entry.licence,
                "licence_url": entry.licence_url,
                "non_commercial": entry.non_commercial,
                "licence_notice": entry.licence_notice,
                "used_by": list(entry.used_by),
                "fetch_command": entry.fetch_command,
            }
        return {
            "nodes": list(nodes),
            "engines": dict(engines or {}),
            "models": models,
            "pipelines": preflight(pipeline_models or {}, self.locator, verify=verify),
            "lipsync_score": lipsync_score_report(self.locator),
            "device": device_info(),
            "offline": offline_mode(),
        }


def _check_conflicts(entry: ModelEntry, target: Path) -> None:
    """Raise ``ModelConflictError`` now, rather than in the background task, when a file that
    differs from the manifest sits where the download would go."""
    for file in entry.files:
        dest = model_dir(entry, target) / file.filename
        if not dest.is_file():
            continue
        size = dest.stat().st_size
        differs = (file.size_bytes is not None and size != file.size_bytes) or \
                  (file.sha256 is not None and sha256_file(dest) != file.sha256)
        if differs:
            raise ModelConflictError(
                f"{dest} is already there and differs from the manifest entry '{entry.name}' "
                "(a custom file placed by hand?); it is never overwritten: move it away to download the original",
                details={"model": entry.name, "file": file.filename, "path": str(dest)})


# --- engines and device -----------------------------------------------------------------------

def probe_engines() -> dict[str, Any]:
    """What the pack's engines can use here, without loading any model."""
    engines: dict[str, Any] = {}
    try:
        from ..speech import available_backend

        engines["espeak"] = {"available": True, "backend": available_backend()}
    except MySpinBotError as err:
        engines["espeak"] = {"available": False, "error": err.message}
    except Exception as err:  # noqa: BLE001 - a probe never fails the report
        engines["espeak"] = {"available": False, "error": f"{type(err).__name__}: {err}"}
    engines["classical_animator"] = {"available": importlib.util.find_spec("cv2") is not None}
    engines["torch"] = {"available": _has_module("torch")}
    engines["huggingface_hub"] = {"available": _has_module("huggingface_hub")}
    return engines


def _has_module(name: str) -> bool:
    return name in sys.modules or importlib.util.find_spec(name) is not None


def device_info() -> dict[str, Any]:
    """``{"device": "cuda"|"mps"|"cpu", "torch", "cuda": {...}, "memory": {...}}`` (torch imported here, if installed)."""
    info: dict[str, Any] = {"device": "cpu", "torch": None, "cuda": {"available": False, "devices": []},
                            "memory": system_memory()}
    try:
        import torch
    except Exception:  # noqa: BLE001 - no torch: the weightless pipelines still run
        return info
    info["torch"] = getattr(torch, "__version__", None)
    try:
        if torch.cuda.is_available():
            devices = []
            for index in range(torch.cuda.device_count()):
                props = torch.cuda.get_device_properties(index)
                device = {"index": index, "name": props.name, "total_memory_bytes": int(props.total_memory)}
                try:
                    free, _total = torch.cuda.mem_get_info(index)
                    device["free_memory_bytes"] = int(free)
                except Exception:  # noqa: BLE001
                    pass
                devices.append(device)
            info["device"] = "cuda"
            info["cuda"] = {"available": True, "version": getattr(torch.version, "cuda", None), "devices": devices}
        elif getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            info["device"] = "mps"
    except Exception as err:  # noqa: BLE001
        info["cuda"]["error"] = f"{type(err).__name__}: {err}"
    return info


def system_memory() -> dict[str, Any]:
    """Total and available RAM: psutil when installed, else /proc/meminfo, else unknown."""
    try:
        import psutil

        vm = psutil.virtual_memory()
        return {"total_bytes": int(vm.total), "available_bytes": int(vm.available), "source": "psutil"}
    except Exception:  # noqa: BLE001
        pass
    try:
        values = {}
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                key, _, rest = line.partition(":")
                parts = rest.split()
                if parts and parts[0].isdigit():
                    values[key] = int(parts[0]) * 1024
        return {"total_bytes": values.get("MemTotal"), "available_bytes": values.get("MemAvailable"),
                "source": "/proc/meminfo"}
    except OSError:
        return {"total_bytes": None, "available_bytes": None, "source": None}
