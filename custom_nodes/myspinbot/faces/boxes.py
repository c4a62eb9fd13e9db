"""Box arithmetic of the MTCNN cascade (Zhang et al., IEEE SPL 2016, section II-A).

Boxes are float64 ``[N, 4]`` ``x1, y1, x2, y2`` in pixels of the full image. The conventions
(``+ 1`` widths in the calibration, the patch sampling of ``tf.image.crop_and_resize``)
follow ``mtcnn/utils/bboxes.py`` and ``mtcnn/utils/images.py`` of the ``mtcnn`` wheel 1.0.0
(MIT). Imports no ComfyUI module.
"""

from __future__ import annotations

import numpy as np


def nms(boxes: np.ndarray, scores: np.ndarray, threshold: float, method: str = "union") -> np.ndarray:
    """Greedy non-maximum suppression: int64 indices of the kept boxes, best score first.

    A box is dropped when its overlap with a kept, better box exceeds ``threshold``; overlap is
    intersection over union (``"union"``) or over the smaller area (``"min"``).
    """
    order = np.argsort(-scores, kind="stable")
    area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    keep = []
    while order.size:
        i, rest = order[0], order[1:]
        keep.append(i)
        w = np.maximum(0.0, np.minimum(boxes[i, 2], boxes[rest, 2]) - np.maximum(boxes[i, 0], boxes[rest, 0]))
        h = np.maximum(0.0, np.minimum(boxes[i, 3], boxes[rest, 3]) - np.maximum(boxes[i, 1], boxes[rest, 1]))
        inter = w * h
        base = np.minimum(area[i], area[rest]) if method == "min" else area[i] + area[rest] - inter
        overlap = np.divide(inter, base, out=np.zeros_like(inter), where=base > 0)
        order = rest[overlap <= threshold]
    return np.asarray(keep, dtype=np.int64)


def square(boxes: np.ndarray) -> np.ndarray:
    """Each box grown to a square of its longer side about the same centre."""
    out = boxes.copy()
    w, h = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    side = np.maximum(w, h)
    out[:, 0] = boxes[:, 0] + (w - side) / 2
    out[:, 1] = boxes[:, 1] + (h - side) / 2
    out[:, 2:4] = out[:, 0:2] + side[:, None]
    return out


def calibrate(boxes: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """Boxes moved by the network's regression: ``offsets`` ``[N, 4]`` are fractions of the
    box width/height (``x2 - x1 + 1``) added to ``x1, y1, x2, y2``."""
    w = boxes[:, 2] - boxes[:, 0] + 1
    h = boxes[:, 3] - boxes[:, 1] + 1
    return boxes + offsets * np.stack([w, h, w, h], axis=1)


def crop_resize(image: np.ndarray, boxes: np.ndarray, size: int) -> np.ndarray:
    """float32 ``[N, 3, size, size]`` patches of ``image`` (float32 ``[H, W, 3]``), bilinear.

    As ``tf.image.crop_and_resize`` with the box normalised by ``H``/``W`` (the wheel's call):
    sample ``k`` of a side lies at ``(x1 + k (x2 - x1) / (size - 1)) (W - 1) / W``; samples
    outside the image are 0 (mid grey after the network's normalisation).
    """
    height, width = image.shape[:2]
    steps = np.arange(size) / (size - 1)
    ys = (boxes[:, 1:2] + steps * (boxes[:, 3:4] - boxes[:, 1:2])) * (height - 1) / height  # [N, size]
    xs = (boxes[:, 0:1] + steps * (boxes[:, 2:3] - boxes[:, 0:1])) * (width - 1) / width
    y0, x0 = np.floor(ys), np.floor(xs)
    fy, fx = (ys - y0)[:, :, None, None], (xs - x0)[:, None, :, None]
    y0i, x0i = np.clip(y0, 0, height - 1).astype(np.int64), np.clip(x0, 0, width - 1).astype(np.int64)
    y1i, x1i = np.clip(y0 + 1, 0, height - 1).astype(np.int64), np.clip(x0 + 1, 0, width - 1).astype(np.int64)

    def tap(yi, xi):
        return image[yi[:, :, None], xi[:, None, :]]  # [N, size, size, 3]

    top = tap(y0i, x0i) * (1 - fx) + tap(y0i, x1i) * fx
    bottom = tap(y1i, x0i) * (1 - fx) + tap(y1i, x1i) * fx
    patches = top * (1 - fy) + bottom * fy
    inside = ((ys >= 0) & (ys <= height - 1))[:, :, None] & ((xs >= 0) & (xs <= width - 1))[:, None, :]
    patches = np.where(inside[..., None], patches, 0.0)
    return np.ascontiguousarray(patches.transpose(0, 3, 1, 2), dtype=np.float32)
