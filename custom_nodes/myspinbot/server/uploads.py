"""Multipart uploads: streamed to a per-job staging folder, then checked by content.

Nothing here trusts a filename: images are opened with Pillow, audio is decoded with PyAV,
and files are stored under fixed names chosen by the server. Every size limit
(``settings.Settings``, ``input_limits``) is checked before the step it guards.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Collection

from aiohttp import hdrs, web
from aiohttp.http_exceptions import HttpProcessingError

from ..errors import InvalidInputError
from .api_errors import ApiError
from .input_limits import audio_limit, check_audio_length, check_image_header, image_bomb_error
from .settings import Settings, limit_details

MIN_IMAGE_SIDE = 16
AUDIO_EXTENSIONS = {".wav", ".mp3", ".flac", ".m4a", ".aac", ".ogg", ".oga", ".opus", ".webm", ".mp4"}


@dataclass
class Form:
    fields: dict[str, str] = field(default_factory=dict)
    files: dict[str, tuple[Path, str]] = field(default_factory=dict)  # field -> (staged path, client filename)
    sha256: dict[str, str] = field(default_factory=dict)  # file field -> hex digest of its bytes
    sizes: dict[str, int] = field(default_factory=dict)  # file field -> bytes


@dataclass(frozen=True)
class FormLimits:
    """What one multipart request may hold (``settings.Settings``; ``max_file_bytes`` is
    ``JobService.max_upload_bytes``)."""

    max_file_bytes: int
    max_request_bytes: int
    max_parts: int
    max_text_bytes: int

    @classmethod
    def from_settings(cls, settings: Settings, max_file_bytes: int | None = None) -> "FormLimits":
        return cls(max_file_bytes if max_file_bytes is not None else settings.max_upload_bytes,
                   settings.max_request_bytes, settings.max_form_parts, settings.max_text_bytes)


#: The file parts a form may hold, given its text fields read so far (e.g. its 'pipeline').
FileFields = Callable[[dict[str, str]], Collection[str]]


async def read_multipart(request: web.Request, staging: Path, limits: FormLimits, file_fields: FileFields) -> Form:
    """Stream a multipart/form-data body: text parts into ``fields``, file parts into ``staging``.

    Reading stops at the first limit crossed, before the rest of the body is read. Raises
    ``ApiError``: 415 when the body is not multipart or a part is compressed; 413
    ``too_many_parts``, ``text_too_large`` (text parts together), ``file_too_large`` (one file),
    ``request_too_large`` (files together), each naming its ``MYSPINBOT_*`` limit; 422
    ``unknown_parameter`` for a part name that is not a plain identifier or a file part that
    ``file_fields`` does not allow (refused at its header: its body is never read); 400
    ``malformed_body``, or ``client_disconnected`` when the client goes away mid-body."""
    if not request.content_type.startswith("multipart/"):
        raise ApiError(415, "unsupported_media_type", "send multipart/form-data",
                       {"content_type": request.content_type})
    form = Form()
    parts = text_bytes = staged_bytes = 0
    try:
        reader = await request.multipart()
        while (part := await reader.next()) is not None:
            parts += 1
            if parts > limits.max_parts:
                raise ApiError(413, "too_many_parts", f"the form has more than {limits.max_parts} parts",
                               limit_details("max_form_parts", limits.max_parts))
            name = part.name or ""
            if not _safe_field_name(name):
                raise ApiError(422, "unknown_parameter", f"unexpected part name {ascii(name)}", {"field": ascii(name)})
            _refuse_encoded(part, name)
            if part.filename is None:
                data = await _read_text(part, name, limits.max_text_bytes - text_bytes, limits.max_text_bytes)
                text_bytes += len(data)
                form.fields[name] = data.decode("utf-8", errors="replace")
                continue
            if name not in file_fields(form.fields):
                raise ApiError(422, "unknown_parameter", f"unexpected file field '{name}'", {"field": name})
            if name in form.files:
                raise ApiError(422, "duplicate_field", f"file field '{name}' given twice", {"field": name})
            staging.mkdir(parents=True, exist_ok=True)
            dest = staging / f"upload_{name}"
            size = 0
            digest = hashlib.sha256()
            with open(dest, "wb") as out:
                while chunk := await part.read_chunk(1 << 16):
                    size += len(chunk)
                    staged_bytes += len(chunk)
                    if size > limits.max_file_bytes:
                        raise ApiError(413, "file_too_large", f"file '{name}' is larger than {limits.max_file_bytes} bytes",
                                       limit_details("max_upload_bytes", limits.max_file_bytes, field=name))
                    if staged_bytes > limits.max_request_bytes:
                        raise ApiError(413, "request_too_large",
                                       f"the files of this request are larger than {limits.max_request_bytes} bytes together",
                                       limit_details("max_request_bytes", limits.max_request_bytes, field=name))
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
    except OSError as exc:
        raise_if_client_gone(request, exc)
        raise
    return form


async def _read_text(part: Any, name: str, budget: int, limit: int) -> bytes:
    """A text part's bytes, read in chunks: 413 ``text_too_large`` as soon as they exceed ``budget``
    (what is left of ``limit``, the text bytes the whole form may hold)."""
    data = bytearray()
    while chunk := await part.read_chunk(1 << 16):
        data += chunk
        if len(data) > budget:
            raise ApiError(413, "text_too_large", f"the text fields of this form are larger than {limit} bytes together",
                           limit_details("max_text_bytes", limit, field=name))
    return bytes(part.decode(data))  # base64 / quoted-printable only shrink (_refuse_encoded)


_TRANSFER_ENCODINGS = {"", "binary", "8bit", "7bit", "base64", "quoted-printable"}


def _refuse_encoded(part: Any, name: str) -> None:
    """415 for a compressed part (Content-Encoding: it could inflate past every limit) or an
    unknown Content-Transfer-Encoding."""
    encoding = part.headers.get(hdrs.CONTENT_ENCODING, "identity").strip().lower()
    transfer = part.headers.get(hdrs.CONTENT_TRANSFER_ENCODING, "").strip().lower()
    if encoding not in ("", "identity") or transfer not in _TRANSFER_ENCODINGS:
        raise ApiError(415, "unsupported_media_type", f"part '{name}': compressed or encoded parts are not accepted",
                       {"field": name})


def raise_if_client_gone(request: web.Request, exc: BaseException) -> None:
    """400 ``client_disconnected`` when ``exc`` is the client going away mid-body (a client error,
    not a server one); returns for any other error."""
    transport = request.transport
    if isinstance(exc, ConnectionError) or transport is None or transport.is_closing():
        raise ApiError(400, "client_disconnected", "the client closed the connection before the body was read") from None


def _safe_field_name(name: str) -> bool:
    return bool(name) and name.isascii() and name.replace("_", "").isalnum() and len(name) <= 64


def decode_image(path: Path, settings: Settings, field: str) -> tuple[str, int, int]:
    """Check the header against the image limits, then decode the image in full; returns
    ``(Pillow format, width, height)``. Blocking: run it off the event loop.

    Raises ``ApiError`` 413 ``image_too_large`` (from the header, before any pixel is decoded),
    or whatever Pillow raises for an unreadable file (the caller words that error)."""
    from PIL import Image

    try:
        with Image.open(path) as img:  # reads the header only
            check_image_header(img, settings, field)
            img.verify()
        with Image.open(path) as img:
            img.load()
            return img.format or "", *img.size
    except Image.DecompressionBombError:  # Pillow's own, far larger, limit
        raise image_bomb_error(settings, field) from None


def accept_image(path: Path, settings: Settings, field: str = "portrait") -> Path:
    """Check that ``path`` is a decodable image within the limits and rename it to ``<field>.<format>``.

    Blocking: run it off the event loop. Raises ``ApiError`` 413 ``image_too_large``, 400 ``invalid_image``."""
    try:
        fmt, width, height = decode_image(path, settings, field)
    except ApiError:
        raise
    except Exception as exc:  # whatever Pillow raises on an unreadable file
        raise ApiError(400, "invalid_image", f"'{field}' is not a readable image: {exc}", {"field": field}) from None
    if width < MIN_IMAGE_SIDE or height < MIN_IMAGE_SIDE:
        raise ApiError(400, "invalid_image", f"'{field}' is too small ({width}x{height})", {"field": field})
    fmt = (fmt or "png").lower()
    target = path.with_name(f"{field}.{'jpg' if fmt == 'jpeg' else fmt}")
    path.rename(target)
    return target


def accept_audio(path: Path, client_name: str, limit: tuple[str, float], field: str = "audio") -> Path:
    """Check that ``path`` holds decodable audio no longer than ``limit`` (setting name, seconds;
    see ``input_limits.audio_limit``) and rename it to ``speech<ext>``.

    Blocking (decodes up to the limit): run it off the event loop. Raises ``ApiError`` 413
    ``audio_too_long``, 400 ``invalid_audio``."""
    try:
        seconds = check_audio_length(path, *limit, field)
    except InvalidInputError as exc:
        raise ApiError(400, "invalid_audio", f"'{field}' is not a readable speech recording: {exc.message}",
                       {"field": field}) from None
    if seconds <= 0:
        raise ApiError(400, "invalid_audio", f"'{field}' holds no samples", {"field": field})
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


@dataclass(frozen=True)
class Sniffed:
    kind: str  # "image" | "audio"
    ext: str
    content_type: str


def sniff_asset(path: Path, settings: Settings) -> Sniffed:
    """What a file is, decided by decoding it (Pillow for images, PyAV for audio), never by its name.

    Blocking (decodes the file): run it off the event loop. Raises ``ApiError`` 413
    ``image_too_large`` / ``audio_too_long`` (audio: the larger of the CPU and GPU limits, as any
    pipeline may use the asset), 400 ``invalid_asset`` for anything that is neither a readable
    image nor audio."""
    from ..speech.audio_io import probe_audio

    try:
        fmt, width, height = decode_image(path, settings, "file")
    except ApiError:
        raise
    except Exception:  # not an image (or an unreadable one): try audio
        fmt = None
    if fmt is not None:
        if fmt not in _IMAGE_FORMATS:
            raise ApiError(400, "invalid_asset", f"unsupported image format {fmt or 'unknown'}",
                           {"field": "file", "formats": sorted(_IMAGE_FORMATS)})
        if width < MIN_IMAGE_SIDE or height < MIN_IMAGE_SIDE:
            raise ApiError(400, "invalid_asset", f"the image is too small ({width}x{height})", {"field": "file"})
        ext, content_type = _IMAGE_FORMATS[fmt]
        return Sniffed("image", ext, content_type)
    try:
        container = str(probe_audio(path).get("container") or "")
        seconds = check_audio_length(path, *audio_limit(settings, None), "file")
    except InvalidInputError:
        seconds = 0.0
    if seconds > 0:
        for token, ext, content_type in _AUDIO_CONTAINERS:
            if token in container.split(","):
                return Sniffed("audio", ext, content_type)
        return Sniffed("audio", ".audio", "application/octet-stream")
    raise ApiError(400, "invalid_asset", "the file is neither a readable image nor readable audio", {"field": "file"})
