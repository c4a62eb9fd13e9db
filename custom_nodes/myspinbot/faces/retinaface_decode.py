"""RetinaFace anchors, offset decoding and detection on one image.

Deng et al., "RetinaFace: Single-shot Multi-level Face Localisation in the Wild" (CVPR 2020).
The conventions are those of facexlib ``detection/retinaface_utils.py`` (``PriorBox``,
``decode``, ``decode_landm``) and ``RetinaFace.detect_faces`` of ``detection/retinaface.py``
with the ResNet-50 configuration, which SadTalker's authors call with a 0.97 score threshold:

* anchors: levels with strides 8, 16, 32 and square anchor sizes (16, 32), (64, 128),
  (256, 512) pixels; a level's grid is ``ceil(H / stride)`` x ``ceil(W / stride)``; anchor
  centre ``((col + 0.5) * stride / W, (row + 0.5) * stride / H)``, size ``(s / W, s / H)``,
  all relative to the image; order: level, row, column, size.
* offsets: variances 0.1 (centres, landmarks) and 0.2 (log sizes): centre = anchor centre +
  0.1 * offset * anchor size; size = anchor size * exp(0.2 * offset); landmark = anchor
  centre + 0.1 * offset * anchor size; then scaled by the image width / height.
* the image at its own size (no resizing), BGR minus the mean (104, 117, 123); faces with a
  score above the threshold, best first, greedy NMS at IoU 0.4 (:func:`.boxes.nms`).
  facexlib converts only PIL images to BGR, so SadTalker's crop step (``croper.py``, a numpy
  RGB array) hands the network RGB while its 3DMM step (PIL images) hands it BGR; here it
  always gets BGR, the order its mean is written in.

Imports no ComfyUI module.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from ..errors import InvalidInputError
from .boxes import nms
from .retinaface import RetinaFace

STEPS = (8, 16, 32)
ANCHOR_SIZES = ((16, 32), (64, 128), (256, 512))
VARIANCES = (0.1, 0.2)
MEAN_BGR = (104.0, 117.0, 123.0)
SCORE_THRESHOLD = 0.97  # SadTalker's call (facexlib's default is 0.8)
NMS_THRESHOLD = 0.4


@dataclass(frozen=True)
class Detection:
    """One face: ``box`` float64 ``[4]`` ``x1, y1, x2, y2`` pixels (may reach past the image),
    ``score`` face probability, ``points`` float64 ``[5, 2]`` ``(x, y)`` pixels in the
    network's order (left eye, right eye, nose tip, left and right mouth corner)."""

    box: np.ndarray
    score: float
    points: np.ndarray


def priors(height: int, width: int) -> np.ndarray:
    """float64 ``[A, 4]`` anchors ``(cx, cy, w, h)`` relative to the image, in the network's order."""
    out = []
    for step, sizes in zip(STEPS, ANCHOR_SIZES):
        rows, cols = math.ceil(height / step), math.ceil(width / step)
        cy, cx = np.meshgrid((np.arange(rows) + 0.5) * step / height, (np.arange(cols) + 0.5) * step / width,
                             indexing="ij")
        level = np.empty((rows, cols, len(sizes), 4))
        level[..., 0] = cx[..., None]
        level[..., 1] = cy[..., None]
        level[..., 2] = np.array(sizes, dtype=np.float64) / width
        level[..., 3] = np.array(sizes, dtype=np.float64) / height
        out.append(level.reshape(-1, 4))
    return np.concatenate(out, axis=0)


def decode_boxes(offsets: np.ndarray, anchors: np.ndarray) -> np.ndarray:
    """``[A, 4]`` box offsets -> ``[A, 4]`` ``x1, y1, x2, y2`` relative to the image."""
    centre = anchors[:, :2] + offsets[:, :2] * VARIANCES[0] * anchors[:, 2:]
    size = anchors[:, 2:] * np.exp(offsets[:, 2:] * VARIANCES[1])
    return np.concatenate([centre - size / 2, centre + size / 2], axis=1)


def decode_points(offsets: np.ndarray, anchors: np.ndarray) -> np.ndarray:
    """``[A, 10]`` landmark offsets -> ``[A, 5, 2]`` ``(x, y)`` relative to the image."""
    steps = offsets.reshape(-1, 5, 2) * VARIANCES[0] * anchors[:, None, 2:]
    return anchors[:, None, :2] + steps


def network_input(image: np.ndarray) -> torch.Tensor:
    """uint8 ``[H, W, 3]`` RGB -> float32 ``[1, 3, H, W]`` BGR minus :data:`MEAN_BGR`."""
    bgr = torch.from_numpy(np.ascontiguousarray(image[..., ::-1])).float()
    return (bgr - torch.tensor(MEAN_BGR)).permute(2, 0, 1)[None]


@torch.inference_mode()
def detect(net: RetinaFace, image: np.ndarray, *, score_threshold: float = SCORE_THRESHOLD,
           nms_threshold: float = NMS_THRESHOLD) -> list[Detection]:
    """Faces in uint8 ``[H, W, 3]`` RGB ``image``, best score first (empty: none).

    Raises:
        InvalidInputError: not a uint8 RGB image.
    """
    if not (isinstance(image, np.ndarray) and image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3):
        raise InvalidInputError("RetinaFace needs a uint8 [H, W, 3] RGB image")
    h, w = image.shape[:2]
    p = next(net.parameters())
    offsets, probs, marks = net(network_input(image).to(device=p.device, dtype=p.dtype))
    scores = probs[0, :, 1].float().cpu().numpy().astype(np.float64)
    keep = np.flatnonzero(scores > score_threshold)
    if keep.size == 0:
        return []
    anchors = priors(h, w)[keep]
    scale = np.array([w, h], dtype=np.float64)
    boxes = decode_boxes(offsets[0].float().cpu().numpy()[keep].astype(np.float64), anchors) * np.tile(scale, 2)
    points = decode_points(marks[0].float().cpu().numpy()[keep].astype(np.float64), anchors) * scale
    chosen = nms(boxes, scores[keep], nms_threshold)
    return [Detection(box=boxes[i], score=float(scores[keep][i]), points=points[i]) for i in chosen]
