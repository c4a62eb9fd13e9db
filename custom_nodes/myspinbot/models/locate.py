"""Finding model files on disk: which manifest files are present, whether they match the
manifest, and what the user placed by hand.

Imports no ComfyUI module: ``ModelLocator`` is given a function that returns the directories
ComfyUI searches for a models folder (``folder_dirs_from(folder_paths)`` builds one over
ComfyUI's ``folder_paths`` module; tests pass temporary directories).
"""

from __future__ import annotations

import hashlib
import os
import threading
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping

from ..errors import ModelsMissingError, UnknownModelError
from .manifest import ModelEntry, ModelFile, load_manifest

FolderDirs = Callable[[str], "list[Path]"]

STAGING_DIR_NAME = ".myspinbot-downloads"
MATCH, MISMATCH, UNCHECKED = "match", "mismatch", "unchecked"
_HASH_CHUNK = 4 * 1024 * 1024
_EXTRAS_DEPTH = 3


# --- sha256 with a per-process cache -----------------------------------------------------

_digests: dict[tuple[str, int, int], str] = {}
_digests_lock = threading.Lock()


def _file_key(path: Path) -> tuple[str, int, int]:
    st = path.stat()
    return (str(path.resolve()), st.st_size, st.st_mtime_ns)


def cached_sha256(path: str | os.PathLike) -> str | None:
    """The sha256 of ``path`` if this process already computed it for the file as it is now."""
    try:
        key = _file_key(Path(path))
    except OSError:
        return None
    with _digests_lock:
        return _digests.get(key)


def remember_sha256(path: str | os.PathLike, digest: str) -> None:
    """Record a digest computed elsewhere (the downloader) for the file as it is now."""
    key = _file_key(Path(path))
    with _digests_lock:
        _digests[key] = digest


def sha256_file(path: str | os.PathLike, *, use_cache: bool = True) -> str:
    """Hex sha256 of a file, reading it in chunks. Cached per (path, size, mtime)."""
    path = Path(path)
    if use_cache and (known := cached_sha256(path)) is not None:
        return known
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_HASH_CHUNK):
            digest.update(chunk)
    hexdigest = digest.hexdigest()
    remember_sha256(path, hexdigest)
    return hexdigest


# --- ComfyUI adapter (duck-typed; this module never imports ComfyUI) ----------------------

def folder_dirs_from(folder_paths: Any) -> FolderDirs:
    """A ``folder_dirs`` function over ComfyUI's ``folder_paths`` module.

    A folder ComfyUI does not know yet (``f5_tts``, ``vocoders``) is registered as
    ``<models_dir>/<folder>`` on first use, so extra_model_paths.yaml entries for it still
    apply and the default location is ComfyUI's models directory."""

    def folder_dirs(folder: str) -> list[Path]:
        if folder not in folder_paths.folder_names_and_paths:
            folder_paths.add_model_folder_path(folder, os.path.join(folder_paths.models_dir, folder), is_default=True)
        return [Path(p) for p in folder_paths.get_folder_paths(folder)]

    return folder_dirs


def models_dir_folder_dirs(models_dir: str | os.PathLike) -> FolderDirs:
    """A ``folder_dirs`` function for a plain models directory: ``<models_dir>/<folder>``."""
    root = Path(models_dir)
    return lambda folder: [root / folder]


# --- the locator ---------------------------------------------------------------------------

