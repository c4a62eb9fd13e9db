"""Frame-size arithmetic for H.264 / yuv420p output (both sides must be even)."""

from __future__ import annotations

from ..errors import InvalidInputError


def even_size(width: int, height: int, max_side: int | None = None) -> tuple[int, int]:
    """Return an even ``(width, height)`` no larger than the input, fitting ``max_side``.

    Args:
        width, height: source size in pixels (each >= 2).
        max_side: if given (>= 2), the longer side of the result is at most this many
            pixels; the aspect ratio is kept as closely as even rounding allows.

    Returns:
        ``(w, h)`` with ``2 <= w <= width``, ``2 <= h <= height``, both even. Rounding is
        always downwards, so a caller can crop (not pad) a source image to this size.

    Raises:
        InvalidInputError: a side (or ``max_side``) is below 2.
    """
    width, height = int(width), int(height)
    if width < 2 or height < 2:
        raise InvalidInputError(f"frame size {width}x{height} is too small: both sides must be at least 2 px")
    scale = 1.0
    if max_side is not None:
        max_side = int(max_side)
        if max_side < 2:
            raise InvalidInputError(f"max_side must be at least 2, got {max_side}")
        longest = max(width, height)
        if longest > max_side:
            scale = max_side / longest
    w = int(width * scale + 1e-6)
    h = int(height * scale + 1e-6)
    w = max(2, w - (w % 2))
    h = max(2, h - (h % 2))
    return w, h


def check_even_size(width: int, height: int) -> None:
    """Raise ``InvalidInputError`` unless ``width`` and ``height`` are even and >= 2.

    Args:
        width, height: frame size in pixels.
    """
    if int(width) != width or int(height) != height:
        raise InvalidInputError(f"frame size must be whole pixels, got {width}x{height}")
    if width < 2 or height < 2 or width % 2 or height % 2:
        raise InvalidInputError(
            f"frame size {width}x{height} is not usable for yuv420p H.264: width and height must be "
            f"even and at least 2 (use even_size() to compute one, e.g. {even_size(max(width, 2), max(height, 2))})"
        )
