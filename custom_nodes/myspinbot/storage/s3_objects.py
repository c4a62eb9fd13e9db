"""One-call operations on stored objects: presigned URLs, HEAD, retrying a pending upload and
deleting the local copy once the object is verified. Uploads themselves are ``s3.upload_file``.

The calls block (network I/O): from asyncio code run them in an executor.
"""

from __future__ import annotations

import datetime as _dt
import logging
import os
import time
from pathlib import Path
from typing import Any, Callable

from ..errors import InvalidInputError, StorageError
from .config import S3Settings, load_settings
from .keys import validate_key
from .records import PendingUpload, StoredObject
from .s3 import MAX_PRESIGN_S, ProgressFn, SleepFn, _classify, _local_size, check_bucket, make_client, upload_file

log = logging.getLogger("myspinbot.storage")


def _one_shot(settings: S3Settings, what: str, fn: Callable[[Any], Any]) -> Any:
    """Run ``fn(client)`` once, turning storage failures into ``StorageError``."""
    client = make_client(settings)
    try:
        return fn(client)
    except Exception as exc:  # noqa: BLE001
        verdict = _classify(exc)
        if verdict is None:
            raise
        _, code, message = verdict
        raise StorageError(f"{what}: {settings.scrub(message)}", code=code) from None


def presign(settings: S3Settings, bucket: str, key: str, expiry_s: int = 3600) -> str:
    """A presigned GET URL for an object, valid ``expiry_s`` seconds (1 .. 7 days). Without a
    configured region the client asks the server for the bucket's region first."""
    if not 1 <= int(expiry_s) <= MAX_PRESIGN_S:
        raise InvalidInputError(f"presign expiry must be 1..{MAX_PRESIGN_S} seconds, got {expiry_s}")
    bucket, key = check_bucket(bucket or settings.bucket), validate_key(key)
    return _one_shot(settings, f"could not presign s3://{bucket}/{key}",
                     lambda c: c.presigned_get_object(bucket, key, expires=_dt.timedelta(seconds=int(expiry_s))))


def remove(settings: S3Settings, bucket: str, key: str) -> None:
    """Delete an object (a missing one is no error). Raises ``StorageError``, ``InvalidInputError``."""
    bucket, key = check_bucket(bucket or settings.bucket), validate_key(key)
    _one_shot(settings, f"could not remove s3://{bucket}/{key}", lambda c: c.remove_object(bucket, key))


def head(settings: S3Settings, bucket: str, key: str) -> dict[str, Any] | None:
    """HEAD an object: ``{"size", "etag", "content_type", "metadata"}``, or None when it does not exist."""
    from minio.error import S3Error

    bucket, key = check_bucket(bucket or settings.bucket), validate_key(key)

    def stat(client):
        try:
            return client.stat_object(bucket, key)
        except S3Error as exc:
            if exc.code in ("NoSuchKey", "NoSuchBucket", "NoSuchObject"):
                return None
            raise

    st = _one_shot(settings, f"could not HEAD s3://{bucket}/{key}", stat)
    if st is None:
        return None
    meta = {k.lower()[len("x-amz-meta-"):]: v for k, v in (st.metadata or {}).items() if k.lower().startswith("x-amz-meta-")}
    return {"size": int(st.size), "etag": (st.etag or "").strip('"'), "content_type": st.content_type, "metadata": meta}


def retry_upload(
    record: PendingUpload,
    settings: S3Settings | None = None,
    *,
    retries: int | None = None,
    backoff_s: float | None = None,
    on_progress: ProgressFn | None = None,
    sleep: SleepFn = time.sleep,
) -> StoredObject:
    """Upload a pending output again (``POST /myspinbot/jobs/{id}/outputs/{name}/upload``).

    ``settings`` defaults to :func:`~.config.load_settings` (environment). The record is updated
    in place: ``attempts`` + 1, ``updated_at``, and ``last_error`` (cleared on success). The
    local file must still have the size the record was made with.

    Raises:
        StorageError: as :func:`upload_file`, or ``storage_local_missing`` /
            ``storage_local_changed`` when the local file is gone or no longer the one recorded.
    """
    settings = settings or load_settings()
    record.attempts += 1
    record.updated_at = time.time()
    path = Path(record.local_path)
    try:
        size = _local_size(path)
        if record.size >= 0 and size != record.size:
            raise StorageError(f"the local file {path.name} changed since the output was made "
                               f"({record.size} bytes then, {size} now)", code="storage_local_changed",
                               details={"file": path.name})
        stored = upload_file(
            settings, path, record.bucket or settings.bucket, record.key, record.content_type, record.metadata,
            create_bucket=record.create_bucket, presign_expiry_s=record.presign_expiry_s,
            retries=retries, backoff_s=backoff_s, on_progress=on_progress, sleep=sleep,
        )
    except StorageError as err:
        record.last_error = str(err)
        raise
    record.last_error = ""
    if not record.bucket:
        record.bucket = stored.bucket
    return stored


def delete_local_copy(settings: S3Settings, bucket: str, key: str, local_path: str | os.PathLike) -> bool:
    """Delete the local file only if a HEAD shows ``bucket``/``key`` with the same size.

    Returns True when deleted; False (file kept) when the object is missing, has another size,
    or storage cannot be reached. Never raises for storage trouble."""
    path = Path(local_path)
    try:
        size = path.stat().st_size
        info = head(settings, bucket, key)
    except (OSError, StorageError) as exc:
        log.info("myspinbot: keeping %s: %s", path.name, exc)
        return False
    if info is None or info["size"] != size:
        log.info("myspinbot: keeping %s: s3://%s/%s is %s", path.name, bucket, key,
                 "missing" if info is None else f"{info['size']} bytes, not {size}")
        return False
    path.unlink()
    log.info("myspinbot: deleted local %s (confirmed as s3://%s/%s, %d bytes)", path.name, bucket, key, size)
    return True
