"""Errors that carry a stable, machine-readable code.

Engines raise these; nodes let them propagate so ComfyUI records the message; the job
service reads the code back from the message (``[code] text``) and reports it in the job's
``error.code``. Codes are part of the public job API: never rename one.
"""

from __future__ import annotations

import re

_CODE_PREFIX = re.compile(r"\[([a-z][a-z0-9_]*)\]")


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


def code_from_message(message: str | None, default: str = "execution_error") -> str:
    """Return the ``[code]`` at the start of ``message`` (as written by MySpinBotError), else ``default``."""
    if not message:
        return default
    match = _CODE_PREFIX.search(message)
    return match.group(1) if match else default
