"""Calling a spandrel face-restoration model on one aligned 512 x 512 face crop.

spandrel loads GFPGAN (``GFPGANv1Clean``, Wang et al. 2021; upstream
``gfpgan/archs/gfpganv1_clean_arch.py``) and RestoreFormer++ as ``ImageModelDescriptor``
with ``purpose == "FaceSR"`` and scale 1. Both were trained on crops normalised to
-1..1 (mean 0.5, std 0.5) and return -1..1, so this adapter does that conversion.
GFPGAN's StyleGAN2 decoder injects fresh random noise on every call by default; for video
that flickers, so it is called with the fixed noise buffers stored in its checkpoint.

Imports no ComfyUI module (torch and spandrel only).
"""

from __future__ import annotations

import numpy as np
import torch

from ..errors import InvalidInputError
from .faces import CROP_SIZE, RestoreFn


def check_face_model(descriptor) -> None:
    """Raise :class:`InvalidInputError` unless ``descriptor`` is a spandrel face-restoration model.

    Args:
        descriptor: a spandrel ``ImageModelDescriptor`` (what core's "Load Upscale Model" returns).
    """
    purpose = getattr(descriptor, "purpose", None)
    if purpose != "FaceSR":
        arch = getattr(getattr(descriptor, "architecture", None), "name", type(descriptor).__name__)
        raise InvalidInputError(
            f"face_restore_model must be a face restoration model (GFPGAN, RestoreFormer++), got {arch} "
            f"(purpose {purpose!r}); load e.g. GFPGANv1.4.pth with core's 'Load Upscale Model'")
    if int(getattr(descriptor, "scale", 1)) != 1:
        raise InvalidInputError(f"face restoration models must have scale 1, got {descriptor.scale}")


def face_restore_fn(descriptor, device: torch.device | str = "cpu") -> RestoreFn:
    """A :data:`~.faces.RestoreFn` running ``descriptor`` on ``device`` in float32.

    Args:
        descriptor: a spandrel face-restoration ``ImageModelDescriptor`` (already on
            ``device``; the caller moves/loads it).
        device: where the crop is sent.

    Returns:
        ``restore(crop)``: float32 ``[512, 512, 3]`` RGB 0..1 -> float32 ``[512, 512, 3]`` 0..1.

    Raises:
        InvalidInputError: not a face-restoration model (see :func:`check_face_model`).
    """
    check_face_model(descriptor)
    arch_id = getattr(getattr(descriptor, "architecture", None), "id", "")

    @torch.inference_mode()
    def restore(crop: np.ndarray) -> np.ndarray:
        if crop.shape != (CROP_SIZE, CROP_SIZE, 3):
            raise InvalidInputError(f"face crop must be [{CROP_SIZE}, {CROP_SIZE}, 3], got {crop.shape}")
        x = torch.from_numpy(np.ascontiguousarray(crop, dtype=np.float32)).movedim(-1, 0)[None].to(device)
        x = x * 2.0 - 1.0
        if arch_id == "GFPGAN":
            y = descriptor.model(x, return_rgb=False, randomize_noise=False)[0]
        else:
            y = descriptor(x)
        y = ((y.float() + 1.0) * 0.5).clamp(0.0, 1.0)
        return y[0].movedim(0, -1).cpu().numpy()

    return restore
