"""One Wav2Lip batch: face crops in, redrawn frames out (the generator's share of the engine).

The per-batch step of the authors' ``inference.py`` (Rudrabha/Wav2Lip; Prajwal et al., ACM MM
2020): 96 x 96 crops of the face boxes, the lower half masked in one copy, the mel window of
each frame, one generator call, the outputs pasted back (:mod:`.paste`). Two savings keep the
outputs the same up to float rounding:

* crops that are byte-for-byte equal (every frame of a still image, frozen video frames) go
  through the face encoder once per batch when the model offers the split
  ``encode_faces`` / ``decode`` of :class:`.wav2lip.Wav2Lip` (the encoder is about a tenth of
  the generator's work; the decoder, which depends on the audio, runs for every frame);
* the resized blend weight is kept for the last box size (a still's box never changes).

Imports no ComfyUI module.
"""

from __future__ import annotations

from collections.abc import Callable

import cv2
import numpy as np
import torch

from .boxes import FaceBox
from .mel import WINDOW_FRAMES
from .paste import face_crop, model_input, paste_face

Generator = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
"""``model(mel [B, 1, 80, 16], faces [B, 6, 96, 96]) -> [B, 3, 96, 96]`` (a Wav2Lip)."""
Item = tuple[int, np.ndarray, FaceBox | None]
"""``(output frame index, uint8 [H, W, 3] RGB frame, smoothed face box or None)``."""


def device_dtype(model: Generator) -> tuple[torch.device, torch.dtype]:
    """Where a module's parameters live (CPU float32 for a plain callable)."""
    params = getattr(model, "parameters", None)
    first = next(iter(params()), None) if callable(params) else None
    if first is None:
        return torch.device("cpu"), torch.float32
    return first.device, first.dtype


def unique_rows(crops: list[np.ndarray]) -> tuple[list[int], list[int]]:
    """``(first, order)``: indices of the distinct crops (byte equality, first occurrence) and,
    for each crop, the position of its distinct copy in ``first``."""
    seen: dict[bytes, int] = {}
    first: list[int] = []
    order: list[int] = []
    for i, crop in enumerate(crops):
        key = crop.tobytes()
        slot = seen.get(key)
        if slot is None:
            slot = seen[key] = len(first)
            first.append(i)
        order.append(slot)
    return first, order


class BatchRunner:
    """Runs the generator on the frames of one batch that have a face and pastes the results.

    Args:
        model: a Wav2Lip (or any callable with its signature); inputs go to its parameters'
            device and dtype.
        mel: float32 ``[80, T]`` mel spectrogram of the whole speech.
        starts: first mel column of each output frame's window (``int [frames]``).
        weight: float32 ``[96, 96]`` blend weight (:func:`.paste.lower_face_weight`).
    """

    def __init__(self, model: Generator, mel: np.ndarray, starts: np.ndarray, weight: np.ndarray):
        self.model, self.mel, self.starts, self.weight = model, mel, starts, weight
        self.device, self.dtype = device_dtype(model)
        self.split = callable(getattr(model, "encode_faces", None)) and callable(getattr(model, "decode", None))
        self._weights: tuple[tuple[int, int], np.ndarray] | None = None

    def _weight(self, size: tuple[int, int]) -> np.ndarray:
        if self._weights is None or self._weights[0] != size:
            self._weights = (size, cv2.resize(self.weight, size, interpolation=cv2.INTER_LINEAR))
        return self._weights[1]

    def _generate(self, mels: torch.Tensor, crops: list[np.ndarray]) -> torch.Tensor:
        first, order = unique_rows(crops)
        unique = torch.from_numpy(model_input(np.stack([crops[i] for i in first]))).to(self.device, self.dtype)
        n = len(crops)
        if len(first) == n:
            return self.model(mels, unique)
        if not self.split:
            return self.model(mels, unique[torch.tensor(order, device=unique.device)])
        skips = self.model.encode_faces(unique)
        if len(first) == 1:
            shared = [s.expand(n, *s.shape[1:]) for s in skips]
        else:
            index = torch.tensor(order, device=unique.device)
            shared = [s.index_select(0, index) for s in skips]
        return self.model.decode(mels, shared)

    @torch.inference_mode()
    def __call__(self, batch: list[Item]) -> list[np.ndarray]:
        """The batch's frames, in order: redrawn where a box is given, else the frame itself.

        Returns:
            uint8 ``[H, W, 3]`` RGB frames (new arrays where pasted; the input frames are
            never modified).
        """
        out = [frame for _, frame, _ in batch]
        faces = [(k, index, frame, box) for k, (index, frame, box) in enumerate(batch) if box is not None]
        if not faces:
            return out
        crops = [face_crop(frame, box) for _, _, frame, box in faces]
        windows = np.stack([self.mel[:, self.starts[index]:self.starts[index] + WINDOW_FRAMES]
                            for _, index, _, _ in faces])[:, None]
        mels = torch.from_numpy(np.ascontiguousarray(windows, dtype=np.float32)).to(self.device, self.dtype)
        pred = self._generate(mels, crops).float().clamp_(0.0, 1.0).permute(0, 2, 3, 1).cpu().numpy()
        for (k, _, frame, box), face in zip(faces, pred):
            x1, y1, x2, y2 = box
            out[k] = paste_face(frame, face, box, self._weight((x2 - x1, y2 - y1)), resized=True)
        return out
