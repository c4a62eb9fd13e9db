"""Object keys from a template, content types from file names.

A key template holds literal text and these fields: ``{job_id}``, ``{name}``, ``{ext}``,
``{date}`` (``YYYY-MM-DD``), ``{yyyy}``, ``{mm}``, ``{dd}``, ``{time}`` (``HHMMSS``),
``{uuid}`` (32 hex digits) and ``{pipeline}``, all UTC. Field values are reduced to safe
characters, so only the template's own ``/`` separate folders. A key that would be absolute,
hold a ``.``/``..`` segment, an empty segment, a backslash or a control character is refused.
"""

from __future__ import annotations

import datetime as _dt
import mimetypes
import re
import string
import uuid as _uuid
from pathlib import PurePath

from ..errors import InvalidInputError

DEFAULT_KEY_TEMPLATE = "myspinbot/{date}/{uuid}/{name}.{ext}"
KEY_FIELDS = ("job_id", "name", "ext", "date", "yyyy", "mm", "dd", "time", "uuid", "pipeline")
MAX_KEY_BYTES = 1024  # S3's limit
NO_JOB = "local"  # {job_id} outside a job (a workflow run from the ComfyUI page)

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")

_CONTENT_TYPES = {
    ".mp4": "video/mp4",
    ".m4v": "video/mp4",
    ".mov": "video/quicktime",
    ".webm": "video/webm",
    ".mkv": "video/x-matroska",
    ".wav": "audio/wav",
    ".flac": "audio/flac",
    ".mp3": "audio/mpeg",
    ".m4a": "audio/mp4",
    ".ogg": "audio/ogg",
    ".opus": "audio/ogg",
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".webp": "image/webp",
    ".gif": "image/gif",
    ".json": "application/json",
    ".txt": "text/plain; charset=utf-8",
    ".srt": "application/x-subrip",
    ".vtt": "text/vtt",
}


def safe_component(value: str, fallback: str = "output") -> str:
    """``value`` reduced to ``[A-Za-z0-9._-]`` (other runs become ``_``), without leading or trailing dots."""
    text = _UNSAFE.sub("_", str(value)).strip("_.").strip("_")
    return text[:200] or fallback


def render_key(
    template: str,
    *,
    name: str,
    ext: str,
    job_id: str | None = None,
    pipeline: str | None = None,
    now: _dt.datetime | None = None,
    uuid: str | None = None,
) -> str:
    """Render ``template`` into an object key. Raises ``InvalidInputError`` on an unknown
    field, a format spec, attribute access, or a key that is absolute or escapes with ``..``."""
    if not isinstance(template, str) or not template.strip():
        raise InvalidInputError("the key template is empty")
    now = (now or _dt.datetime.now(_dt.timezone.utc)).astimezone(_dt.timezone.utc)
    values = {
        "job_id": safe_component(job_id or NO_JOB, NO_JOB),
        "name": safe_component(name),
        "ext": safe_component(ext.lstrip("."), "bin"),
        "date": now.strftime("%Y-%m-%d"),
        "yyyy": now.strftime("%Y"),
        "mm": now.strftime("%m"),
        "dd": now.strftime("%d"),
        "time": now.strftime("%H%M%S"),
        "uuid": safe_component(uuid or _uuid.uuid4().hex),
        "pipeline": safe_component(pipeline or "none", "none"),
    }
    out = []
    try:
        parsed = list(string.Formatter().parse(template.strip()))
    except ValueError as exc:
        raise InvalidInputError(f"the key template does not parse: {exc}") from None
    for literal, field_name, spec, conversion in parsed:
        out.append(literal)
        if field_name is None:
            continue
        if field_name not in values or spec or conversion:
            raise InvalidInputError(
                f"the key template field {{{field_name}{'!' + conversion if conversion else ''}{':' + spec if spec else ''}}} "
                f"is not allowed; use {', '.join('{' + f + '}' for f in KEY_FIELDS)}"
            )
        out.append(values[field_name])
    return validate_key("".join(out))


def validate_key(key: str) -> str:
    """Return ``key`` if it is a safe relative object key, else raise ``InvalidInputError``."""
    if not key:
        raise InvalidInputError("the object key is empty")
    if key.startswith("/") or re.match(r"^[A-Za-z]:", key):
        raise InvalidInputError(f"the object key must be relative, got {key!r}")
    if "\\" in key or _CONTROL.search(key):
        raise InvalidInputError(f"the object key holds a backslash or a control character: {key!r}")
    segments = key.split("/")
    if any(seg in ("", ".", "..") for seg in segments):
        raise InvalidInputError(f"the object key has an empty, '.' or '..' segment: {key!r}")
    if len(key.encode("utf-8")) > MAX_KEY_BYTES:
        raise InvalidInputError(f"the object key is longer than {MAX_KEY_BYTES} bytes")
    return key


def content_type_for(path: str | PurePath) -> str:
    """MIME type from the file name (``application/octet-stream`` when unknown)."""
    suffix = PurePath(path).suffix.lower()
    return _CONTENT_TYPES.get(suffix) or mimetypes.guess_type(PurePath(path).name)[0] or "application/octet-stream"


def extension_of(path: str | PurePath, default: str = "bin") -> str:
    """The file's extension without the dot (lower case), or ``default``."""
    suffix = PurePath(path).suffix.lower().lstrip(".")
    return suffix or default
