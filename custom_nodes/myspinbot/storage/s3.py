"""Upload files to S3-compatible object storage (MinIO, AWS S3, Cloudflare R2) with the
official ``minio`` client.

Every upload is ``fput_object`` (one PUT up to the part size, multipart above it) followed by
a HEAD (``stat_object``) whose size must match the local file; only then does it count as
stored. Connection errors, timeouts, 5xx and throttling are retried with exponential backoff;
after the last attempt :class:`~myspinbot.errors.StorageError` is raised. Nothing here ever
deletes or changes the local file (``s3_objects.delete_local_copy`` deletes it only after
a HEAD shows the object with the local file's size).

The calls block (network I/O): from asyncio code run them in an executor.
"""

from __future__ import annotations

import datetime as _dt
import logging
import math
import os
import re
import time
from pathlib import Path
from typing import Any, Callable, Mapping
from urllib.parse import quote

from ..errors import InvalidInputError, StorageError
from .config import S3Settings
from .keys import content_type_for, validate_key
from .records import StoredObject

log = logging.getLogger("myspinbot.storage")

MAX_BACKOFF_S = 30.0
MAX_PRESIGN_S = 7 * 24 * 3600  # S3's limit for presigned URLs
MAX_PARTS = 10_000
_RETRY_S3_CODES = {
    "InternalError", "ServiceUnavailable", "SlowDown", "RequestTimeout", "RequestTimeTooSkewed",
    "OperationAborted", "XMinioServerNotInitialized", "XMinioStorageFull", "ServerError",
}
_META_KEY = re.compile(r"[^a-z0-9-]+")

ProgressFn = Callable[[int, int], None]
SleepFn = Callable[[float], None]


class _SizeMismatch(Exception):
    def __init__(self, remote: int | None, local: int):
        super().__init__(f"HEAD shows {remote} bytes, the local file has {local}")


class _Progress:
    """Adapter from minio's progress protocol (``set_meta``/``update``) to ``fn(done, total)``."""

    def __init__(self, fn: ProgressFn, total: int):
        self.fn, self.total, self.done = fn, total, 0

    def set_meta(self, object_name: str, total_length: int) -> None:  # noqa: ARG002 (minio's protocol)
        if total_length and total_length > 0:
            self.total = int(total_length)

    def update(self, length: int) -> None:
        self.done += int(length)
        self.fn(min(self.done, self.total), self.total)


# --- client ----------------------------------------------------------------------------------
def make_client(settings: S3Settings):
    """A ``minio.Minio`` for ``settings``, with no retries of its own (the callers retry with
    backoff) and the settings' timeout. Raises ``StorageError(storage_not_configured)``."""
    import certifi
    import urllib3
    from minio import Minio

    settings.require()
    timeout = urllib3.Timeout(connect=settings.timeout_s, read=settings.timeout_s)
    http = urllib3.PoolManager(
        timeout=timeout,
        maxsize=max(10, settings.parallel_uploads + 2),
        cert_reqs="CERT_REQUIRED",
        ca_certs=os.environ.get("SSL_CERT_FILE") or certifi.where(),
        retries=urllib3.Retry(total=0, connect=0, read=0, redirect=0, status=0, other=0, raise_on_status=False),
    )
    log.debug("myspinbot: S3 client for %r", settings)
    return Minio(
        settings.endpoint,
        access_key=settings.access_key,
        secret_key=settings.secret_key,
        session_token=settings.session_token or None,
        secure=bool(settings.secure),
        region=settings.region,
        http_client=http,
    )


def check_bucket(bucket: str) -> str:
    """``bucket`` if it is a valid S3 bucket name, else ``InvalidInputError``."""
    from minio.helpers import check_bucket_name

    try:
        check_bucket_name(bucket, strict=True)
    except (TypeError, ValueError):
        raise InvalidInputError(
            f"invalid bucket name {bucket!r}: 3-63 characters, lower-case letters, digits, '-' and '.'"
        ) from None
    return bucket


