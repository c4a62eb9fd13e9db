"""From a face box to landmarks with the 98-point network: crop, heatmap peaks, 98 -> 68 -> 5.

The steps of facexlib ``alignment/awing_arch.py`` (``FAN.get_landmarks``,
``calculate_points``) and ``alignment/convert_98_to_68_landmarks.py``
(``landmark_98_to_68``) as SadTalker's authors chain them (``src/utils/croper.py``
``get_landmark``, ``src/face3d/extract_kp_videos_safe.py``), then the five points of
``extract_5p`` (``src/face3d/util/preprocess.py``):

* the box is cut at integer pixels, resized to 256 x 256 (bilinear), channels reversed and
  scaled to 0..1. SadTalker hands the network an RGB array and facexlib reverses it, so the
  network sees BGR; that is what is done here (facexlib's own demo feeds it RGB).
* per landmark the heatmap's maximum ``(col, row)``, moved a quarter pixel towards the higher
  of its two horizontal and of its two vertical neighbours, plus half a pixel, times
  ``crop size / 64``, plus the box's integer corner. Deliberate difference: a peak on the
  map's edge is not moved along that axis (upstream reads the neighbours of the flattened
  map, wrapping rows or reading past its end, and switches all points to fixed cells when
  any peak is near the top or bottom row); inside the map the result is the same.
* 98 -> 68: the jaw every other point, nose and mouth as they are, the eyebrows' upper and
  lower points averaged, six of the eight points of each eye.
* 68 -> 5: eye centres as the mean of each eye's two corners, the nose tip, the two mouth
  corners.

Imports no ComfyUI module.
"""

from __future__ import annotations

import cv2
import numpy as np
import torch

from .fan98 import HEATMAP_SIZE, INPUT_SIZE, FAN98

# 68-point index -> 98-point index, or a pair of 98-point indices averaged.
_JAW = [(2 * i,) for i in range(17)]
_BROWS = [(33,), (34, 41), (35, 40), (36, 39), (37, 38), (42, 50), (43, 49), (44, 48), (45, 47), (46,)]
_NOSE = [(i,) for i in range(51, 60)]
_EYES = [(i,) for i in (60, 61, 63, 64, 65, 67, 68, 69, 71, 72, 73, 75)]
_MOUTH = [(i,) for i in range(76, 96)]
FROM_98 = tuple(_JAW + _BROWS + _NOSE + _EYES + _MOUTH)


def heatmap_peaks(heatmaps: np.ndarray) -> np.ndarray:
    """float64 ``[B, N, 2]`` ``(x, y)`` in heatmap cells (cell centres at ``k + 0.5``) of
    ``heatmaps`` ``[B, N, H, W]``: the maximum plus a quarter cell towards the larger neighbour
    (no move along an axis where the maximum is on the edge)."""
    b, n, h, w = heatmaps.shape
    flat = heatmaps.reshape(b * n, h * w)
    best = flat.argmax(axis=1)
    row, col = best // w, best % w
    maps = heatmaps.reshape(b * n, h, w)
    k = np.arange(b * n)
    dx = maps[k, row, np.minimum(col + 1, w - 1)] - maps[k, row, np.maximum(col - 1, 0)]
    dy = maps[k, np.minimum(row + 1, h - 1), col] - maps[k, np.maximum(row - 1, 0), col]
    dx[(col == 0) | (col == w - 1)] = 0.0
    dy[(row == 0) | (row == h - 1)] = 0.0
    x = col + 0.25 * np.sign(dx) + 0.5
    y = row + 0.25 * np.sign(dy) + 0.5
    return np.stack([x, y], axis=1).reshape(b, n, 2).astype(np.float64)


def crop_input(crop: np.ndarray) -> torch.Tensor:
    """uint8 ``[h, w, 3]`` RGB crop -> float32 ``[1, 3, 256, 256]`` the network's input (BGR, 0..1)."""
    resized = cv2.resize(crop, (INPUT_SIZE, INPUT_SIZE))
    return torch.from_numpy(np.ascontiguousarray(resized[..., ::-1].transpose(2, 0, 1))).float()[None] / 255.0


@torch.inference_mode()
def landmarks98(net: FAN98, image: np.ndarray, box: np.ndarray) -> np.ndarray | None:
    """float64 ``[98, 2]`` ``(x, y)`` image pixels of the face in ``box`` (``x1, y1, x2, y2``)
    of uint8 ``[H, W, 3]`` RGB ``image``; ``None`` when the box holds no pixel."""
    h, w = image.shape[:2]
    x0, y0 = max(int(box[0]), 0), max(int(box[1]), 0)
    x1, y1 = min(int(box[2]), w), min(int(box[3]), h)
    if x1 - x0 < 2 or y1 - y0 < 2:
        return None
    crop = np.ascontiguousarray(image[y0:y1, x0:x1])
    p = next(net.parameters())
    heat = net(crop_input(crop).to(device=p.device, dtype=p.dtype))[-1][:, :-1]
    cells = heatmap_peaks(heat.float().cpu().numpy())[0]
    return cells * [(x1 - x0) / HEATMAP_SIZE, (y1 - y0) / HEATMAP_SIZE] + [x0, y0]


def to_68(points98: np.ndarray) -> np.ndarray:
    """``[98, 2]`` WFLW landmarks -> ``[68, 2]`` in the 68-point (iBUG 300-W) order."""
    p = np.asarray(points98, dtype=np.float64)
    return np.stack([p[list(idx)].mean(axis=0) for idx in FROM_98])


def to_5(points68: np.ndarray) -> np.ndarray:
    """``[68, 2]`` -> ``[5, 2]``: left eye, right eye, nose tip, left and right mouth corner."""
    p = np.asarray(points68, dtype=np.float64)
    return np.stack([(p[36] + p[39]) / 2, (p[42] + p[45]) / 2, p[30], p[48], p[54]])
