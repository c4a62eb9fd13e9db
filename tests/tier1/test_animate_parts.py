"""Tier 1: the animator's pieces (face finding, input conversion, mouth drive, idle motion)
on the real portrait fixture and synthetic signals."""

from __future__ import annotations


import cv2
import numpy as np
import pytest

from myspinbot.animate import (
    animate_portrait,
    blink_closure,
    detect_faces,
    fit_portrait,
    frame_count_for,
    head_drift,
    locate_face,
    mouth_drive,
    to_audio_channels_first,
    to_rgb_uint8,
)
from myspinbot.errors import InvalidInputError, NoFaceDetectedError



@pytest.fixture(scope="module")
def portrait(fixtures_dir) -> np.ndarray:
    bgr = cv2.imread(str(fixtures_dir / "portrait_astronaut.png"), cv2.IMREAD_COLOR)
    assert bgr is not None
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def _no_face_image() -> np.ndarray:
    rng = np.random.default_rng(3)
    ramp = np.linspace(0, 255, 320, dtype=np.float32)
    base = ramp[None, :, None] * 0.6 + ramp[:240, None, None] * 0.4
    return np.clip(base + rng.normal(0, 25, (240, 320, 3)), 0, 255).astype(np.uint8)


def test_detects_face_in_portrait(portrait):
    detection = locate_face(portrait)
    assert detection.faces_found == 1
    layout = detection.layout
    cx, cy = layout.face.center
    # The astronaut's face is upper-centre-left in the 512x512 photo, about 90 px wide.
    assert 190 < cx < 260 and 80 < cy < 150
    assert 60 < layout.face.w < 140
    left, right = layout.eyes
    assert left.center[0] < cx < right.center[0]
    assert layout.face.y < layout.eye_line_y < cy < layout.mouth_center[1] < layout.chin_y


def test_no_face_raises_with_code(tmp_path):
    image = _no_face_image()
    with pytest.raises(NoFaceDetectedError) as err:
        locate_face(image)
    assert err.value.code == "no_face_detected"
    assert "no face found in the portrait" in str(err.value)
    out = tmp_path / "none.mp4"
    with pytest.raises(NoFaceDetectedError):
        animate_portrait(image, np.zeros((1, 4800), np.float32), 48000, out)
    assert not out.exists()


def test_two_faces_largest_chosen(portrait, tmp_path):
    # The portrait pasted twice side by side: full size on the left, 60 % on the right.
    small = cv2.resize(portrait, (308, 308), interpolation=cv2.INTER_AREA)
    canvas = np.full((512, 512 + 308, 3), 200, np.uint8)
    canvas[:, :512] = portrait
    canvas[100:408, 512:] = small
    faces = detect_faces(canvas)
    assert len(faces) == 2
    assert faces[0].area > faces[1].area and faces[0].center[0] < 512
    result = animate_portrait(canvas, np.zeros((1, 9600), np.float32), 48000, tmp_path / "two.mp4", fps=10)
    assert result.faces_found == 2
    assert result.face_box == faces[0].as_tuple()
    assert "largest of 2 faces" in result.summary
    assert (result.width, result.height) == (820, 512)


def test_image_conversions():
    rgb = np.zeros((20, 30, 3), np.uint8)
    rgb[..., 0] = 200
    assert to_rgb_uint8(rgb) is rgb or np.array_equal(to_rgb_uint8(rgb), rgb)
    gray = np.full((20, 30), 77, np.uint8)
    assert to_rgb_uint8(gray).shape == (20, 30, 3) and (to_rgb_uint8(gray) == 77).all()
    rgba = np.concatenate([rgb, np.zeros((20, 30, 1), np.uint8)], axis=2)
    assert (to_rgb_uint8(rgba) == 255).all()  # fully transparent -> white
    rgba[..., 3] = 255
    assert np.array_equal(to_rgb_uint8(rgba), rgb)
    as_float = to_rgb_uint8(rgb.astype(np.float32) / 255.0)
    assert as_float.dtype == np.uint8 and np.abs(as_float.astype(int) - rgb).max() <= 1
    assert to_rgb_uint8(rgb[None]).shape == (20, 30, 3)  # a batch of one
    with pytest.raises(InvalidInputError):
        to_rgb_uint8(np.zeros((20, 30, 2), np.uint8))
    with pytest.raises(InvalidInputError):
        to_rgb_uint8(np.zeros((8, 8, 3), np.uint8))


