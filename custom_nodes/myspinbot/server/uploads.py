"""Multipart uploads: streamed to a per-job staging folder, then checked by content.

Nothing here trusts a filename: images are opened with Pillow, audio is probed with PyAV,
and files are stored under fixed names chosen by the server.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError

from ..errors import InvalidInputError
from .api_errors import ApiError

MAX_TEXT_FIELD_BYTES = 1 << 20
DEFAULT_MAX_FILE_BYTES = 512 << 20
AUDIO_EXTENSIONS = {".wav", ".mp3", ".flac", ".m4a", ".aac", ".ogg", ".oga", ".opus", ".webm", ".mp4"}


@dataclass
class Form:
    fields: dict[str, str] = field(default_factory=dict)
    files: dict[str, tuple[Path, str]] = field(default_factory=dict)  # field -> (staged path, client filename)
    sha256: dict[str, str] = field(default_factory=dict)  # file field -> hex digest of its bytes
    sizes: dict[str, int] = field(default_factory=dict)  # file field -> bytes


async def read_multipart(request: web.Request, staging: Path, max_file_bytes: int = DEFAULT_MAX_FILE_BYTES) -> Form:
    """Stream a multipart/form-data body: text parts into ``fields``, file parts into ``staging``.

    Raises ``ApiError`` 415 when the body is not multipart, 413 when a part is too large."""
    if not request.content_type.startswith("multipart/"):
        raise ApiError(415, "unsupported_media_type", "send multipart/form-data",
                       {"content_type": request.content_type})
    form = Form()
    try:
        reader = await request.multipart()
        while (part := await reader.next()) is not None:
            name = part.name or ""
            if part.filename is None:
                data = await part.read(decode=True)
                if len(data) > MAX_TEXT_FIELD_BYTES:
                    raise ApiError(413, "field_too_large", f"field '{name}' is larger than {MAX_TEXT_FIELD_BYTES} bytes", {"field": name})
                form.fields[name] = data.decode("utf-8", errors="replace")
                continue
            if not _safe_field_name(name):
                raise ApiError(422, "unknown_parameter", f"unexpected file field '{name}'", {"field": name})
            staging.mkdir(parents=True, exist_ok=True)
            if name in form.files:
                raise ApiError(422, "duplicate_field", f"file field '{name}' given twice", {"field": name})
            dest = staging / f"upload_{name}"
            size = 0
            digest = hashlib.sha256()
            with open(dest, "wb") as out:
                while chunk := await part.read_chunk(1 << 16):
                    size += len(chunk)
                    if size > max_file_bytes:
                        raise ApiError(413, "file_too_large", f"file '{name}' is larger than {max_file_bytes} bytes",
                                       {"field": name, "max_bytes": max_file_bytes})
                    digest.update(chunk)
                    out.write(chunk)
            form.files[name] = (dest, os.path.basename(part.filename))
            form.sha256[name] = digest.hexdigest()
            form.sizes[name] = size
    except ApiError:
        raise
    except (ValueError, AssertionError, HttpProcessingError) as exc:  # aiohttp's parser on a malformed body
        # (HttpProcessingError: e.g. InvalidHeader for a part header with control characters)
        raise ApiError(400, "malformed_body", f"could not read the multipart body: {exc}") from None
    return form


def _safe_field_name(name: str) -> bool:
    return bool(name) and name.replace("_", "").isalnum() and len(name) <= 64


def accept_image(path: Path) -> Path:
    """Check that ``path`` is a decodable image and rename it to ``portrait.<format>``.

    Raises ``ApiError`` 400 ``invalid_image``."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as img:
            img.verify()
        with Image.open(path) as img:
            fmt = (img.format or "png").lower()
            img.load()
            width, height = img.size
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        raise ApiError(400, "invalid_image", f"the portrait is not a readable image: {exc}", {"field": "portrait"}) from None
    if width < 16 or height < 16:
        raise ApiError(400, "invalid_image", f"the portrait is too small ({width}x{height})", {"field": "portrait"})
    target = path.with_name(f"portrait.{'jpg' if fmt == 'jpeg' else fmt}")
    path.rename(target)
    return target


