"""Downloading, listing and deleting stored objects (the other direction of ``s3.upload_file``).

Used by a job queue shared by several servers (``server/jobs/shared_files.py``): a server fetches
the inputs and outputs another server stored. The calls block (network I/O): from asyncio code
run them in a worker thread.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path

from ..errors import StorageError
from .config import S3Settings
from .keys import validate_key
from .s3 import check_bucket
from .s3_objects import _one_shot


def download_file(settings: S3Settings, bucket: str, key: str, dest: str | os.PathLike) -> int:
    """Download ``bucket``/``key`` to ``dest`` (written to a temporary name beside it, then
    renamed: a reader never sees half a file); returns its size in bytes.

    Raises ``StorageError``: ``storage_object_missing`` when there is no such object, else the
    codes of ``s3_objects`` (unreachable, refused, ...)."""
    from minio.error import S3Error

    bucket, key = check_bucket(bucket or settings.bucket), validate_key(key)
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(f".{dest.name}.{uuid.uuid4().hex}.part")

    def fetch(client) -> bool:
        try:
            client.fget_object(bucket, key, str(part))
        except S3Error as exc:
            if exc.code in ("NoSuchKey", "NoSuchBucket", "NoSuchObject"):
                return False
            raise
        return True

    try:
        found = _one_shot(settings, f"could not download s3://{bucket}/{key}", fetch)
        if not found:
            raise StorageError(f"s3://{bucket}/{key} does not exist", code="storage_object_missing",
                               details={"key": key})
        os.replace(part, dest)
    finally:
        part.unlink(missing_ok=True)
    return dest.stat().st_size


def list_keys(settings: S3Settings, bucket: str, prefix: str) -> list[str]:
    """Every key under ``prefix`` (recursive), sorted; empty when the bucket does not exist."""
    from minio.error import S3Error

    bucket = check_bucket(bucket or settings.bucket)

    def listing(client) -> list[str]:
        try:
            return sorted(o.object_name for o in client.list_objects(bucket, prefix=prefix, recursive=True))
        except S3Error as exc:
            if exc.code == "NoSuchBucket":
                return []
            raise

    return _one_shot(settings, f"could not list s3://{bucket}/{prefix}", listing)


def delete_keys(settings: S3Settings, bucket: str, keys: list[str]) -> int:
    """Delete ``keys`` (absent ones are fine); returns how many were asked for."""
    bucket = check_bucket(bucket or settings.bucket)

    def delete(client) -> int:
        for key in keys:
            client.remove_object(bucket, validate_key(key))
        return len(keys)

    return _one_shot(settings, f"could not delete from s3://{bucket}", delete) if keys else 0
