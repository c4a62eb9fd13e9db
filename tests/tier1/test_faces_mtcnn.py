"""Tier 1: MTCNN (our PyTorch port) with the real weights shipped in the ``mtcnn`` wheel.

The weights load strictly (a reshaped array, a missing array or a pickle naming anything but
arrays is refused with ``invalid_model``); on the real portrait fixture the cascade finds one
face whose five points are geometrically plausible; a flat or gradient image has no face;
SadTalker's :func:`five_points` uses it. TensorFlow is not installed, so the wheel's own
Keras implementation cannot be run for a numeric comparison.
"""

from __future__ import annotations

from pathlib import Path

import joblib
import numpy as np
import pytest
import torch
from PIL import Image

from myspinbot.errors import NoFaceDetectedError
from myspinbot.faces import MTCNN, load_network, read_keras_arrays, weights_dir
from myspinbot.faces.boxes import crop_resize, nms
from myspinbot.faces.layers import keras_flatten, max_pool_same
from myspinbot.lipsync.errors import InvalidModelError
from myspinbot.sadtalker import landmarks

FIXTURES = Path(__file__).resolve().parents[3] / "shared" / "fixtures"
pytestmark = pytest.mark.skipif(weights_dir() is None, reason="the mtcnn wheel is not installed")


@pytest.fixture(scope="module")
def detector():
    return MTCNN.from_wheel()


@pytest.fixture(scope="module")
def portrait():
    path = FIXTURES / "portrait_astronaut.png"
    if not path.is_file():
        pytest.skip(f"fixture missing: {path}")
    return np.asarray(Image.open(path).convert("RGB"))


@pytest.mark.parametrize("name, count", [("pnet", 13), ("rnet", 16), ("onet", 21)])
def test_the_wheel_weights_load_strictly(name, count):
    arrays = read_keras_arrays(weights_dir() / f"{name}.lz4")
    assert len(arrays) == count and all(a.dtype == np.float32 for a in arrays)
    net = load_network(name)
    assert not net.training and not any(p.requires_grad for p in net.parameters())
    # the first conv kernel: Keras [kh, kw, in, out] -> torch [out, in, kh, kw]
    assert torch.equal(net.conv1.weight, torch.from_numpy(arrays[0]).permute(3, 2, 0, 1))
    assert torch.equal(net.prelu1.weight, torch.from_numpy(arrays[2]).reshape(-1))


def test_a_reshaped_array_is_refused(tmp_path):
    arrays = read_keras_arrays(weights_dir() / "onet.lz4")
    arrays[12] = arrays[12].reshape(256, 1152)  # fc5 kernel stored transposed
    joblib.dump(arrays, tmp_path / "onet.lz4")
    with pytest.raises(InvalidModelError, match=r"^\[invalid_model\] .*fc5\.weight") as err:
        load_network("onet", tmp_path / "onet.lz4")
    assert err.value.details["reshaped"] == ["fc5.weight: file [256, 1152] vs model [1152, 256]"]


def test_a_missing_array_or_a_foreign_file_is_refused(tmp_path):
    arrays = read_keras_arrays(weights_dir() / "pnet.lz4")
    joblib.dump(arrays[:-1], tmp_path / "short.lz4")
    with pytest.raises(InvalidModelError, match="conv4_2.bias"):
        load_network("pnet", tmp_path / "short.lz4")
    with pytest.raises(InvalidModelError, match="rnet"):
        load_network("rnet", weights_dir() / "pnet.lz4")
    (tmp_path / "junk.lz4").write_bytes(b"not lz4")
    with pytest.raises(InvalidModelError, match="not an MTCNN weight file"):
        load_network("pnet", tmp_path / "junk.lz4")


class _Payload:
    def __reduce__(self):
        return (print, ("unpickled code ran",))


def test_a_pickle_naming_code_is_refused_without_running_it(tmp_path, capsys):
    joblib.dump([_Payload()], tmp_path / "evil.lz4")
    with pytest.raises(InvalidModelError, match="builtins.print"):
        read_keras_arrays(tmp_path / "evil.lz4")
    assert "unpickled code ran" not in capsys.readouterr().out
    joblib.dump([np.array([object()], dtype=object)], tmp_path / "objects.lz4")
    with pytest.raises(InvalidModelError):
        read_keras_arrays(tmp_path / "objects.lz4")