def accept_audio(path: Path, client_name: str) -> Path:
    """Check that ``path`` holds decodable audio and rename it to ``speech<ext>``.

    Raises ``ApiError`` 400 ``invalid_audio``."""
    from ..speech.audio_io import probe_audio

    try:
        info = probe_audio(path)
    except InvalidInputError as exc:
        raise ApiError(400, "invalid_audio", f"the audio is not a readable speech recording: {exc.message}", {"field": "audio"}) from None
    if not info.get("duration_s"):
        raise ApiError(400, "invalid_audio", "the audio holds no samples", {"field": "audio"})
    ext = Path(client_name).suffix.lower()
    target = path.with_name("speech" + (ext if ext in AUDIO_EXTENSIONS else ".audio"))
    path.rename(target)
    return target


# --- assets: kind and type from the content ------------------------------------------------

_IMAGE_FORMATS = {"PNG": (".png", "image/png"), "JPEG": (".jpg", "image/jpeg"), "WEBP": (".webp", "image/webp"),
                  "GIF": (".gif", "image/gif"), "BMP": (".bmp", "image/bmp"), "TIFF": (".tiff", "image/tiff")}
# PyAV container names (``probe_audio``'s ``container``) → (extension, content type); first match wins.
_AUDIO_CONTAINERS = (("wav", ".wav", "audio/wav"), ("mp3", ".mp3", "audio/mpeg"), ("flac", ".flac", "audio/flac"),
                     ("ogg", ".ogg", "audio/ogg"), ("m4a", ".m4a", "audio/mp4"), ("webm", ".webm", "audio/webm"),
                     ("aac", ".aac", "audio/aac"), ("aiff", ".aiff", "audio/aiff"))
MIN_IMAGE_SIDE = 16


@dataclass(frozen=True)
class Sniffed:
    kind: str  # "image" | "audio"
    ext: str
    content_type: str


def sniff_asset(path: Path) -> Sniffed:
    """What a file is, decided by decoding it (Pillow for images, PyAV for audio), never by its name.

    Blocking (decodes the file): run it off the event loop. Raises ``ApiError`` 400
    ``invalid_asset`` for anything that is neither a readable image nor audio."""
    from PIL import Image, UnidentifiedImageError

    from ..speech.audio_io import probe_audio

    image_error = None
    try:
        with Image.open(path) as img:
            img.verify()
        with Image.open(path) as img:
            fmt = img.format or ""
            img.load()
            width, height = img.size
    except Image.DecompressionBombError as exc:
        raise ApiError(400, "invalid_asset", f"the image is too large to decode: {exc}", {"field": "file"}) from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        image_error = exc
    if image_error is None:
        if fmt not in _IMAGE_FORMATS:
            raise ApiError(400, "invalid_asset", f"unsupported image format {fmt or 'unknown'}",
                           {"field": "file", "formats": sorted(_IMAGE_FORMATS)})
        if width < MIN_IMAGE_SIDE or height < MIN_IMAGE_SIDE:
            raise ApiError(400, "invalid_asset", f"the image is too small ({width}x{height})", {"field": "file"})
        ext, content_type = _IMAGE_FORMATS[fmt]
        return Sniffed("image", ext, content_type)
    try:
        info = probe_audio(path)
    except InvalidInputError:
        info = None
    if info and info.get("duration_s"):
        container = str(info.get("container") or "")
        for token, ext, content_type in _AUDIO_CONTAINERS:
            if token in container.split(","):
                return Sniffed("audio", ext, content_type)
        return Sniffed("audio", ".audio", "application/octet-stream")
    raise ApiError(400, "invalid_asset", "the file is neither a readable image nor readable audio", {"field": "file"})
