"""Coefficients -> frames: SadTalker's face renderer loop.

Zhang et al., SadTalker (CVPR 2023), section 3.3, as run by upstream
``src/generate_facerender_batch.py`` (``get_facerender_data``) and
``src/facerender/modules/make_animation.py`` (``make_animation``): each frame's driving
input is a 27-frame window of coefficients centred on it (indices clamped to the clip); the
source's is its own coefficients repeated. The mapping network turns both into head pose and
keypoint offsets, the canonical keypoints of the source image are posed with them and the
generator warps the source to the driving keypoints. ``expression_scale`` multiplies the 64
expression coefficients; ``still`` keeps the source's pose (and crop parameters); the
``full`` mode mapping (73 inputs) also gets the source's 3 crop parameters. The source is
encoded once (upstream re-encodes it every frame, with the same result). Imports no ComfyUI
module.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch

from ..errors import InvalidInputError
from .keypoints import KeypointDetector
from .generator import OcclusionAwareSpadeGenerator
from .mapping import MappingNet, transform_keypoints

SEMANTIC_RADIUS = 13  # 27-frame windows


def driving_coeffs(coeffs: np.ndarray, source_coeffs: np.ndarray, *, mapping_channels: int = 70,
                   expression_scale: float = 1.0, still: bool = False) -> np.ndarray:
    """Per-frame coefficients the mapping network reads: ``[T, mapping_channels]`` float32.

    Args:
        coeffs: ``[T, 70]`` from :func:`~.audio_coeffs.audio_to_coeffs`.
        source_coeffs: the portrait's coefficients (``[>= 70]``; ``[>= 73]`` when
            ``mapping_channels`` is 73: the crop parameters are 70:73).
        mapping_channels: 70 (crop/resize) or 73 (full).
        expression_scale: factor on the expression coefficients 0:64.
        still: replace the pose (64:) by the source's.
    """
    if mapping_channels not in (70, 73):
        raise InvalidInputError(f"mapping_channels must be 70 or 73, got {mapping_channels}")
    src = np.asarray(source_coeffs, dtype=np.float32).reshape(-1)
    if src.shape[0] < mapping_channels:
        raise InvalidInputError(f"the source needs {mapping_channels} coefficients, got {src.shape[0]}")
    out = np.array(coeffs[:, :70], dtype=np.float32)
    out[:, :64] *= expression_scale
    if mapping_channels == 73:
        out = np.concatenate([out, np.repeat(src[None, 70:73], out.shape[0], axis=0)], axis=1)
    if still:
        out[:, 64:] = src[None, 64:mapping_channels]
    return out


def semantic_windows(coeffs: np.ndarray, start: int, stop: int, radius: int = SEMANTIC_RADIUS) -> np.ndarray:
    """``[stop-start, C, 2 radius + 1]`` windows of ``coeffs`` (``[T, C]``) centred on frames ``start..stop-1``."""
    centres = np.arange(start, stop)[:, None] + np.arange(-radius, radius + 1)[None, :]
    index = np.clip(centres, 0, coeffs.shape[0] - 1)
    return np.ascontiguousarray(coeffs[index].transpose(0, 2, 1))


@torch.no_grad()
def render_frames(kp_extractor: KeypointDetector, generator: OcclusionAwareSpadeGenerator, mapping: MappingNet,
                  source_image: torch.Tensor, source_coeffs: np.ndarray, driving: np.ndarray, *,
                  batch_size: int = 2) -> Iterator[torch.Tensor]:
    """Render one frame per row of ``driving``, ``batch_size`` at a time.

    Args:
        source_image: ``[3, S, S]`` float RGB ``0..1`` (the crop, S = 256 or 512), on the
            networks' device and dtype.
        source_coeffs: the portrait's coefficients (``[>= mapping channels]``).
        driving: ``[T, C]`` from :func:`driving_coeffs` (C = the mapping's input width).

    Yields:
        ``[n, 3, S, S]`` float tensors in ``0..1`` on the networks' device, ``n <= batch_size``,
        in frame order (``T`` frames in all).
    """
    channels = mapping.config.coeff_channels
    if driving.ndim != 2 or driving.shape[1] != channels:
        raise InvalidInputError(f"driving coefficients must be [T, {channels}], got {list(driving.shape)}")
    if batch_size < 1:
        raise InvalidInputError(f"batch_size must be at least 1, got {batch_size}")
    p = next(generator.parameters())
    src = np.asarray(source_coeffs, dtype=np.float32).reshape(-1)[:channels]
    source_window = torch.from_numpy(np.repeat(src[:, None], 2 * SEMANTIC_RADIUS + 1, axis=1)).to(p)[None]
    image = source_image[None].to(p)
    canonical = kp_extractor(image)
    kp_source = transform_keypoints(canonical, mapping(source_window))
    volume = generator.encode(image)
    for start in range(0, driving.shape[0], batch_size):
        stop = min(start + batch_size, driving.shape[0])
        n = stop - start
        windows = torch.from_numpy(semantic_windows(driving, start, stop)).to(p)
        kp_driving = transform_keypoints(canonical.expand(n, -1, -1), mapping(windows))
        yield generator.render(volume.expand(n, -1, -1, -1, -1), kp_driving, kp_source.expand(n, -1, -1))