def test_keras_layers_semantics():
    x = torch.arange(2 * 3 * 4 * 5, dtype=torch.float32).reshape(2, 3, 4, 5)  # N, C, H, W
    flat = keras_flatten(x)
    nhwc = x.permute(0, 2, 3, 1).numpy()  # the Keras tensor
    assert np.array_equal(flat.numpy(), nhwc.transpose(0, 2, 1, 3).reshape(2, -1))  # Permute((2, 1, 3))
    pooled = max_pool_same(torch.randn(1, 2, 5, 7), 2, 2)
    assert pooled.shape == (1, 2, 3, 4)  # ceil(5 / 2), ceil(7 / 2)
    after = max_pool_same(torch.tensor([[[[1.0, 2, 3, 4]]]]), 3, 2)  # TF: the odd pad goes after
    assert after.tolist() == [[[[3.0, 4.0]]]]
    split = max_pool_same(torch.tensor([[[[1.0, 2, 3]]]]), 3, 2)  # 2 pads: one on each side
    assert split.tolist() == [[[[2.0, 3.0]]]]


def test_nms_and_patches():
    boxes = np.array([[0, 0, 10, 10], [1, 1, 11, 11], [20, 20, 30, 30]], dtype=np.float64)
    assert nms(boxes, np.array([0.5, 0.9, 0.8]), 0.5).tolist() == [1, 2]
    image = np.random.default_rng(0).normal(size=(40, 50, 3)).astype(np.float32)
    patch = crop_resize(image, np.array([[0.0, 0.0, 50.0, 40.0]]), 24)
    assert patch.shape == (1, 3, 24, 24) and patch.dtype == np.float32
    assert np.allclose(patch[0, :, 0, 0], image[0, 0]) and np.allclose(patch[0, :, -1, -1], image[-1, -1])
    assert np.all(crop_resize(image, np.array([[100.0, 100.0, 120.0, 120.0]]), 12) == 0)


def test_one_face_with_plausible_points_on_the_portrait(detector, portrait):
    faces = detector.detect(portrait)
    assert len(faces) == 1
    face = faces[0]
    x1, y1, x2, y2 = face.box
    (lex, ley), (rex, rey), (nx, ny), (lmx, lmy), (rmx, rmy) = face.points
    assert face.score > 0.95 and 40 < x2 - x1 < 400
    assert lex < nx < rex and lmx < nx < rmx and lex < rex and lmx < rmx  # left / right
    assert max(ley, rey) < ny < min(lmy, rmy)  # eyes above the nose above the mouth corners
    assert np.all((face.points[:, 0] > x1) & (face.points[:, 0] < x2))
    assert np.all((face.points[:, 1] > y1) & (face.points[:, 1] < y2))
    assert 0.25 < (rex - lex) / (x2 - x1) < 0.7  # eye distance: a sensible fraction of the width
    assert abs(ley - rey) < 0.1 * (x2 - x1)  # an upright portrait: eyes nearly level


def test_blank_and_gradient_images_have_no_face(detector):
    assert detector.detect(np.full((240, 320, 3), 128, dtype=np.uint8)) == []
    across = np.tile(np.linspace(0, 255, 320), (240, 1)).astype(np.uint8)
    down = np.tile(np.linspace(255, 0, 240)[:, None], (1, 320)).astype(np.uint8)
    assert detector.detect(np.stack([across, down, across], axis=-1)) == []


def test_sadtalker_five_points_come_from_mtcnn(detector, portrait):
    points = landmarks.five_points(portrait)
    min_face = max(20, int(min(portrait.shape[:2]) * landmarks.MIN_FACE_FRACTION))
    assert np.allclose(points, detector.detect(portrait, min_face_size=min_face)[0].points)
    assert np.abs(points - detector.detect(portrait)[0].points).max() < 3  # the pyramid's start hardly matters
    with pytest.raises(NoFaceDetectedError, match=r"^\[no_face_detected\]"):
        landmarks.five_points(np.full((200, 200, 3), 128, dtype=np.uint8))


def test_the_haar_estimate_is_only_the_fallback_without_the_wheel(monkeypatch, portrait):
    monkeypatch.setattr(landmarks, "weights_dir", lambda: None)
    assert np.array_equal(landmarks.five_points(portrait), landmarks.haar_five_points(portrait))