def clean_metadata(metadata: Mapping[str, Any] | None) -> dict[str, str]:
    """User metadata as S3 wants it: lower-case ``[a-z0-9-]`` keys, ASCII values (others are
    percent-encoded), empty values dropped. minio adds the ``x-amz-meta-`` prefix."""
    out: dict[str, str] = {}
    for key, value in (metadata or {}).items():
        name = _META_KEY.sub("-", str(key).lower()).strip("-")
        if name.startswith("x-amz-meta-"):
            name = name[len("x-amz-meta-"):]
        if not name or value is None or str(value) == "":
            continue
        out[name] = quote(str(value), safe=" !#$&'()*+,-./:;=?@[]^_`{|}~")
    return out


# --- error classification --------------------------------------------------------------------
def _classify(exc: BaseException) -> tuple[bool, str, str] | None:
    """(retryable, error code, message) for a storage failure; None for anything else (an
    interrupt from the progress callback, a bug), which then propagates unchanged."""
    import urllib3
    from minio.error import InvalidResponseError, S3Error, ServerError

    if isinstance(exc, _SizeMismatch):
        return True, "storage_verify_failed", str(exc)
    if isinstance(exc, S3Error):
        status = getattr(getattr(exc, "response", None), "status", 0) or 0
        text = f"{exc.code}: {exc.message}" if exc.message else str(exc.code)
        if exc.code in _RETRY_S3_CODES or status >= 500 or status == 429:
            return True, "storage_unavailable", f"server error {status} {text}"
        return False, "storage_rejected", f"the server refused ({status} {text})"
    if isinstance(exc, ServerError):
        status = getattr(exc, "status_code", 0) or 0
        if status >= 500 or status in (408, 429):
            return True, "storage_unavailable", f"server error {status}"
        return False, "storage_rejected", f"the server refused (HTTP {status})"
    if isinstance(exc, InvalidResponseError):
        return True, "storage_unavailable", "the server sent a response that is not S3 XML (a proxy or gateway error?)"
    if isinstance(exc, urllib3.exceptions.HTTPError):
        reason = getattr(exc, "reason", None) or exc
        return True, "storage_unavailable", f"cannot reach the server: {type(reason).__name__}"
    if isinstance(exc, (ConnectionError, TimeoutError)):
        return True, "storage_unavailable", f"cannot reach the server: {type(exc).__name__}"
    return None


def _local_size(path: Path) -> int:
    try:
        st = path.stat()
    except OSError:
        raise StorageError(f"the local file {path.name} to upload is gone", code="storage_local_missing",
                           details={"file": path.name}) from None
    if not path.is_file():
        raise StorageError(f"{path.name} is not a regular file", code="storage_local_missing", details={"file": path.name})
    return st.st_size


def _part_size(settings: S3Settings, size: int) -> int:
    """The settings' part size, raised (in whole MiB) where the file would need more than 10,000 parts."""
    mib = 1024 * 1024
    needed = math.ceil(size / MAX_PARTS / mib) * mib if size else 0
    return max(settings.part_size, needed)


