"""The model manifest: one JSON file (``manifest.json`` beside this module) listing every
model the pack can use, where it comes from, where it goes, how big it is, its sha256 and
its licence.

Reading the manifest touches nothing but that file; importing this module touches nothing.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping

MANIFEST_FILE = Path(__file__).resolve().with_name("manifest.json")
INSTALL_COMMAND = "python install.py --models"

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_PART = re.compile(r"^[A-Za-z0-9_.+-]+$")


@dataclass(frozen=True)
class ModelFile:
    """One file of a model: ``repo_path`` on the hub, ``filename`` on disk (inside the
    model's ``<folder>/<subdir>``). ``sha256`` None means "check the size only"."""

    repo_path: str
    filename: str
    size_bytes: int | None
    sha256: str | None


@dataclass(frozen=True)
class ModelEntry:
    """A model: a set of files from one Hugging Face repo, stored under ComfyUI's
    ``models/<folder>/<subdir>/``."""

    name: str
    repo_id: str
    folder: str
    subdir: str
    files: tuple[ModelFile, ...]
    licence: str
    licence_url: str
    non_commercial: bool
    used_by: tuple[str, ...]
    description: str
    revision: str | None = None
    provenance: str = ""

    @property
    def size_bytes(self) -> int | None:
        """Total size of the files, None when any size is unknown."""
        sizes = [f.size_bytes for f in self.files]
        return None if any(s is None for s in sizes) else sum(sizes)  # type: ignore[misc]

    @property
    def fetch_command(self) -> str:
        return f"{INSTALL_COMMAND} {self.name}"

    @property
    def licence_notice(self) -> str:
        """One line to show wherever the model is offered."""
        if self.non_commercial:
            return f"licence {self.licence} ({self.licence_url}): non-commercial use only"
        return f"licence {self.licence} ({self.licence_url})"

    def file(self, filename: str) -> ModelFile | None:
        return next((f for f in self.files if f.filename == filename), None)

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "repo_id": self.repo_id,
            "revision": self.revision,
            "folder": self.folder,
            "subdir": self.subdir,
            "files": [
                {"repo_path": f.repo_path, "filename": f.filename, "size_bytes": f.size_bytes, "sha256": f.sha256}
                for f in self.files
            ],
            "size_bytes": self.size_bytes,
            "licence": self.licence,
            "licence_url": self.licence_url,
            "non_commercial": self.non_commercial,
            "licence_notice": self.licence_notice,
            "used_by": list(self.used_by),
            "description": self.description,
            "fetch_command": self.fetch_command,
        }


def load_manifest(path: str | Path | None = None) -> dict[str, ModelEntry]:
    """Read and validate the manifest (the pack's own unless ``path`` is given).

    Returns the entries by name, in file order. Raises ``ValueError`` naming the bad field."""
    source = Path(path) if path is not None else MANIFEST_FILE
    with open(source, encoding="utf-8") as f:
        data = json.load(f)
    return parse_manifest(data, source=str(source))


def parse_manifest(data: Mapping[str, Any], *, source: str = "manifest") -> dict[str, ModelEntry]:
    """Validate manifest data (the parsed JSON) into entries by name."""
    if not isinstance(data, Mapping) or not isinstance(data.get("models"), list):
        raise ValueError(f"{source}: expected an object with a 'models' list")
    entries: dict[str, ModelEntry] = {}
    for index, raw in enumerate(data["models"]):
        entry = _entry(raw, f"{source}: models[{index}]")
        if entry.name in entries:
            raise ValueError(f"{source}: model '{entry.name}' is listed twice")
        entries[entry.name] = entry
    return entries


def models_used_by(manifest: Mapping[str, ModelEntry], user: str) -> list[str]:
    """Names of the models a node id or pipeline name needs, in manifest order."""
    return [name for name, entry in manifest.items() if user in entry.used_by]


def pipeline_models(manifest: Mapping[str, ModelEntry], pipelines: Iterable[str]) -> dict[str, list[str]]:
    """``{pipeline: [model names]}`` for the given pipeline names (empty list: weightless)."""
    return {pipeline: models_used_by(manifest, pipeline) for pipeline in pipelines}


def _entry(raw: Any, where: str) -> ModelEntry:
    if not isinstance(raw, Mapping):
        raise ValueError(f"{where}: expected an object")
    name = _text(raw, "name", where)
    where = f"{where} ('{name}')"
    if not _NAME.match(name):
        raise ValueError(f"{where}: name must be letters, digits, '_', '.', '-'")
    folder, subdir = _text(raw, "folder", where), _text(raw, "subdir", where, allow_empty=True)
    for label, value in (("folder", folder), ("subdir", subdir)):
        if value and (not _PART.match(value) or value in (".", "..")):
            raise ValueError(f"{where}: {label} must be one plain directory name")
    files_raw = raw.get("files")
    if not isinstance(files_raw, list) or not files_raw:
        raise ValueError(f"{where}: 'files' must be a non-empty list")
    files = tuple(_file(f, f"{where} files[{i}]") for i, f in enumerate(files_raw))
    if len({f.filename for f in files}) != len(files):
        raise ValueError(f"{where}: two files share a local filename")
    used_by = raw.get("used_by", [])
    if not isinstance(used_by, list) or not all(isinstance(u, str) and u for u in used_by):
        raise ValueError(f"{where}: 'used_by' must be a list of names")
    non_commercial = raw.get("non_commercial")
    if not isinstance(non_commercial, bool):
        raise ValueError(f"{where}: 'non_commercial' must be true or false")
    revision = raw.get("revision")
    if revision is not None and (not isinstance(revision, str) or not revision):
        raise ValueError(f"{where}: 'revision' must be a string or null")
    return ModelEntry(
        name=name,
        repo_id=_text(raw, "repo_id", where),
        revision=revision,
        folder=folder,
        subdir=subdir,
        files=files,
        licence=_text(raw, "licence", where),
        licence_url=_text(raw, "licence_url", where),
        non_commercial=non_commercial,
        used_by=tuple(used_by),
        description=_text(raw, "description", where, allow_empty=True),
        provenance=str(raw.get("provenance") or ""),
    )


def _file(raw: Any, where: str) -> ModelFile:
    if not isinstance(raw, Mapping):
        raise ValueError(f"{where}: expected an object")
    repo_path = _text(raw, "repo_path", where)
    filename = _text(raw, "filename", where)
    if not _PART.match(filename) or filename in (".", ".."):
        raise ValueError(f"{where}: filename must be a plain file name")
    if repo_path.startswith("/") or ".." in repo_path.split("/"):
        raise ValueError(f"{where}: repo_path must be relative")
    size = raw.get("size_bytes")
    if size is not None and (isinstance(size, bool) or not isinstance(size, int) or size < 0):
        raise ValueError(f"{where}: size_bytes must be a non-negative integer or null")
    sha = raw.get("sha256")
    if sha is not None and (not isinstance(sha, str) or not _SHA256.match(sha)):
        raise ValueError(f"{where}: sha256 must be 64 lowercase hex digits or null")
    return ModelFile(repo_path=repo_path, filename=filename, size_bytes=size, sha256=sha)


def _text(raw: Mapping[str, Any], key: str, where: str, *, allow_empty: bool = False) -> str:
    value = raw.get(key)
    if not isinstance(value, str) or (not value and not allow_empty):
        raise ValueError(f"{where}: '{key}' must be a{'' if allow_empty else ' non-empty'} string")
    return value
