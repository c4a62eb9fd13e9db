"""A picture of a lip-sync score: confidence and distance per second, drawn with PIL.

Two panels over the clip's seconds: the per-second confidence (``median(m) - d[i, j*]``
averaged per second, the framewise quantity behind LSE-C; higher is better) as bars, and the
per-second distance at the best offset (behind LSE-D; lower is better) as a line. The title
gives the offset and the overall scores. No plotting library; imports no ComfyUI module.
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from ..errors import InvalidInputError

WIDTH, HEIGHT = 720, 400
BACKGROUND, INK, GRID = (255, 255, 255), (30, 30, 30), (225, 225, 225)
CONF_COLOUR, LOW_COLOUR, DIST_COLOUR = (46, 139, 87), (200, 70, 60), (50, 90, 180)
_MARGIN_L, _MARGIN_R, _TITLE, _GAP, _AXIS = 56, 16, 34, 28, 22


def _range(values: np.ndarray, include_zero: bool) -> tuple[float, float]:
    low, high = float(np.min(values)), float(np.max(values))
    if include_zero:
        low, high = min(low, 0.0), max(high, 0.0)
    if high - low < 1e-6:
        low, high = low - 1.0, high + 1.0
    pad = 0.08 * (high - low)
    return low - pad, high + pad


def _panel(draw: ImageDraw.ImageDraw, font, box: tuple[int, int, int, int], values: np.ndarray, label: str,
           bars: bool) -> None:
    x0, y0, x1, y1 = box
    low, high = _range(values, include_zero=bars)

    def y_of(v: float) -> float:
        return y1 - (v - low) / (high - low) * (y1 - y0)

    for t in np.linspace(low, high, 5):
        y = y_of(t)
        draw.line([(x0, y), (x1, y)], fill=GRID)
        draw.text((4, y - 6), f"{t:6.2f}", fill=INK, font=font)
    draw.rectangle([x0, y0, x1, y1], outline=INK)
    draw.text((x0 + 6, y0 + 4), label, fill=INK, font=font)
    n = len(values)
    step = (x1 - x0) / n
    if bars:
        zero = y_of(0.0)
        for i, v in enumerate(values):
            left, right = x0 + i * step + 0.15 * step, x0 + (i + 1) * step - 0.15 * step
            draw.rectangle([left, min(zero, y_of(v)), right, max(zero, y_of(v))],
                           fill=CONF_COLOUR if v >= 0 else LOW_COLOUR)
        draw.line([(x0, zero), (x1, zero)], fill=INK)
    else:
        points = [(x0 + (i + 0.5) * step, y_of(v)) for i, v in enumerate(values)]
        if len(points) > 1:
            draw.line(points, fill=DIST_COLOUR, width=2)
        for x, y in points:
            draw.ellipse([x - 3, y - 3, x + 3, y + 3], fill=DIST_COLOUR)


def plot_score(conf_per_second: np.ndarray, dist_per_second: np.ndarray, offset: int, lse_d: float,
               lse_c: float, width: int = WIDTH, height: int = HEIGHT) -> np.ndarray:
    """Draw the per-second curves of a score.

    Args:
        conf_per_second, dist_per_second: float ``[seconds]`` (same length, >= 1).
        offset: frames; lse_d, lse_c: the clip's scores.
        width, height: image size, px (at least 320 x 200).

    Returns:
        uint8 ``[height, width, 3]`` RGB.

    Raises:
        InvalidInputError: empty or mismatched curves, non-finite values, or a tiny size.
    """
    conf = np.asarray(conf_per_second, dtype=np.float64)
    dist = np.asarray(dist_per_second, dtype=np.float64)
    if conf.ndim != 1 or conf.shape != dist.shape or conf.size == 0:
        raise InvalidInputError(f"curves must be two 1-D arrays of one length, got {conf.shape} and {dist.shape}")
    if not (np.isfinite(conf).all() and np.isfinite(dist).all()):
        raise InvalidInputError("the curves contain NaN or infinity")
    if width < 320 or height < 200:
        raise InvalidInputError(f"plot size must be at least 320 x 200, got {width} x {height}")
    image = Image.new("RGB", (width, height), BACKGROUND)
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default()
    draw.text((_MARGIN_L, 10), f"lip sync: offset {offset:+d} frames   LSE-D {lse_d:.3f} (lower is better)   "
              f"LSE-C {lse_c:.3f} (higher is better)", fill=INK, font=font)
    x0, x1 = _MARGIN_L, width - _MARGIN_R
    panel_h = (height - _TITLE - _GAP - _AXIS) // 2
    top = (x0, _TITLE, x1, _TITLE + panel_h)
    bottom = (x0, _TITLE + panel_h + _GAP, x1, _TITLE + 2 * panel_h + _GAP)
    _panel(draw, font, top, conf, "confidence per second", bars=True)
    _panel(draw, font, bottom, dist, "distance at the best offset per second", bars=False)
    step = (x1 - x0) / conf.size
    every = max(1, int(np.ceil(conf.size / 12)))
    for i in range(0, conf.size, every):
        draw.text((x0 + i * step + 2, bottom[3] + 4), f"{i}s", fill=INK, font=font)
    return np.asarray(image, dtype=np.uint8).copy()
