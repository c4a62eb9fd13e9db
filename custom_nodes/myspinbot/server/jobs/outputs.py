"""A finished prompt's files, read from ComfyUI's history, as the job's recorded outputs.

Only files inside ComfyUI's output folder count, and only those that exist: a job never
succeeds without the file it promises.
"""

from __future__ import annotations

import mimetypes
from pathlib import Path
from typing import Any, Callable

from ..model import Job, Output
from .outputs_storage import public_storage, storage_block_for, storage_blocks
from .quality import quality_for

_CONTENT_TYPES = {".mp4": "video/mp4", ".webm": "video/webm", ".mkv": "video/x-matroska", ".wav": "audio/wav",
                  ".flac": "audio/flac", ".mp3": "audio/mpeg", ".png": "image/png", ".jpg": "image/jpeg"}

PendingSink = Callable[[str, dict[str, Any]], None]
"""``sink(output name, PendingUpload record as a dict)``: keeps the retry record of an upload that failed."""


def content_type_for(path: Path) -> str:
    """The media type of an output file, from its extension."""
    return _CONTENT_TYPES.get(path.suffix.lower()) or mimetypes.guess_type(path.name)[0] or "application/octet-stream"


def collect_outputs(output_dir: Path, history_outputs: dict[str, Any], output_nodes: dict[str, str],
                    output_types: dict[str, str], pending: PendingSink | None = None,
                    score_nodes: dict[str, str] | None = None) -> tuple[list[Output], list[str]]:
    """The outputs a prompt wrote, and the names of those it did not.

    ``history_outputs``: ComfyUI's history ``outputs`` (node id → UI output); ``output_nodes``:
    output name → node id; ``output_types``: output name → type (``video``, ...). An output that
    a storage node (``MySpinBotSaveToMinIO``) uploaded carries its public ``storage`` block; the
    retry record of a pending upload goes to ``pending``, never into the job's JSON.
    ``score_nodes``: output name → its lip-sync score node (``quality.add_score_nodes``); the
    block that node left becomes the output's ``quality``."""
    outputs: list[Output] = []
    missing: list[str] = []
    root = Path(output_dir).resolve()
    blocks = storage_blocks(history_outputs)
    for name, node_id in output_nodes.items():
        entry = _first_file(history_outputs.get(node_id) or {})
        path = (root / entry.get("subfolder", "") / entry.get("filename", "")).resolve() if entry else None
        if entry is None or path is None or entry.get("type", "output") != "output" or not path.is_relative_to(root) \
                or not path.is_file():
            missing.append(name)
            continue
        output = Output(name=name, type=output_types.get(name, "file"), content_type=content_type_for(path),
                        size_bytes=path.stat().st_size, path=path.relative_to(root).as_posix())
        block = storage_block_for(blocks, name, path)
        if block is not None:
            output.storage = public_storage(block)
            record = block.get("pending_upload")
            if pending is not None and block.get("status") == "pending" and isinstance(record, dict):
                pending(name, record)
        output.quality = quality_for(history_outputs, (score_nodes or {}).get(name))
        outputs.append(output)
    return outputs, missing


def output_path(output_dir: Path, job: Job, name: str) -> Path | None:
    """The file behind a recorded output, if it is still inside ComfyUI's output folder."""
    output = job.output(name)
    if output is None:
        return None
    root = Path(output_dir).resolve()
    path = (root / output.path).resolve()
    if not path.is_relative_to(root) or not path.is_file():
        return None
    return path


def _first_file(node_output: dict[str, Any]) -> dict[str, Any] | None:
    """The first ``{"filename", "subfolder", "type"}`` entry in a node's UI output."""
    for value in node_output.values():
        if isinstance(value, list):
            for item in value:
                if isinstance(item, dict) and "filename" in item:
                    return item
    return None
