"""The lip-sync engine's own error: a weights file that is not a usable Wav2Lip checkpoint."""

from __future__ import annotations

from ..errors import MySpinBotError


class InvalidModelError(MySpinBotError):
    """A model file cannot be used: unreadable, not a checkpoint, or its tensors do not fit the
    architecture (keys missing, unexpected or of another shape).

    ``details`` holds ``path`` and, for a layout mismatch, ``missing``, ``unexpected`` and
    ``reshaped`` (lists of key names; ``reshaped`` entries as ``"key: file [..] vs model [..]"``).
    """

    code = "invalid_model"
