"""Tier 1: the face-restoration engine (``restore``) on the real portrait fixture, no ComfyUI.

Geometry is checked with stand-in restore functions (identity, a flat colour); the model
adapter with a randomly initialised GFPGAN built from spandrel's own architecture class,
saved as .pth and .safetensors and loaded back through ``spandrel.ModelLoader``.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from myspinbot.errors import InvalidInputError
from myspinbot.restore import (
    CROP_SIZE,
    TEMPLATE_512,
    FaceRestorer,
    FaceTracker,
    check_face_model,
    face_points,
    face_restore_fn,
    similarity_transform,
)


@pytest.fixture(scope="module")
def portrait(fixtures_dir) -> np.ndarray:
    return np.array(Image.open(fixtures_dir / "portrait_astronaut.png").convert("RGB"))


def _identity(crop: np.ndarray) -> np.ndarray:
    return crop


def _red(crop: np.ndarray) -> np.ndarray:
    out = np.zeros_like(crop)
    out[..., 0] = 1.0
    return out


def test_similarity_transform_recovers_a_known_transform():
    angle, scale, t = np.deg2rad(12.0), 1.7, np.array([30.0, -12.5])
    rot = scale * np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    src = np.array([[10.0, 20.0], [80.0, 25.0], [45.0, 90.0]])
    dst = src @ rot.T + t
    m = similarity_transform(src, dst)
    assert np.allclose(m[:, :2], rot, atol=1e-9) and np.allclose(m[:, 2], t, atol=1e-9)


def test_similarity_transform_refuses_coincident_points():
    with pytest.raises(InvalidInputError):
        similarity_transform(np.ones((3, 2)), TEMPLATE_512)


def test_face_points_are_eyes_above_mouth(portrait):
    pts = face_points(portrait)
    assert pts is not None and pts.shape == (3, 2)
    (lx, ly), (rx, ry), (mx, my) = pts
    assert lx < mx < rx and my > max(ly, ry)
    assert face_points(np.full((256, 256, 3), 128, np.uint8)) is None


def test_identity_restore_leaves_the_frame_nearly_unchanged(portrait):
    out = FaceRestorer(_identity)(portrait)
    assert out.shape == portrait.shape and out.dtype == np.uint8
    diff = np.abs(out.astype(int) - portrait.astype(int))
    assert diff.mean() < 0.5 and np.percentile(diff, 99.9) < 40  # only resampling error


def test_face_is_pasted_onto_an_upscaled_frame_at_the_right_place(portrait):
    up = cv2.resize(portrait, None, fx=2, fy=2, interpolation=cv2.INTER_CUBIC)
    restorer = FaceRestorer(_red)
    out = restorer(portrait, up)
    assert out.shape == up.shape and restorer.stats.restored == 1
    changed = np.abs(out.astype(int) - up.astype(int)).sum(-1) > 30
    ys, xs = np.nonzero(changed)
    pts = face_points(portrait) * 2
    cx, cy = pts[:, 0].mean(), pts[:, 1].mean()
    assert abs(xs.mean() - cx) < 0.1 * up.shape[1] and abs(ys.mean() - cy) < 0.15 * up.shape[0]
    assert changed.mean() < 0.25  # the face region only, the background is untouched
    assert (out[int(cy), int(cx)] == [255, 0, 0]).all() or out[int(cy), int(cx), 0] > 240


def test_strength_blends_over_the_output_frame(portrait):
    assert np.array_equal(FaceRestorer(_red, strength=0.0)(portrait), portrait)
    half = FaceRestorer(_red, strength=0.5)(portrait).astype(int)
    full = FaceRestorer(_red)(portrait).astype(int)
    changed = np.abs(full - portrait).sum(-1) > 30
    assert 0.3 < np.abs(half - portrait)[changed].mean() / np.abs(full - portrait)[changed].mean() < 0.7


def test_no_face_returns_the_output_unchanged():
    flat = np.full((200, 300, 3), 90, np.uint8)
    restorer = FaceRestorer(_red)
    out = restorer(flat)
    assert np.array_equal(out, flat) and restorer.stats.restored == 0 and restorer.stats.frames == 1


def test_bad_inputs_are_clear_errors(portrait):
    with pytest.raises(InvalidInputError):
        FaceRestorer(_identity, strength=1.5)
    with pytest.raises(InvalidInputError):
        FaceRestorer(_identity)(portrait.astype(np.float32))
    with pytest.raises(InvalidInputError):
        FaceRestorer(lambda crop: crop[:100])(portrait)


def test_tracker_smooths_jitter_and_holds_through_missed_frames(portrait):
    tracker = FaceTracker(smoothing=0.6, hold_frames=2)
    base = tracker.update(portrait)
    shifted = np.roll(portrait, 3, axis=1)  # a 3 px jump: smoothed, not followed at once
    moved = tracker.update(shifted)
    raw = face_points(shifted)
    assert 0 < abs(moved[0, 0] - base[0, 0]) < abs(raw[0, 0] - base[0, 0]) + 1e-9
    blank = np.full_like(portrait, 128)
    assert tracker.update(blank) is not None and tracker.update(blank) is not None
    assert tracker.update(blank) is None  # held for 2 frames, then dropped


def _random_gfpgan():
    import torch
    from spandrel.architectures.GFPGAN import GFPGAN

    torch.manual_seed(0)
    # The only configuration spandrel's GFPGAN loader builds (GFPGAN v1.3/v1.4 checkpoints).
    return GFPGAN(out_size=512, num_style_feat=512, channel_multiplier=2, decoder_load_path=None,
                  fix_decoder=False, num_mlp=8, input_is_latent=True, different_w=True, narrow=1, sft_half=True)


@pytest.fixture(scope="module")
def gfpgan_files(tmp_path_factory) -> dict[str, Path]:
    import safetensors.torch
    import torch

    folder = tmp_path_factory.mktemp("gfpgan")
    sd = {k: v.contiguous() for k, v in _random_gfpgan().state_dict().items()}
    pth, st = folder / "GFPGANv1.4.pth", folder / "GFPGANv1.4.safetensors"
    torch.save({"params_ema": sd}, pth)  # the official checkpoints nest the weights like this
    safetensors.torch.save_file(sd, str(st))
    return {"pth": pth, "safetensors": st}


@pytest.mark.parametrize("kind", ["pth", "safetensors"])
def test_random_gfpgan_restores_a_face_deterministically(gfpgan_files, portrait, kind):
    from spandrel import ModelLoader

    model = ModelLoader().load_from_file(str(gfpgan_files[kind])).eval()
    assert model.architecture.id == "GFPGAN"
    restore = face_restore_fn(model)
    crop = np.random.default_rng(0).random((CROP_SIZE, CROP_SIZE, 3), dtype=np.float32)
    a, b = restore(crop), restore(crop)
    assert a.shape == crop.shape and a.dtype == np.float32 and 0.0 <= a.min() and a.max() <= 1.0
    assert np.array_equal(a, b)  # fixed StyleGAN2 noise: no flicker between video frames
    if kind == "pth":
        out = FaceRestorer(restore)(portrait)
        assert out.shape == portrait.shape and not np.array_equal(out, portrait)


def test_an_upscale_model_is_refused_as_face_model():
    import torch
    from spandrel import ModelLoader
    from spandrel.architectures.Compact import Compact

    torch.manual_seed(0)
    model = ModelLoader().load_from_state_dict(Compact(num_feat=8, num_conv=1, upscale=2).state_dict())
    with pytest.raises(InvalidInputError, match="face restoration model"):
        check_face_model(model)
