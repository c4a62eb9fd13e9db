"""The MTCNN cascade: faces and five landmarks (Zhang et al., "Joint Face Detection and
Alignment using Multi-task Cascaded Convolutional Networks", IEEE SPL 2016).

Image pyramid (scale factor 0.709 from ``12 / min_face_size``), P-Net proposals with NMS per
scale and across scales, R-Net refinement, O-Net refinement with the five landmarks. The
stages, thresholds (0.6 / 0.7 / 0.8) and NMS settings (0.5 and 0.7 union, 0.7 union, 0.7
over the smaller box) are the defaults of the ``mtcnn`` wheel 1.0.0 (MIT;
``mtcnn/stages/stage_{pnet,rnet,onet}.py``). Two deliberate differences: NMS is the
classic greedy one (the wheel also drops boxes that overlap an already dropped box), and
the pyramid stops where the scaled image's short side falls under P-Net's 12 pixels. The
weights are the wheel's (:mod:`.mtcnn_weights`). Imports no ComfyUI module.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import torch
from torch import nn

from ..errors import InvalidInputError
from .boxes import calibrate, crop_resize, nms, square
from .mtcnn_weights import load_network

SCALE_FACTOR = 0.709
CELL, STRIDE = 12, 2  # P-Net window and output stride, pixels
THRESHOLDS = (0.6, 0.7, 0.8)  # P-Net, R-Net, O-Net face probability
BATCH = 256  # patches per R-Net / O-Net call


@dataclass(frozen=True)
class Face:
    """One detection: ``box`` float64 ``[4]`` ``x1, y1, x2, y2`` pixels (inside the image),
    ``score`` O-Net face probability, ``points`` float64 ``[5, 2]`` ``(x, y)`` pixels: left eye,
    right eye, nose tip, left and right mouth corner ("left" = the image's left)."""

    box: np.ndarray
    score: float
    points: np.ndarray


class MTCNN:
    """The three networks and the cascade. ``detect(image)`` -> faces, best score first."""

    def __init__(self, pnet: nn.Module, rnet: nn.Module, onet: nn.Module, device: str | torch.device = "cpu"):
        self.device = torch.device(device)
        self.pnet, self.rnet, self.onet = (n.to(self.device).eval() for n in (pnet, rnet, onet))

    @classmethod
    def from_wheel(cls, device: str | torch.device = "cpu") -> "MTCNN":
        """The networks with the ``mtcnn`` wheel's weights. Raises ``InvalidModelError``."""
        return cls(load_network("pnet"), load_network("rnet"), load_network("onet"), device)

    @torch.inference_mode()
    def detect(self, image: np.ndarray, min_face_size: int = 20) -> list[Face]:
        """Faces in uint8 ``[H, W, 3]`` RGB ``image`` at least ``min_face_size`` pixels wide.

        Raises:
            InvalidInputError: not a uint8 ``[H, W, 3]`` image.
        """
        if not (isinstance(image, np.ndarray) and image.dtype == np.uint8 and image.ndim == 3
                and image.shape[2] == 3):
            raise InvalidInputError("MTCNN needs a uint8 [H, W, 3] RGB image")
        norm = (image.astype(np.float32) - 127.5) / 128.0
        boxes, scores = self._proposals(norm, min_face_size)
        if len(boxes):
            boxes, scores = self._refine(norm, boxes)
        if not len(boxes):
            return []
        boxes, scores, points = self._output(norm, boxes)
        height, width = image.shape[:2]
        boxes[:, 0::2] = boxes[:, 0::2].clip(0, width - 1)
        boxes[:, 1::2] = boxes[:, 1::2].clip(0, height - 1)
        return [Face(b, float(s), p) for b, s, p in zip(boxes, scores, points)]

    def _run(self, net: nn.Module, patches: np.ndarray) -> list[np.ndarray]:
        outs = [net(torch.from_numpy(patches[i:i + BATCH]).to(self.device)) for i in range(0, len(patches), BATCH)]
        return [torch.cat(parts).float().cpu().numpy().astype(np.float64) for parts in zip(*outs)]

    def _proposals(self, norm: np.ndarray, min_face_size: int) -> tuple[np.ndarray, np.ndarray]:
        height, width = norm.shape[:2]
        scale = CELL / min_face_size
        found = []
        while min(height, width) * scale >= CELL:
            h, w = int(np.ceil(height * scale)), int(np.ceil(width * scale))
            resized = cv2.resize(norm, (w, h), interpolation=cv2.INTER_AREA)
            x = torch.from_numpy(np.ascontiguousarray(resized.transpose(2, 0, 1)))[None].to(self.device)
            offsets, probs = (t[0].float().cpu().numpy().astype(np.float64) for t in self.pnet(x))
            ys, xs = np.nonzero(probs[1] > THRESHOLDS[0])
            if len(ys):
                cells = np.stack([STRIDE * xs + 1, STRIDE * ys + 1, STRIDE * xs + CELL, STRIDE * ys + CELL], 1)
                boxes = (cells + offsets[:, ys, xs].T * (CELL - 1)) / scale
                score = probs[1, ys, xs]
                keep = nms(boxes, score, 0.5)
                found.append((boxes[keep], score[keep]))
            scale *= SCALE_FACTOR
        if not found:
            return np.zeros((0, 4)), np.zeros(0)
        boxes, scores = (np.concatenate(parts) for parts in zip(*found))
        keep = nms(boxes, scores, 0.7)
        return square(boxes[keep]), scores[keep]

    def _refine(self, norm: np.ndarray, boxes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        offsets, probs = self._run(self.rnet, crop_resize(norm, boxes, 24))
        boxes, scores = calibrate(boxes, offsets), probs[:, 1]
        good = scores > THRESHOLDS[1]
        boxes, scores = boxes[good], scores[good]
        keep = nms(boxes, scores, 0.7)
        return square(boxes[keep]), scores[keep]

    def _output(self, norm: np.ndarray, boxes: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        offsets, marks, probs = self._run(self.onet, crop_resize(norm, boxes, 48))
        w = boxes[:, 2:3] - boxes[:, 0:1] + 1
        h = boxes[:, 3:4] - boxes[:, 1:2] + 1
        points = np.stack([w * marks[:, :5] + boxes[:, 0:1] - 1, h * marks[:, 5:] + boxes[:, 1:2] - 1], axis=2)
        boxes, scores = calibrate(boxes, offsets), probs[:, 1]
        good = scores > THRESHOLDS[2]
        boxes, scores, points = boxes[good], scores[good], points[good]
        keep = nms(boxes, scores, 0.7, method="min")
        return boxes[keep], scores[keep], points[keep]
