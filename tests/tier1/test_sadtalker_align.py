"""Tier 1: five facial points -> face crop, the regressor's aligned 224 x 224 input, the 73 coefficients.

Without the authors' code: the scaled-orthographic fit recovers a known scale and shift, the
aligned crop puts the standard face where the regressor expects it, the crop box is a square
around the face. With ``MYSPINBOT_SADTALKER_REF`` (see ``test_sadtalker_reference``): our
alignment equals the authors' ``align_img`` (``src/face3d/util/preprocess.py``) pixel for pixel.
That module was written for NumPy 1: it names ``np.VisibleDeprecationWarning`` (gone from
NumPy 2's namespace), calls ``float()`` on 1-element arrays and builds ``trans_params`` from
mixed scalars and arrays (both errors in NumPy 2), and imports scikit-image (unused here). It
is loaded with the old warning name restored and a stub for scikit-image, its module-level
``float`` accepts 1-element arrays, and ``align_img``'s four lines of glue are repeated in the
test around its own ``POS`` and ``resize_n_crop_img`` (where the maths is).
"""

from __future__ import annotations

import importlib.util
import os
import sys
import types
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from myspinbot.errors import InvalidInputError
from myspinbot.sadtalker.align import LM3D_STD, crop_box, pos_fit, recon_input, semantic_coeffs

REF = Path(os.environ["MYSPINBOT_SADTALKER_REF"]) if os.environ.get("MYSPINBOT_SADTALKER_REF") else None


def _face_points(scale: float, centre: tuple[float, float]) -> np.ndarray:
    """The standard face projected at ``scale`` around ``centre`` (image coordinates, y down)."""
    p = LM3D_STD[:, :2].astype(np.float64) * scale
    return np.stack([centre[0] + p[:, 0], centre[1] - p[:, 1]], axis=1)


def test_pos_fit_recovers_scale_and_shift():
    lm = LM3D_STD[:, :2].astype(np.float64) * 180.0 + [300.0, 210.0]
    t, s = pos_fit(lm)
    np.testing.assert_allclose(t, [300.0, 210.0], atol=1e-9)
    assert s == pytest.approx(180.0, abs=1e-9)


def test_recon_input_centres_the_standard_face():
    image = np.full((256, 256, 3), 40, dtype=np.uint8)
    lm5 = _face_points(120.0, (128.0, 120.0))
    for x, y in lm5.astype(int):
        image[y - 2:y + 3, x - 2:x + 3] = 255
    crop, params = recon_input(image, lm5)
    assert crop.shape == (3, 224, 224) and crop.dtype == np.float32 and 0 <= crop.min() <= crop.max() <= 1
    assert params.tolist()[:2] == [256, 256] and params[2] == pytest.approx(102.0 / 120.0, rel=1e-6)
    # each point lands at 112 + 102 * standard (y up), where the regressor was trained to see it
    expected = np.stack([112 + 102 * LM3D_STD[:, 0], 112 - 102 * LM3D_STD[:, 1]], axis=1)
    bright = crop.mean(0) > 0.6
    for x, y in expected:
        assert bright[int(round(y)) - 2:int(round(y)) + 3, int(round(x)) - 2:int(round(x)) + 3].any()
    with pytest.raises(InvalidInputError):
        recon_input(image, lm5[:4])


def test_semantic_coefficients():
    full = np.arange(257, dtype=np.float32)
    out = semantic_coeffs(full, np.array([256, 256, 0.8, 120.0, 130.0]))
    assert out.shape == (73,) and out.dtype == np.float32
    assert out[:64].tolist() == list(range(80, 144)) and out[64:70].tolist() == [224, 225, 226, 254, 255, 256]
    np.testing.assert_allclose(out[70:], [0.8, 120.0, 130.0])


def test_crop_box_is_a_square_around_the_face():
    lm5 = _face_points(200.0, (400.0, 300.0))
    crop, quad = crop_box(lm5, (800, 700))
    left, top, right, bottom = crop
    assert 0 <= left < 400 - 60 and right > 400 + 60 and 0 <= top < 300 - 60 and bottom > 300 + 60
    lx, ly, rx, ry = quad
    assert abs((rx - lx) - (ry - ly)) <= 1 and rx - lx > 150
    assert left + lx < lm5[:, 0].min() and left + rx > lm5[:, 0].max()
    assert top + ly < lm5[:, 1].min() and top + ry > lm5[:, 1].max()


@pytest.fixture(scope="module")
def ref_preprocess():
    module_path = REF / "src" / "face3d" / "util" / "preprocess.py" if REF else None
    if module_path is None or not module_path.is_file():
        pytest.skip("the authors' SadTalker code is not present (set MYSPINBOT_SADTALKER_REF)")
    saved = sys.modules.get("skimage")
    sys.modules["skimage"] = types.SimpleNamespace(transform=None)
    np.VisibleDeprecationWarning = np.exceptions.VisibleDeprecationWarning
    try:
        spec = importlib.util.spec_from_file_location("_sadtalker_ref_preprocess", module_path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        module.float = lambda v: float(np.asarray(v).reshape(-1)[0])  # NumPy 1's float() of a 1-element array
    finally:
        del np.VisibleDeprecationWarning
        if saved is None:
            del sys.modules["skimage"]
        else:
            sys.modules["skimage"] = saved
    return module


@pytest.mark.parametrize("scale, centre, size", [(120.0, (128.0, 120.0), 256), (230.0, (260.0, 250.0), 512),
                                                 (90.0, (140.0, 100.0), 256)])
def test_recon_input_matches_the_authors(ref_preprocess, scale, centre, size):
    rng = np.random.default_rng(int(scale))
    image = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
    lm5 = _face_points(scale, centre) + rng.normal(0, 3, (5, 2))
    ours, params = recon_input(image, lm5)
    flipped = lm5.copy()
    flipped[:, 1] = size - 1 - flipped[:, 1]  # CropAndExtract.generate flips y before align_img
    t, s = ref_preprocess.POS(flipped.transpose(), LM3D_STD.transpose())  # align_img's glue, NumPy 2 safe
    s = 102.0 / s
    theirs, _, _ = ref_preprocess.resize_n_crop_img(Image.fromarray(image), flipped, t, s, target_size=224.0)
    expected = np.array([size, size, s, t[0, 0], t[1, 0]], dtype=np.float32)
    np.testing.assert_allclose(params, expected, rtol=1e-6)
    np.testing.assert_array_equal(ours, np.asarray(theirs, dtype=np.float32).transpose(2, 0, 1) / 255.0)