# --- operations -----------------------------------------------------------------------------
def upload_file(
    settings: S3Settings,
    local_path: str | os.PathLike,
    bucket: str,
    key: str,
    content_type: str | None = None,
    metadata: Mapping[str, Any] | None = None,
    *,
    create_bucket: bool = False,
    presign_expiry_s: int = 3600,
    retries: int | None = None,
    backoff_s: float | None = None,
    on_progress: ProgressFn | None = None,
    sleep: SleepFn = time.sleep,
) -> StoredObject:
    """Upload ``local_path`` to ``bucket``/``key`` and confirm it with a HEAD of matching size.

    Args:
        settings: connection settings (credentials never leave them).
        bucket: bucket name; empty means ``settings.bucket``.
        key: object key (checked with :func:`~.keys.validate_key`).
        content_type: MIME type; None guesses it from the file name.
        metadata: user metadata (``x-amz-meta-*``), see :func:`clean_metadata`.
        create_bucket: create the bucket when it does not exist.
        presign_expiry_s: lifetime of the returned presigned GET URL; 0 = no URL.
        retries: attempts in all (default ``settings.retries``).
        backoff_s: first wait between attempts, doubled after each (default ``settings.backoff_s``,
            at most 30 s per wait).
        on_progress: ``fn(bytes_done, bytes_total)``, called from this thread; it may raise
            (e.g. ComfyUI's interrupt), which stops the upload and propagates unchanged.

    Returns:
        The :class:`StoredObject` (``uri`` ``s3://bucket/key``, presigned URL, size, etag).

    Raises:
        StorageError: ``storage_not_configured``, ``storage_rejected`` (at once, no retry),
            ``storage_unavailable`` / ``storage_verify_failed`` (after the last attempt),
            ``storage_local_missing``. The local file is never touched.
        InvalidInputError: bad bucket name, key or expiry.
    """
    settings.require()
    bucket = check_bucket(bucket or settings.bucket)
    key = validate_key(key)
    if not 0 <= int(presign_expiry_s) <= MAX_PRESIGN_S:
        raise InvalidInputError(f"presign expiry must be 0..{MAX_PRESIGN_S} seconds, got {presign_expiry_s}")
    path = Path(local_path)
    content_type = content_type or content_type_for(path)
    meta = clean_metadata(metadata)
    attempts = int(retries or settings.retries)
    delay = settings.backoff_s if backoff_s is None else float(backoff_s)
    target = f"s3://{bucket}/{key}"
    code, message = "storage_unavailable", ""
    for attempt in range(1, attempts + 1):
        size = _local_size(path)
        if on_progress is not None:
            on_progress(0, size)  # also the interrupt check between attempts
        try:
            stored = _upload_once(settings, path, size, bucket, key, content_type, meta,
                                  create_bucket=create_bucket, presign_expiry_s=int(presign_expiry_s),
                                  on_progress=on_progress)
        except Exception as exc:  # noqa: BLE001 (classified below; others re-raised)
            verdict = _classify(exc)
            if verdict is None:
                raise
            retryable, code, message = verdict
            message = settings.scrub(message)
            if not retryable:
                log.warning("myspinbot: upload of %s to %s refused: %s", path.name, target, message)
                raise StorageError(f"could not upload {path.name} to {target}: {message}", code=code,
                                   details={"bucket": bucket, "key": key, "attempts": attempt}) from None
            log.warning("myspinbot: upload of %s to %s failed (attempt %d/%d): %s",
                        path.name, target, attempt, attempts, message)
            if attempt < attempts:
                sleep(min(delay * (2 ** (attempt - 1)), MAX_BACKOFF_S))
            continue
        log.info("myspinbot: stored %s as %s (%d bytes, attempt %d)", path.name, target, stored.size, attempt)
        return stored
    raise StorageError(
        f"could not upload {path.name} to {target} after {attempts} attempts: {message}; the local file is kept",
        code=code,
        details={"bucket": bucket, "key": key, "attempts": attempts},
    )


def _upload_once(settings: S3Settings, path: Path, size: int, bucket: str, key: str, content_type: str,
                 meta: dict[str, str], *, create_bucket: bool, presign_expiry_s: int,
                 on_progress: ProgressFn | None) -> StoredObject:
    client = make_client(settings)
    if create_bucket and not client.bucket_exists(bucket):
        _make_bucket(client, bucket)
    client.fput_object(
        bucket, key, str(path),
        content_type=content_type,
        metadata=meta or None,
        part_size=_part_size(settings, size),
        num_parallel_uploads=settings.parallel_uploads,
        progress=_Progress(on_progress, size) if on_progress is not None else None,
    )
    stat = client.stat_object(bucket, key)  # HEAD: the upload counts only if the size matches
    if stat.size != size:
        raise _SizeMismatch(stat.size, size)
    url, expires_at = None, None
    if presign_expiry_s > 0:
        expires_at = time.time() + presign_expiry_s
        url = client.presigned_get_object(bucket, key, expires=_dt.timedelta(seconds=presign_expiry_s))
    return StoredObject(bucket=bucket, key=key, size=int(stat.size), etag=(stat.etag or "").strip('"'),
                        content_type=stat.content_type or content_type, presigned_url=url,
                        presign_expires_at=expires_at, version_id=stat.version_id)


def _make_bucket(client, bucket: str) -> None:
    from minio.error import S3Error

    try:
        client.make_bucket(bucket)
        log.info("myspinbot: created bucket %s", bucket)
    except S3Error as exc:
        if exc.code != "BucketAlreadyOwnedByYou":  # created meanwhile by another upload: fine
            raise