def test_fit_portrait_downscales_to_even():
    big = np.zeros((1501, 2001, 3), np.uint8)
    out = fit_portrait(big, 1024)
    assert max(out.shape[:2]) <= 1024 and out.shape[0] % 2 == 0 and out.shape[1] % 2 == 0
    assert abs(out.shape[1] / out.shape[0] - 2001 / 1501) < 0.01
    odd = np.zeros((301, 401, 3), np.uint8)
    assert fit_portrait(odd).shape == (300, 400, 3)


def test_audio_conversions():
    mono = to_audio_channels_first(np.zeros(100, np.float32), 16000)
    assert mono.shape == (1, 100) and mono.dtype == np.float32
    stereo = np.zeros((2, 100), np.float32)
    assert to_audio_channels_first(stereo, 16000) is stereo  # no copy
    assert to_audio_channels_first(np.zeros((6, 100)), 16000).shape == (1, 100)
    with pytest.raises(InvalidInputError):
        to_audio_channels_first(np.zeros((100, 2), np.float32), 16000)  # [T, C]
    with pytest.raises(InvalidInputError):
        to_audio_channels_first(np.zeros((1, 100), np.int16), 16000)
    with pytest.raises(InvalidInputError):
        to_audio_channels_first(np.zeros((1, 100), np.float32), 0)


def test_mouth_drive_follows_loudness():
    rate, fps = 16000, 25.0
    t = np.arange(3 * rate) / rate
    # 1 s silence, 1 s of a vowel-like buzz, 1 s near-silence (noise floor).
    buzz = 0.4 * np.sign(np.sin(2 * np.pi * 140 * t)) * (np.sin(2 * np.pi * 3 * t) ** 2)
    audio = np.where((t >= 1) & (t < 2), buzz, 0.0) + np.random.default_rng(0).normal(0, 1e-4, t.size)
    n = frame_count_for(3.0, fps)
    assert n == 75
    drive = mouth_drive(audio[None].astype(np.float32), rate, fps, n)
    assert drive.opening.shape == (n,) and drive.opening.dtype == np.float32
    assert 0.0 <= drive.opening.min() and drive.opening.max() <= 1.0
    assert drive.opening[:23].max() < 0.05 and drive.opening[55:].max() < 0.05
    assert drive.opening[25:50].max() > 0.8
    assert np.abs(drive.width).max() <= 1.0
    silent = mouth_drive(np.zeros((1, rate), np.float32), rate, fps, 25)
    assert not silent.opening.any()


def test_frame_count_covers_audio():
    assert frame_count_for(4.0, 25.0) == 100
    assert frame_count_for(4.001, 25.0) == 101
    assert frame_count_for(0.001, 25.0) == 1


def test_blinks_are_seeded_and_spaced():
    fps = 25.0
    a = blink_closure(1500, fps, seed=7)  # 60 s
    assert np.array_equal(a, blink_closure(1500, fps, seed=7))
    assert not np.array_equal(a, blink_closure(1500, fps, seed=8))
    assert a.min() >= 0.0 and a.max() <= 1.0
    closed = a > 0.5
    starts = np.flatnonzero(closed[1:] & ~closed[:-1]) + 1
    assert 60 / 7 <= len(starts) <= 60 / 1.8  # one every ~2-6 s
    gaps = np.diff(starts) / fps
    assert gaps.min() > 1.8 and gaps.max() < 6.5
    runs = np.diff(np.flatnonzero(np.diff(np.r_[0, (a > 0.02).astype(int), 0])))[::2] / fps
    assert runs.max() <= 0.25  # each blink is short


def test_head_drift_is_small_and_smooth():
    drift = head_drift(750, 25.0, 0.5, seed=1)
    assert drift.shape == (750, 2) and drift.dtype == np.float32
    assert np.abs(drift).max() <= 0.5 + 1e-6
    assert np.abs(np.diff(drift, axis=0)).max() < 0.05  # per-frame step, px
    assert not head_drift(10, 25.0, 0.0).any()
