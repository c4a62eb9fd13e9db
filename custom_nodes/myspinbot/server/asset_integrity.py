"""Uploaded assets still hold the bytes their id (a sha256) names.

Assets live in ComfyUI's input folder, which core's ``POST /upload/image`` can overwrite. A job
that uses an asset checks it first; the digest of a file is remembered with the file's size,
modification time and inode, so an unchanged file is hashed once per process.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

CHUNK = 1 << 20


class AssetIntegrity:
    """Remembers which asset files were seen to match their sha256 (one per ``JobService``)."""

    def __init__(self) -> None:
        self._known: dict[str, tuple[tuple[int, int, int], str]] = {}

    def remember(self, path: Path, sha256: str) -> None:
        """Record that ``path`` (as it is on disk now) holds the bytes of ``sha256``."""
        self._known[str(path)] = (_signature(path), sha256)

    def matches(self, path: Path, sha256: str) -> bool:
        """True when the file's bytes hash to ``sha256`` (hex). Reads the file only when it changed
        since it was last checked. Raises ``OSError`` when it cannot be read."""
        signature = _signature(path)
        known = self._known.get(str(path))
        if known is not None and known[0] == signature:
            return known[1] == sha256
        digest = hashlib.sha256()
        with open(path, "rb") as fh:
            while chunk := fh.read(CHUNK):
                digest.update(chunk)
        self._known[str(path)] = (signature, digest.hexdigest())
        return digest.hexdigest() == sha256


def _signature(path: Path) -> tuple[int, int, int]:
    st = os.stat(path)
    return st.st_size, st.st_mtime_ns, st.st_ino