class ModelLocator:
    """Finds the files of manifest models in the directories ComfyUI searches."""

    def __init__(self, folder_dirs: FolderDirs, manifest: Mapping[str, ModelEntry] | None = None):
        self.folder_dirs = folder_dirs
        self.manifest: Mapping[str, ModelEntry] = manifest if manifest is not None else load_manifest()

    def entry(self, name: str) -> ModelEntry:
        entry = self.manifest.get(name)
        if entry is None:
            raise UnknownModelError(f"no model named '{name}' in the manifest (known: {', '.join(self.manifest)})",
                                    details={"model": name, "models": list(self.manifest)})
        return entry

    def dirs(self, folder: str) -> list[Path]:
        return [Path(d) for d in self.folder_dirs(folder)]

    def model_dirs(self, entry: ModelEntry) -> list[Path]:
        """``<dir>/<subdir>`` for every directory searched for the entry's folder."""
        return [d / entry.subdir if entry.subdir else d for d in self.dirs(entry.folder)]

    def expected_dir(self, entry: ModelEntry) -> Path | None:
        """Where the entry's files belong (the first, default, directory of its folder)."""
        dirs = self.model_dirs(entry)
        return dirs[0] if dirs else None

    def locate_file(self, entry: ModelEntry, file: ModelFile) -> Path | None:
        for directory in self.model_dirs(entry):
            candidate = directory / file.filename
            if candidate.is_file():
                return candidate
        return None

    # --- the interface nodes use ------------------------------------------------------------
    def find(self, name: str) -> dict[str, Path]:
        """Paths of all the model's files by local filename.

        Raises ``ModelsMissingError`` (code ``models_missing``) naming the model, the missing
        files, the directory to put them in and the fetch command; ``UnknownModelError``
        for a name the manifest does not list. Files that differ from the manifest (custom
        fine-tunes placed by hand) are returned as found: ``status``/preflight warn about them."""
        entry = self.entry(name)
        found: dict[str, Path] = {}
        missing: list[ModelFile] = []
        for file in entry.files:
            path = self.locate_file(entry, file)
            if path is None:
                missing.append(file)
            else:
                found[file.filename] = path
        if missing:
            raise self.missing_error([(entry, missing)])
        return found

    def missing_files(self, name: str) -> list[ModelFile]:
        entry = self.entry(name)
        return [f for f in entry.files if self.locate_file(entry, f) is None]

    def missing_for(self, names: Iterable[str]) -> list[str]:
        """The given model names that have at least one file missing (order kept)."""
        return [name for name in dict.fromkeys(names) if self.missing_files(name)]

    def missing_error(self, missing: list[tuple[ModelEntry, list[ModelFile]]]) -> ModelsMissingError:
        """One ``ModelsMissingError`` for several models' missing files."""
        names = [entry.name for entry, _ in missing]
        fetch = f"python install.py --models {' '.join(names)}"
        parts, files, where = [], [], {}
        for entry, model_files in missing:
            directory = self.expected_dir(entry)
            paths = [str(directory / f.filename) if directory else f.filename for f in model_files]
            files.extend(paths)
            where[entry.name] = str(directory) if directory else None
            notice = f"; {entry.licence_notice}" if entry.non_commercial else ""
            parts.append(f"model '{entry.name}' is missing {', '.join(f.filename for f in model_files)} "
                         f"(put {'it' if len(model_files) == 1 else 'them'} in {directory or '<no ' + entry.folder + ' folder>'}{notice})")
        message = "; ".join(parts) + f". Fetch with: {fetch}"
        return ModelsMissingError(message, details={
            "missing": names,
            "files": files,
            "directories": where,
            "fetch": fetch,
            "non_commercial": [entry.name for entry, _ in missing if entry.non_commercial],
        })

    # --- status ------------------------------------------------------------------------------
    def status(self, name: str, *, verify: bool = True) -> dict[str, Any]:
        """Per-file presence, sizes and sha256 check, hand-placed extras and warnings.

        ``verify=False`` skips hashing files this process has not hashed yet (their sha256
        reads ``unchecked``); size mismatches are always found. A file whose manifest sha256
        is null is checked by size only (``unchecked``).

        ``state``: ``present`` (all files, all matching), ``modified`` (all files, some differ
        from the manifest: usable, e.g. a custom fine-tune), ``partial`` or ``missing``."""
        entry = self.entry(name)
        files, warnings = [], []
        for file in entry.files:
            info = self._file_status(entry, file, verify)
            files.append(info)
            if info["present"] and info["matches_manifest"] is False:
                warnings.append(_modified_warning(entry, file, info))
        present = [f for f in files if f["present"]]
        if len(present) == len(files):
            state = "modified" if warnings else "present"
        else:
            state = "partial" if present else "missing"
        directory = self.expected_dir(entry)
        return {
            "name": entry.name,
            "state": state,
            "present": len(present) == len(files),
            "directory": str(directory) if directory else None,
            "size_bytes": sum(f["size_bytes"] or 0 for f in present),
            "expected_size_bytes": entry.size_bytes,
            "files": files,
            "missing": [f["filename"] for f in files if not f["present"]],
            "extras": [str(p) for p in self._extras(entry)],
            "warnings": warnings,
        }

    def _file_status(self, entry: ModelEntry, file: ModelFile, verify: bool) -> dict[str, Any]:
        path = self.locate_file(entry, file)
        directory = self.expected_dir(entry)
        info: dict[str, Any] = {
            "filename": file.filename,
            "repo_path": file.repo_path,
            "path": str(path) if path else None,
            "expected_path": str(directory / file.filename) if directory else None,
            "present": path is not None,
            "size_bytes": None,
            "expected_size_bytes": file.size_bytes,
            "size_ok": None,
            "sha256": UNCHECKED,
            "matches_manifest": None,
        }
        if path is None:
            return info
        size = path.stat().st_size
        info["size_bytes"] = size
        if file.size_bytes is not None:
            info["size_ok"] = size == file.size_bytes
        if file.sha256 is not None and info["size_ok"] is not False:
            digest = sha256_file(path) if verify else cached_sha256(path)
            if digest is not None:
                info["sha256"] = MATCH if digest == file.sha256 else MISMATCH
        if info["size_ok"] is False or info["sha256"] == MISMATCH:
            info["matches_manifest"] = False
        elif info["sha256"] == MATCH or (file.sha256 is None and info["size_ok"]):
            info["matches_manifest"] = True
        return info

    def _extras(self, entry: ModelEntry) -> list[Path]:
        known = {f.filename for f in entry.files}
        extras = []
        for directory in self.model_dirs(entry):
            if not entry.subdir:
                break  # a model stored flat in its folder: extras are reported by hand_placed()
            for path in _walk_files(directory, _EXTRAS_DEPTH):
                if not (path.parent == directory and path.name in known):
                    extras.append(path)
        return extras

    def hand_placed(self, folder: str) -> list[Path]:
        """Files under a models folder that no manifest entry accounts for (custom
        fine-tunes and the like), hidden files and download staging skipped."""
        claimed = set()
        for entry in self.manifest.values():
            if entry.folder == folder:
                for directory in self.model_dirs(entry):
                    claimed.update(directory / f.filename for f in entry.files)
        found = []
        for directory in self.dirs(folder):
            found.extend(p for p in _walk_files(directory, _EXTRAS_DEPTH + 1) if p not in claimed)
        return found

    def folders(self) -> list[str]:
        return list(dict.fromkeys(entry.folder for entry in self.manifest.values()))


def _modified_warning(entry: ModelEntry, file: ModelFile, info: dict[str, Any]) -> dict[str, Any]:
    if info["size_ok"] is False:
        reason, why = "size", f"size {info['size_bytes']} bytes, manifest says {file.size_bytes}"
    else:
        reason, why = "sha256", "sha256 differs from the manifest"
    return {
        "code": "model_modified",
        "model": entry.name,
        "file": file.filename,
        "path": info["path"],
        "reason": reason,
        "message": (f"{info['path']} differs from the manifest entry '{entry.name}' ({why}); "
                    "it is used as is (a custom fine-tune?)"),
    }


def _walk_files(directory: Path, depth: int) -> list[Path]:
    """Regular files under ``directory`` up to ``depth`` levels, hidden names skipped, sorted."""
    out: list[Path] = []
    try:
        entries = sorted(os.scandir(directory), key=lambda e: e.name)
    except OSError:
        return out
    for item in entries:
        if item.name.startswith("."):
            continue
        path = Path(item.path)
        try:
            if item.is_file():
                out.append(path)
            elif item.is_dir() and depth > 1:
                out.extend(_walk_files(path, depth - 1))
        except OSError:
            continue
    return out
