"""Five facial points -> the face crop and the 3DMM regressor's aligned input.

Points are ``[5, 2]`` pixel coordinates ``(x, y)``, y down, in the order left eye centre,
right eye centre, nose tip, left mouth corner, right mouth corner (as seen in the image).

* :func:`crop_box`: the square face region of SadTalker's ``crop`` preprocessing, the
  FFHQ-style quad of upstream ``Preprocesser.align_face`` (``src/utils/croper.py``) built from
  the eye centres and mouth corners.
* :func:`recon_input`: Deng et al. (CVPRW 2019)'s alignment for the coefficient regressor
  (upstream ``align_img`` / ``POS`` / ``resize_n_crop_img`` of
  ``src/face3d/util/preprocess.py``): a least-squares scaled-orthographic fit of the five
  points to the 5-point standard face, then a bicubic resize and a 224 x 224 crop.
* :func:`semantic_coeffs`: the 73 coefficients SadTalker drives with (upstream
  ``CropAndExtract.generate``): expression, angles, translation, crop scale and offset.

:data:`LM3D_STD` is the 5-point standard: the 68 landmarks of ``similarity_Lm3D_all.mat``
(``src/config/`` upstream, Deep3DFaceRecon's BFM landmark means) reduced as upstream
``load_lm3d`` does (eye corners averaged). Imports no ComfyUI module.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from ..errors import InvalidInputError

LM3D_STD = np.array([
    [-0.31148657, 0.29036078, 0.13377953],  # left eye
    [0.30979887, 0.28972036, 0.13179526],  # right eye
    [0.0032534988, -0.046179324, 0.55244243],  # nose tip
    [-0.25216928, -0.38133916, 0.22405732],  # left mouth corner
    [0.2484662, -0.38128236, 0.22235769],  # right mouth corner
], dtype=np.float32)
RECON_SIZE = 224
RESCALE = 102.0  # upstream rescale_factor


def _points(lm5: np.ndarray) -> np.ndarray:
    p = np.asarray(lm5, dtype=np.float64)
    if p.shape != (5, 2) or not np.isfinite(p).all():
        raise InvalidInputError(f"facial points must be a finite [5, 2] array, got {p.shape}")
    return p


def crop_box(lm5: np.ndarray, size: tuple[int, int]) -> tuple[tuple[int, int, int, int], tuple[int, int, int, int]]:
    """The face crop of the ``crop`` mode for an image of ``size`` ``(w, h)``.

    Returns:
        ``(crop, quad)``: ``crop`` = ``(left, top, right, bottom)`` of the region around the face
        quad plus a 10 % border, clipped to the image; ``quad`` = ``(lx, ly, rx, ry)`` the
        face square inside ``crop`` (the renderer's input). Upstream first downsizes images
        more than twice the 512 output; this works at full resolution (same region).
    """
    p = _points(lm5)
    w, h = size
    eye_left, eye_right, mouth_left, mouth_right = p[0], p[1], p[3], p[4]
    eye_avg = (eye_left + eye_right) * 0.5
    eye_to_eye = eye_right - eye_left
    eye_to_mouth = (mouth_left + mouth_right) * 0.5 - eye_avg
    x = eye_to_eye - np.flipud(eye_to_mouth) * [-1, 1]
    x /= np.hypot(*x)
    x *= max(np.hypot(*eye_to_eye) * 2.0, np.hypot(*eye_to_mouth) * 1.8)
    y = np.flipud(x) * [-1, 1]
    c = eye_avg + eye_to_mouth * 0.1
    quad = np.stack([c - x - y, c - x + y, c + x + y, c + x - y])
    border = max(int(np.rint(np.hypot(*x) * 2 * 0.1)), 3)
    crop = (int(np.floor(quad[:, 0].min())), int(np.floor(quad[:, 1].min())),
            int(np.ceil(quad[:, 0].max())), int(np.ceil(quad[:, 1].max())))
    crop = (max(crop[0] - border, 0), max(crop[1] - border, 0), min(crop[2] + border, w), min(crop[3] + border, h))
    if crop[2] - crop[0] < w or crop[3] - crop[1] < h:
        quad = quad - np.array(crop[:2], dtype=np.float64)
    q = (quad + 0.5).flatten()
    lx, ly = max(min(q[0], q[2]), 0), max(min(q[1], q[7]), 0)
    rx, ry = min(max(q[4], q[6]), w), min(max(q[3], q[5]), w)  # upstream clips ry with the width too
    return crop, (int(lx), int(ly), int(rx), int(ry))


def pos_fit(lm5: np.ndarray, lm3d: np.ndarray = LM3D_STD) -> tuple[np.ndarray, float]:
    """Scaled orthographic fit of ``lm3d`` ``[5, 3]`` onto ``lm5`` ``[5, 2]`` (y up).

    Returns ``(t [2], s)``: translation in pixels and scale (mean norm of the two rows).
    """
    n = lm5.shape[0]
    a = np.zeros((2 * n, 8))
    a[0::2, 0:3] = lm3d
    a[0::2, 3] = 1
    a[1::2, 4:7] = lm3d
    a[1::2, 7] = 1
    k = np.linalg.lstsq(a, lm5.reshape(-1), rcond=None)[0]
    s = (np.linalg.norm(k[0:3]) + np.linalg.norm(k[4:7])) / 2
    return np.array([k[3], k[7]]), float(s)


def recon_input(image: np.ndarray, lm5: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The regressor's input for ``image`` (uint8 ``[H, W, 3]`` RGB) with its five points.

    Returns:
        ``(crop, trans_params)``: float32 ``[3, 224, 224]`` RGB in ``0..1`` and float32
        ``[5]`` = ``(W, H, scale, tx, ty)`` (upstream ``trans_params``).
    """
    img = np.asarray(image)
    if img.ndim != 3 or img.shape[2] != 3 or img.dtype != np.uint8:
        raise InvalidInputError(f"image must be uint8 [H, W, 3], got {img.dtype} {img.shape}")
    h0, w0 = img.shape[:2]
    p = _points(lm5).copy()
    p[:, 1] = h0 - 1 - p[:, 1]  # y up
    t, s = pos_fit(p)
    s = RESCALE / s
    w, h = int(w0 * s), int(h0 * s)
    left = int(w / 2 - RECON_SIZE / 2 + float((t[0] - w0 / 2) * s))
    up = int(h / 2 - RECON_SIZE / 2 + float((h0 / 2 - t[1]) * s))
    resized = Image.fromarray(img).resize((w, h), resample=Image.BICUBIC)
    crop = resized.crop((left, up, left + RECON_SIZE, up + RECON_SIZE))
    out = np.asarray(crop, dtype=np.float32).transpose(2, 0, 1) / 255.0
    return np.ascontiguousarray(out), np.array([w0, h0, s, t[0], t[1]], dtype=np.float32)


def semantic_coeffs(full: np.ndarray, trans_params: np.ndarray) -> np.ndarray:
    """float32 ``[73]``: expression (80:144), angles (224:227), translation (254:257) of the
    regressor's ``[257]`` output, then ``trans_params[2:]`` (scale, tx, ty)."""
    f = np.asarray(full, dtype=np.float32).reshape(-1)
    if f.shape[0] != 257:
        raise InvalidInputError(f"expected 257 coefficients, got {f.shape[0]}")
    return np.concatenate([f[80:144], f[224:227], f[254:257], np.asarray(trans_params, np.float32)[2:5]])
