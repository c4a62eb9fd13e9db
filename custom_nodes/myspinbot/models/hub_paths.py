"""Where manifest models come from and go to: the hub endpoint and a file's ``resolve`` URL, the
model and staging folders, the ``offline`` error, and small formatting helpers. A leaf module:
no network, no huggingface_hub import."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Callable
from urllib.parse import quote, urlparse

from ..errors import OfflineError
from .locate import STAGING_DIR_NAME
from .manifest import ModelEntry, ModelFile

ProgressCallback = Callable[[int, "int | None"], None]
DEFAULT_ENDPOINT = "https://huggingface.co"
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
