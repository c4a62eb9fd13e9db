"""Object storage engine: outputs → S3-compatible storage (MinIO, AWS S3, R2) via ``minio``.

No ComfyUI import, no import-time side effects (the ``minio`` client is imported on first use).

- :mod:`.config` — :class:`S3Settings` from ``MYSPINBOT_S3_*`` / ComfyUI settings (masked repr).
- :mod:`.keys` — key templates (``{job_id}/{name}.{ext}``, date parts, ``{uuid}``), content types.
- :mod:`.s3` — :func:`upload_file` (multipart, HEAD check, retries).
- :mod:`.s3_objects` — :func:`presign`, :func:`head`, :func:`remove`, :func:`retry_upload`, :func:`delete_local_copy`.
- :mod:`.outputs` — :func:`store_output`: stored, or pending with a warning (or raise if mandatory).
- :mod:`.records` — JSON-able :class:`StoredObject` and :class:`PendingUpload`.
- :mod:`.media` — writing PNG / WAV / FLAC / copies into the output folder first.
"""

from .config import S3Settings, comfy_settings_path, load_settings, read_comfy_settings
from .keys import DEFAULT_KEY_TEMPLATE, content_type_for, render_key, validate_key
from .outputs import UI_KEY, StorageOutcome, prompt_sha256, store_output
from .records import PENDING, STORED, PendingUpload, StoredObject
from .s3 import upload_file
from .s3_objects import delete_local_copy, head, presign, remove, retry_upload

__all__ = [
    "DEFAULT_KEY_TEMPLATE",
    "PENDING",
    "STORED",
    "UI_KEY",
    "PendingUpload",
    "S3Settings",
    "StorageOutcome",
    "StoredObject",
    "comfy_settings_path",
    "content_type_for",
    "delete_local_copy",
    "head",
    "load_settings",
    "presign",
    "prompt_sha256",
    "read_comfy_settings",
    "remove",
    "render_key",
    "retry_upload",
    "store_output",
    "upload_file",
    "validate_key",
]
