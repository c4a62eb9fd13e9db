"""Errors that carry a stable, machine-readable code.

Engines raise these; nodes let them propagate so ComfyUI records the message; the job
service reads the code back from the message (``[code] text``) and reports it in the job's
``error.code``. Codes are part of the public job API: never rename one.
"""

from __future__ import annotations

import re

_CODE_PREFIX = re.compile(r"\[([a-z][a-z0-9_]*)\] ")


class MySpinBotError(Exception):
    """Base error: ``code`` is a snake_case identifier, ``str(err)`` is ``[code] message``."""

    code = "internal_error"

    def __init__(self, message: str, *, code: str | None = None, details: dict | None = None):
        if code is not None:
            self.code = code
        self.message = message
        self.details = details or {}
        super().__init__(f"[{self.code}] {message}")


class NoFaceDetectedError(MySpinBotError):
    """The portrait holds no face the detector can find."""

    code = "no_face_detected"


class InvalidInputError(MySpinBotError):
    """An input (image, audio, text, setting) is unusable as given."""

    code = "invalid_input"


class SpeechEngineError(MySpinBotError):
    """The speech engine could not be loaded or failed to speak."""

    code = "speech_failed"


class ScriptWriterError(MySpinBotError):
    """The script writer (Ollama or verbatim) could not produce a script.

    Codes (stable): ``ollama_not_installed``, ``ollama_unreachable``, ``ollama_model_missing``,
    ``ollama_timeout``, ``ollama_error``, ``script_invalid_output``, ``script_empty``,
    ``script_truncated``. Every message ends with the fix.
    """

    code = "script_failed"


class ModelsMissingError(MySpinBotError):
    """Model weights a node or pipeline needs are not on disk.

    ``details``: ``missing`` (model names), ``files`` (expected paths), ``fetch`` (the command
    that downloads them)."""

    code = "models_missing"


class UnknownModelError(MySpinBotError):
    """A model name that the pack's manifest does not list."""

    code = "unknown_model"


class ModelChecksumError(MySpinBotError):
    """A downloaded model file does not match the manifest's size or sha256; it was deleted."""

    code = "model_checksum_mismatch"


class ModelDownloadError(MySpinBotError):
    """A model file could not be downloaded (network, HTTP error, file not on the hub)."""

    code = "model_download_failed"


class ModelConflictError(MySpinBotError):
    """A file placed by hand sits where a download would go; it is never overwritten."""

    code = "model_conflict"


class DownloadInProgressError(MySpinBotError):
    """A download of this model is already running."""

    code = "download_in_progress"


class OfflineError(MySpinBotError):
    """Offline mode (``HF_HUB_OFFLINE=1``) forbids the download; the message says where to put the files by hand."""

    code = "offline"


class StorageError(MySpinBotError):
    """Object storage (S3 / MinIO / R2) could not take an output; the local file is always kept.

    Codes (stable): ``storage_unavailable`` (unreachable or 5xx after every retry),
    ``storage_not_configured`` (no endpoint or credentials), ``storage_rejected`` (the server
    refused: access denied, no such bucket, bad request), ``storage_verify_failed`` (the HEAD
    after the upload did not show the local file's size), ``storage_local_missing`` (the local
    file to upload is gone), ``storage_local_changed`` (it is no longer the size recorded when
    the upload became pending). ``details`` never holds a credential."""

    code = "storage_unavailable"


class DatabaseUnavailableError(MySpinBotError):
    """The shared job database (PostgreSQL, ``MYSPINBOT_DATABASE_URL``) cannot be reached now; the
    API answers 503 until it is back."""

    code = "database_unavailable"


def code_from_message(message: str | None, default: str = "execution_error", *,
                      exception_type: str | None = None) -> str:
    """The code of a pack error's message: a leading ``[code] `` as ``MySpinBotError`` writes it,
    else ``default``. A ``[word]`` anywhere else (a file name such as ``portrait.png [input]``)
    is not a code. ``exception_type``: the raised class as ComfyUI reports it
    (``module.ClassName``); when given, only the pack's own error classes count."""
    if not message:
        return default
    if exception_type is not None and not is_pack_error_type(exception_type):
        return default
    match = _CODE_PREFIX.match(message)
    return match.group(1) if match else default


def is_pack_error_type(exception_type: str) -> bool:
    """True for ``...myspinbot...errors.NoFaceDetectedError`` and any other ``MySpinBotError`` subclass."""
    module, _, name = exception_type.rpartition(".")
    return "myspinbot" in module and name in _pack_error_names()


def _pack_error_names() -> set[str]:
    names, todo = set(), [MySpinBotError]
    while todo:
        cls = todo.pop()
        names.add(cls.__name__)
        todo.extend(cls.__subclasses__())
    return names
