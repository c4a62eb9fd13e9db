"""Outputs in object storage: the public ``storage`` block of an output, and uploading a pending one again.

A storage node (``nodes/save_minio.py``) reports what it did in the prompt's history under
``storage.UI_KEY``; an upload that failed leaves a retry record (``storage.PendingUpload``),
which the job store keeps server-side (``JobStore.put_pending_upload``) until
``POST /myspinbot/jobs/{id}/outputs/{name}/upload`` stores it.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from ..api_errors import ApiError
from ..model import Job
from ..store import JobStore


def storage_blocks(history_outputs: dict[str, Any]) -> list[dict[str, Any]]:
    """Every ``myspinbot_storage`` block in a prompt's history outputs."""
    from ...storage import UI_KEY

    found: list[dict[str, Any]] = []
    for node_output in history_outputs.values():
        if isinstance(node_output, dict):
            found.extend(b for b in node_output.get(UI_KEY) or [] if isinstance(b, dict))
    return found


def storage_block_for(blocks: list[dict[str, Any]], name: str, path: Path) -> dict[str, Any] | None:
    """The block of output ``name``: the one whose local file is the output's, else the one the
    storage node named after it (its ``name`` input)."""
    for block in blocks:
        local = block.get("local_path")
        if local and Path(local).resolve() == path:
            return block
    return next((b for b in blocks if b.get("name") == name), None)


def public_storage(block: dict[str, Any]) -> dict[str, Any]:
    """An output's public ``storage``: ``kind``, ``uri``, ``presigned_url``, ``status``, ``warning``
    (never a credential nor a local path)."""
    status = "stored" if block.get("status") == "stored" else "pending"
    uri = block.get("uri")
    if uri is None and isinstance(block.get("pending_upload"), dict):
        pending = block["pending_upload"]
        if pending.get("bucket") and pending.get("key"):
            uri = f"s3://{pending['bucket']}/{pending['key']}"  # where it will be once uploaded
    return {"kind": "s3", "uri": uri, "presigned_url": block.get("presigned_url") if status == "stored" else None,
            "status": status, "warning": block.get("warning")}


async def upload_output(store: JobStore, user_dir: Path, job: Job, name: str) -> Job:
    """Upload a pending output to object storage again; returns the updated job.

    Raises ``ApiError``: 404 ``output_not_found``; 409 ``output_already_stored`` /
    ``output_not_pending``; 503 ``storage_unavailable`` (storage still down or refusing; the
    job keeps its pending record, with ``attempts`` counted). The upload runs off the event loop.
    Changes no status: only the output's ``storage`` block."""
    from ...errors import StorageError
    from ...storage import PendingUpload, comfy_settings_path, load_settings, retry_upload

    output = job.output(name)
    if output is None:
        raise ApiError(404, "output_not_found", f"job {job.id} has no output '{name}'",
                       {"outputs": [o.name for o in job.outputs]})
    if output.storage and output.storage.get("status") == "stored":
        raise ApiError(409, "output_already_stored", f"output '{name}' is already stored",
                       {"uri": output.storage.get("uri")})
    raw = store.pending_upload(job.id, name)
    if raw is None:
        raise ApiError(409, "output_not_pending", f"output '{name}' has no pending upload", {"output": name})
    record = PendingUpload.from_dict(raw)

    def attempt():
        settings = load_settings(settings_file=comfy_settings_path(user_dir))
        return retry_upload(record, settings)

    try:
        stored = await asyncio.get_running_loop().run_in_executor(None, attempt)
    except StorageError as err:
        store.put_pending_upload(job.id, name, record.to_dict())
        code = getattr(err, "code", "storage_unavailable")
        raise ApiError(503, "storage_unavailable", f"object storage did not take output '{name}': {err}",
                       {"storage_code": code, "attempts": record.attempts}) from None
    except Exception as err:  # a settings file that does not parse, and the like
        store.put_pending_upload(job.id, name, record.to_dict())
        raise ApiError(503, "storage_unavailable", f"object storage did not take output '{name}': {err}",
                       {"attempts": record.attempts}) from None
    fresh = store.get(job.id) or job
    target = fresh.output(name)
    if target is not None:
        target.storage = {"kind": "s3", "uri": stored.uri, "presigned_url": stored.presigned_url,
                          "status": "stored", "warning": None}
        store.save(fresh)
    store.delete_pending_upload(job.id, name)
    return fresh
