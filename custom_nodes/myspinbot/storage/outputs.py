"""Storing one finished output: upload it, or keep it locally as a pending upload.

:func:`store_output` is the policy the "Save to MinIO" node applies: the local file is always
kept; when storage stays down the output becomes ``pending`` with a warning (the job still
succeeds) unless storage is ``mandatory``, which raises ``StorageError`` (the job fails).
:meth:`StorageOutcome.ui_block` is what the node reports under ``myspinbot_storage`` in its
UI output, for the job service to attach to the job's output.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from ..errors import InvalidInputError, StorageError
from .config import S3Settings, load_settings
from .keys import DEFAULT_KEY_TEMPLATE, content_type_for, extension_of, render_key
from .records import PENDING, STORED, PendingUpload, StoredObject
from .s3 import ProgressFn, SleepFn, check_bucket, upload_file

log = logging.getLogger("myspinbot.storage")

UI_KEY = "myspinbot_storage"


@dataclass
class StorageOutcome:
    """The result for one output: ``stored`` (with :attr:`stored`) or ``pending`` (with
    :attr:`pending`, the record :func:`~.s3_objects.retry_upload` takes, and a :attr:`warning`)."""

    name: str
    local_path: str
    status: str
    stored: StoredObject | None = None
    pending: PendingUpload | None = None
    warning: str | None = None
    error_code: str | None = None

    @property
    def uri(self) -> str | None:
        return self.stored.uri if self.stored else None

    @property
    def presigned_url(self) -> str | None:
        return self.stored.presigned_url if self.stored else None

    def ui_block(self) -> dict[str, Any]:
        """JSON-able summary (no credential): ``name``, ``local_path``, ``uri``,
        ``presigned_url``, ``status``, ``warning``, plus ``bucket``/``key``/``size``/``etag``/
        ``content_type``/``presign_expires_at``/``error_code`` and ``pending_upload`` (the retry
        record, only while pending)."""
        source = self.stored or self.pending
        return {
            "name": self.name,
            "local_path": self.local_path,
            "uri": self.uri,
            "presigned_url": self.presigned_url,
            "status": self.status,
            "warning": self.warning,
            "error_code": self.error_code,
            "bucket": source.bucket if source else None,
            "key": source.key if source else None,
            "size": source.size if source else None,
            "content_type": source.content_type if source else None,
            "etag": self.stored.etag if self.stored else None,
            "presign_expires_at": self.stored.presign_expires_at if self.stored else None,
            "pending_upload": self.pending.to_dict() if self.pending else None,
        }


def prompt_sha256(prompt: Any) -> str | None:
    """sha256 of a prompt (API workflow) as canonical JSON, or None without one."""
    if not prompt:
        return None
    try:
        text = json.dumps(prompt, sort_keys=True, separators=(",", ":"), default=str)
    except (TypeError, ValueError):
        return None
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def store_output(
    local_path: str | os.PathLike,
    *,
    name: str,
    bucket: str = "",
    key_template: str = DEFAULT_KEY_TEMPLATE,
    settings: S3Settings | None = None,
    job_id: str | None = None,
    pipeline: str | None = None,
    prompt_hash: str | None = None,
    content_type: str | None = None,
    metadata: Mapping[str, Any] | None = None,
    create_bucket: bool = False,
    presign_expiry_s: int = 3600,
    mandatory: bool = False,
    retries: int | None = None,
    backoff_s: float | None = None,
    on_progress: ProgressFn | None = None,
    sleep: SleepFn = time.sleep,
    now: _dt.datetime | None = None,
) -> StorageOutcome:
    """Upload one local output; on storage trouble keep it as a pending upload.

    The key is rendered here (once) from ``key_template``; metadata gets ``myspinbot-name``,
    ``myspinbot-job-id``, ``myspinbot-pipeline`` and ``myspinbot-prompt-sha256`` where known.

    Raises:
        InvalidInputError: missing local file, bad template/key, bucket name or expiry
            (a workflow mistake, raised even when storage is optional).
        StorageError: only when ``mandatory`` and the upload did not succeed (not configured,
            refused, or unreachable after every retry). The local file is kept in every case.
    """
    path = Path(local_path)
    if not path.is_file():
        raise InvalidInputError(f"the output file to store does not exist: {path.name}")
    settings = settings or load_settings()
    key = render_key(key_template, name=name, ext=extension_of(path), job_id=job_id, pipeline=pipeline, now=now)
    bucket = bucket.strip() if bucket else ""
    bucket = bucket or settings.bucket
    if bucket:
        check_bucket(bucket)
    content_type = content_type or content_type_for(path)
    meta = {
        "myspinbot-name": name,
        "myspinbot-job-id": job_id,
        "myspinbot-pipeline": pipeline,
        "myspinbot-prompt-sha256": prompt_hash,
        **dict(metadata or {}),
    }
    meta = {k: str(v) for k, v in meta.items() if v not in (None, "")}
    size = path.stat().st_size
    try:
        if not bucket:
            raise StorageError("no bucket: set the node's bucket or MYSPINBOT_S3_BUCKET", code="storage_not_configured")
        settings.require()
        stored = upload_file(settings, path, bucket, key, content_type, meta, create_bucket=create_bucket,
                             presign_expiry_s=presign_expiry_s, retries=retries, backoff_s=backoff_s,
                             on_progress=on_progress, sleep=sleep)
    except StorageError as err:
        if mandatory:
            raise
        attempts = int((err.details or {}).get("attempts", 0) or 0)
        record = PendingUpload(local_path=str(path), bucket=bucket, key=key, content_type=content_type, size=size,
                               name=name, metadata=meta, create_bucket=create_bucket,
                               presign_expiry_s=int(presign_expiry_s), job_id=job_id, attempts=attempts,
                               last_error=str(err))
        warning = f"{err} (output kept locally; upload pending, it can be retried)"
        log.warning("myspinbot: output %s kept locally as %s, upload pending: %s", name, path.name, err)
        return StorageOutcome(name=name, local_path=str(path), status=PENDING, pending=record,
                              warning=warning, error_code=err.code)
    return StorageOutcome(name=name, local_path=str(path), status=STORED, stored=stored)
