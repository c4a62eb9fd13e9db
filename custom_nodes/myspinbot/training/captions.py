"""Captions for a character LoRA's training images: a template with the trigger word, or one
caption per photo. Imports no ComfyUI module."""

from __future__ import annotations

from ..errors import InvalidInputError

DEFAULT_TEMPLATE = "a photo of {trigger}"
"""The caption of every image when none is given; ``{trigger}`` becomes the trigger word."""


def check_trigger(trigger: str) -> str:
    """The trigger word stripped; raises ``InvalidInputError`` when empty or multi-line."""
    word = (trigger or "").strip()
    if not word or "\n" in word:
        raise InvalidInputError("the trigger word must be a non-empty single line, e.g. 'zxq person'")
    return word


def captions_for(photo_count: int, sources: list[int], trigger: str, captions: str = "") -> list[str]:
    """One caption per training image.

    Args:
        photo_count: how many photos were given (before any was dropped).
        sources: for each training image, the index of its photo.
        trigger: the trigger word (see :func:`check_trigger`).
        captions: empty for :data:`DEFAULT_TEMPLATE`; one line for a template used for every
            image; or exactly ``photo_count`` non-empty lines, one per photo in input order. In
            each, ``{trigger}`` is replaced by the trigger word; a caption without the trigger
            word gets it prepended (``"<trigger>, <caption>"``).

    Raises:
        InvalidInputError: several lines but not one per photo.
    """
    word = check_trigger(trigger)
    lines = [line.strip() for line in (captions or "").splitlines() if line.strip()]
    if not lines:
        lines = [DEFAULT_TEMPLATE]
    if len(lines) not in (1, photo_count):
        raise InvalidInputError(f"captions: give one template line or one line per photo ({photo_count}), "
                                f"got {len(lines)} lines")

    def finish(text: str) -> str:
        text = text.replace("{trigger}", word)
        return text if word in text else f"{word}, {text}"

    per_photo = [finish(lines[0])] * photo_count if len(lines) == 1 else [finish(line) for line in lines]
    return [per_photo[i] for i in sources]
