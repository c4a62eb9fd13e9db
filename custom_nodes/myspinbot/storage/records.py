"""JSON-able records of storage results: what was stored, and what still waits for upload.

Neither holds a credential; both round-trip through ``to_dict``/``from_dict`` (the job
service keeps them in its store and sends them in job JSON).
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field, fields
from typing import Any

STORED = "stored"
PENDING = "pending"


@dataclass(frozen=True)
class StoredObject:
    """An object confirmed by a HEAD whose size matched the local file."""

    bucket: str
    key: str
    size: int
    etag: str
    content_type: str
    presigned_url: str | None = None
    presign_expires_at: float | None = None  # Unix seconds
    version_id: str | None = None

    @property
    def uri(self) -> str:
        return f"s3://{self.bucket}/{self.key}"

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["uri"] = self.uri
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "StoredObject":
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})


@dataclass
class PendingUpload:
    """An upload that has not happened yet; :func:`..s3_objects.retry_upload` takes it.

    The key is rendered once, when the output is made, so every retry writes the same object.
    ``attempts`` and ``last_error`` (``[code] message``, scrubbed) are updated by each retry."""

    local_path: str
    bucket: str
    key: str
    content_type: str
    size: int
    name: str = ""
    metadata: dict[str, str] = field(default_factory=dict)
    create_bucket: bool = False
    presign_expiry_s: int = 3600
    job_id: str | None = None
    attempts: int = 0
    last_error: str = ""
    created_at: float = field(default_factory=time.time)
    updated_at: float | None = None

    @property
    def uri(self) -> str:
        return f"s3://{self.bucket}/{self.key}"

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["metadata"] = dict(self.metadata)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "PendingUpload":
        names = {f.name for f in fields(cls)}
        values = {k: v for k, v in data.items() if k in names}
        values["metadata"] = {str(k): str(v) for k, v in (values.get("metadata") or {}).items()}
        return cls(**values)
