"""Tier 1: SadTalker's landmark source selection (``sadtalker.landmarks.five_points``).

``auto`` uses RetinaFace + FAN when both facexlib files are in the given folders and MTCNN
otherwise; ``mtcnn`` / ``retinaface_fan`` force one; ``retinaface_fan`` without the files is
``models_missing``; no face is ``no_face_detected``. The pair runs here with random weights in
the official layout (the detection itself is replaced where a known box is needed).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from myspinbot.errors import InvalidInputError, ModelsMissingError, NoFaceDetectedError
from myspinbot.faces.fan98 import FAN98
from myspinbot.faces.mtcnn import Face
from myspinbot.faces.retinaface import RetinaFace
from myspinbot.faces.retinaface_decode import Detection
from myspinbot.sadtalker import landmarks
from myspinbot.sadtalker.engine import SadTalkerSettings, _check


@pytest.fixture(scope="module")
def facexlib_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("facexlib")
    torch.manual_seed(0)
    torch.save({"module." + k: v for k, v in RetinaFace().state_dict().items()},
               folder / "detection_Resnet50_Final.pth")
    torch.save({"state_dict": FAN98().state_dict()}, folder / "alignment_WFLW_4HG.pth")
    return folder


class _FakeMTCNN:
    def detect(self, image, min_face_size=20):
        return [Face(box=np.array([1.0, 1, 9, 9]), score=0.9, points=np.full((5, 2), 4.0))]


@pytest.fixture
def fake_mtcnn(monkeypatch):
    monkeypatch.setattr(landmarks, "_detector", lambda: _FakeMTCNN())
    monkeypatch.setattr(landmarks, "weights_dir", lambda: "present")


IMAGE = np.full((120, 100, 3), 128, np.uint8)


def test_auto_without_the_files_is_mtcnn(tmp_path, fake_mtcnn, monkeypatch):
    monkeypatch.setattr(landmarks, "retinaface_fan_points", lambda *a, **k: pytest.fail("pair used"))
    assert (landmarks.five_points(IMAGE, "auto", [tmp_path]) == 4.0).all()
    assert (landmarks.five_points(IMAGE) == 4.0).all()  # the default, as before


def test_auto_with_both_files_is_retinaface_fan(facexlib_dir, tmp_path, fake_mtcnn, monkeypatch):
    seen = {}

    def pair(image, files, device="cpu"):
        seen["files"] = files
        return np.zeros((5, 2))

    monkeypatch.setattr(landmarks, "retinaface_fan_points", pair)
    assert (landmarks.five_points(IMAGE, "auto", [tmp_path, facexlib_dir]) == 0).all()
    assert [p.name for p in seen["files"]] == ["detection_Resnet50_Final.pth", "alignment_WFLW_4HG.pth"]
    assert (landmarks.five_points(IMAGE, "mtcnn", [facexlib_dir]) == 4.0).all()  # forced


def test_only_one_file_is_not_the_pair(tmp_path, fake_mtcnn):
    (tmp_path / "detection_Resnet50_Final.pth").write_bytes(b"x")
    assert landmarks.facexlib_files([tmp_path]) is None
    assert (landmarks.five_points(IMAGE, "auto", [tmp_path]) == 4.0).all()


def test_retinaface_fan_without_files_is_models_missing(tmp_path):
    with pytest.raises(ModelsMissingError, match=r"^\[models_missing\] .*alignment_WFLW_4HG\.pth") as err:
        landmarks.five_points(IMAGE, "retinaface_fan", [tmp_path])
    assert err.value.details["missing"] == list(landmarks.FACEXLIB_MODELS)


def test_an_unknown_source_is_refused():
    with pytest.raises(InvalidInputError, match="landmarks must be one of auto, mtcnn, retinaface_fan"):
        landmarks.five_points(IMAGE, "dlib")
    with pytest.raises(InvalidInputError, match="landmarks must be one of"):
        _check(SadTalkerSettings(landmarks="dlib"), type("M", (), {"config": type("C", (), {"coeff_channels": 70})})())


def test_the_pair_end_to_end_with_a_known_box(facexlib_dir, monkeypatch):
    box = np.array([20.0, 30.0, 84.0, 110.0])
    monkeypatch.setattr(landmarks, "detect", lambda net, image: [Detection(box=box, score=0.99,
                                                                              points=np.zeros((5, 2)))])
    points = landmarks.five_points(IMAGE, "retinaface_fan", [facexlib_dir])
    assert points.shape == (5, 2) and points.dtype == np.float64
    assert (points[:, 0] >= 20).all() and (points[:, 0] <= 84).all()
    assert (points[:, 1] >= 30).all() and (points[:, 1] <= 110).all()


def test_the_pair_without_a_face_is_no_face_detected(facexlib_dir, monkeypatch):
    monkeypatch.setattr(landmarks, "detect", lambda net, image: [])
    with pytest.raises(NoFaceDetectedError, match=r"^\[no_face_detected\] RetinaFace found no face"):
        landmarks.five_points(IMAGE, "retinaface_fan", [facexlib_dir])


def test_the_real_detector_on_a_flat_image_finds_no_face(facexlib_dir):
    """Random weights, the whole path (load, detect at 0.97): a flat image scores no face, or a
    face whose box the FAN turns into five points; either way no other error."""
    try:
        points = landmarks.five_points(np.zeros((64, 64, 3), np.uint8), "retinaface_fan", [facexlib_dir])
    except NoFaceDetectedError:
        return
    assert points.shape == (5, 2) and np.isfinite(points).all()
