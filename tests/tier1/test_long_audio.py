"""Tier 1: long-audio helpers for the InfiniteTalk loop (window plan, audio spans, colour match).

Pure numpy; no ComfyUI, no torch, no model.
"""

from __future__ import annotations

import ast
import math
from pathlib import Path

import numpy as np
import pytest

from myspinbot.animate.long_audio import (
    AUDIO_CONTEXT_FRAMES,
    FEATURE_HOP,
    SAMPLES_PER_FRAME,
    audio_span,
    check_window,
    color_stats,
    encoder_feature_count,
    encoder_sample_rate,
    frames_for_audio,
    lab_to_rgb,
    match_color,
    plan_windows,
    rgb_to_lab,
    round_up_frames,
    slice_audio,
)
from myspinbot.errors import InvalidInputError

MODULE = Path(__file__).resolve().parents[2] / "custom_nodes" / "myspinbot" / "animate" / "long_audio.py"


def test_engine_module_imports_no_comfyui_or_torch():
    tree = ast.parse(MODULE.read_text())
    names = {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    names |= {n.module.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module and n.level == 0}
    assert not names & {"comfy", "comfy_api", "comfy_extras", "folder_paths", "nodes", "torch"}, names


# --------------------------------------------------------------------------- frame counts
@pytest.mark.parametrize("samples, rate, fps, expected", [
    (12 * 48000, 48000, 25, 300),          # exact
    (12 * 48000 + 1, 48000, 25, 301),      # one sample more -> one frame more
    (1, 16000, 25, 1),
    (44100 * 3 + 100, 44100, 24, 73),      # 3.0023 s * 24 = 72.05 -> 73
    (30000, 30000, 30000 / 1001, 30),      # 1 s at 29.97 fps -> 29.97 -> 30
])
def test_frames_for_audio_is_ceil_of_duration(samples, rate, fps, expected):
    n = frames_for_audio(samples, rate, fps)
    assert n == expected
    # the video covers the audio and is less than one frame longer
    assert n / fps >= samples / rate - 1e-12 and n / fps - samples / rate < 1 / fps


def test_frames_for_audio_rejects_empty_or_bad_rates():
    with pytest.raises(InvalidInputError):
        frames_for_audio(0, 16000, 25)
    with pytest.raises(InvalidInputError):
        frames_for_audio(100, 0, 25)


def test_round_up_frames_gives_4k_plus_1():
    assert [round_up_frames(n) for n in (0, 1, 2, 5, 6, 80, 81, 82)] == [1, 1, 5, 5, 9, 81, 81, 85]
    for n in range(1, 200):
        r = round_up_frames(n)
        assert r >= n and (r - 1) % 4 == 0 and r - n < 4


def test_check_window_rules():
    check_window(81, 9)
    check_window(5, 1)
    for bad in [(80, 9), (81, 8), (9, 9), (13, 13), (0, 1)]:
        with pytest.raises(InvalidInputError):
            check_window(*bad)


# --------------------------------------------------------------------------- window plan
@pytest.mark.parametrize("total", [1, 7, 25, 80, 81, 82, 150, 300, 301, 900, 1234])
@pytest.mark.parametrize("length, motion", [(81, 9), (33, 9), (81, 1), (49, 13), (5, 1)])
def test_plan_covers_every_frame_once(total, length, motion):
    windows = plan_windows(total, length, motion)
    made = []
    for i, w in enumerate(windows):
        assert w.index == i
        assert (w.length - 1) % 4 == 0 and 1 <= w.length <= length
        assert 0 < w.keep <= w.length - w.overlap and w.surplus >= 0
        if i == 0:
            assert w.start == 0 and w.overlap == 0
        else:
            # continues from the last `motion` frames of what exists so far
            assert w.overlap == motion and w.start == windows[i - 1].end - motion
            assert w.length >= motion + 4
        made.extend(range(w.first_new, w.end))
        if i < len(windows) - 1:
            assert w.surplus == 0 and w.length == (length if i else min(length, round_up_frames(total)))
    assert made == list(range(total))
    # only the trailing window may make frames past the end, and fewer than 4
    assert windows[-1].surplus < 4


def test_plan_for_12_s_at_25_fps_is_5_windows_with_a_short_tail():
    windows = plan_windows(300, 81, 9)
    assert [(w.start, w.length, w.keep) for w in windows] == [(0, 81, 81), (72, 81, 72), (144, 81, 72), (216, 81, 72),
                                                              (288, 13, 3)]
    assert windows[-1].end == 300


def test_plan_number_of_windows_grows_linearly():
    for total in (300, 900, 9000):
        n = len(plan_windows(total, 81, 9))
        assert n == 1 + math.ceil((total - 81) / 72)


# --------------------------------------------------------------------------- audio spans
def test_encoder_rate_puts_two_features_on_each_frame():
    assert encoder_sample_rate(25) == 16000
    assert encoder_sample_rate(24) == 15360
    assert encoder_sample_rate(30) == 19200
    assert SAMPLES_PER_FRAME == 2 * FEATURE_HOP == 640
    with pytest.raises(InvalidInputError):
        encoder_sample_rate(0)
    with pytest.raises(InvalidInputError):
        encoder_sample_rate(float("nan"))


def test_encoder_feature_count_matches_wav2vec2_conv_stack():
    # conv kernels (10,3,3,3,3,2,2) strides (5,2,2,2,2,2,2): receptive field 400, hop 320
    def conv_stack(n):
        for k, s in zip((10, 3, 3, 3, 3, 2, 2), (5, 2, 2, 2, 2, 2, 2)):
            n = (n - k) // s + 1
        return n

    for n in (400, 401, 719, 720, 16000, 16000 * 7 + 123):
        assert encoder_feature_count(n) == conv_stack(n)
    assert encoder_feature_count(399) == 0


@pytest.mark.parametrize("total", [300, 900])
def test_audio_spans_align_features_with_frames(total):
    windows = plan_windows(total, 81, 9)
    for w in windows:
        pre = AUDIO_CONTEXT_FRAMES if w.overlap else 0
        span = audio_span(w, pre=pre, margin_frames=50)
        assert span.first_frame == w.start - pre and span.frames == pre + w.length + 2
        assert span.feature_count == 2 * span.frames
        # feature j of the chunk starts at encoder sample sample_start + 320 j; feature
        # feature_offset + 2k must start exactly at frame first_frame + k
        for k in range(span.frames):
            assert span.sample_start + FEATURE_HOP * (span.feature_offset + 2 * k) == SAMPLES_PER_FRAME * (span.first_frame + k)
        # the encoder makes enough features from the chunk, with margin on both sides
        assert encoder_feature_count(span.sample_stop - span.sample_start) >= span.feature_offset + span.feature_count
        assert span.sample_start == max(0, (span.first_frame - 50) * SAMPLES_PER_FRAME)
        assert span.sample_stop == (span.first_frame + span.frames + 50) * SAMPLES_PER_FRAME
        # core's view of the window: with `pre` context frames, its index `pre` is the window start
        assert span.first_frame + pre == w.start


def test_audio_span_stops_the_margin_at_the_end_of_the_audio():
    total = 300
    available = total * SAMPLES_PER_FRAME - 123  # 12 s at 16 kHz, a little short of 300 whole frames
    windows = plan_windows(total, 81, 9)
    for w in windows:
        pre = AUDIO_CONTEXT_FRAMES if w.overlap else 0
        free = audio_span(w, pre=pre, margin_frames=50)
        span = audio_span(w, pre=pre, margin_frames=50, available=available)
        assert (span.sample_start, span.feature_offset, span.frames) == (free.sample_start, free.feature_offset, free.frames)
        needed = (span.first_frame + span.frames) * SAMPLES_PER_FRAME + 80
        assert span.sample_stop == max(needed, min(free.sample_stop, available))
        # still exactly enough features for the window and its context
        assert encoder_feature_count(span.sample_stop - span.sample_start) >= span.feature_offset + span.feature_count
    # the trailing window (13 frames from 288 + 4 context) only pads what it needs past the end
    last = audio_span(windows[-1], pre=2, margin_frames=50, available=available)
    assert last.sample_stop - available < 8 * SAMPLES_PER_FRAME
    assert encoder_feature_count(last.sample_stop - last.sample_start) == last.feature_offset + last.feature_count


def test_audio_span_rejects_context_before_the_start():
    w = plan_windows(300, 81, 9)[0]
    with pytest.raises(InvalidInputError):
        audio_span(w, pre=2)


def test_slice_audio_pads_zeros_past_the_end():
    speech = np.arange(1, 10001, dtype=np.float32)
    w = plan_windows(20, 81, 9)[0]  # 21 frames from frame 0
    span = audio_span(w, pre=0, margin_frames=3)
    chunk = slice_audio(speech, span)
    assert chunk.dtype == np.float32 and chunk.shape == (span.sample_stop - span.sample_start,)
    assert np.array_equal(chunk[:10000], speech) and not chunk[10000:].any()
    # a span in the middle is a plain copy
    speech = np.random.default_rng(0).standard_normal(640 * 400).astype(np.float32)
    w = plan_windows(300, 81, 9)[2]
    span = audio_span(w, pre=2, margin_frames=10)
    assert np.array_equal(slice_audio(speech, span), speech[span.sample_start:span.sample_stop])


# --------------------------------------------------------------------------- colour
def _frames(seed=0, n=6, h=24, w=20):
    rng = np.random.default_rng(seed)
    base = rng.uniform(0.2, 0.8, (1, h, w, 3)).astype(np.float32)
    return np.clip(base + rng.normal(0, 0.03, (n, h, w, 3)), 0, 1).astype(np.float32)


def test_lab_round_trip_and_reference_values():
    rgb = np.random.default_rng(1).uniform(0, 1, (1000, 3)).astype(np.float32)
    assert np.abs(lab_to_rgb(rgb_to_lab(rgb)) - rgb).max() < 2e-3
    lab = rgb_to_lab(np.array([[1.0, 1.0, 1.0], [0.0, 0.0, 0.0], [1.0, 0.0, 0.0]], np.float32))
    assert np.allclose(lab[0], [100, 0, 0], atol=0.05)
    assert np.allclose(lab[1], [0, 0, 0], atol=0.05)
    assert np.allclose(lab[2], [53.24, 80.09, 67.20], atol=0.1)  # sRGB red, D65


@pytest.mark.parametrize("space", ["lab", "rgb"])
def test_match_color_restores_the_reference_statistics(space):
    ref_frames = _frames(0)
    reference = color_stats(ref_frames, space)
    # a drifted window: warmer, darker, less contrast
    drifted = np.clip((ref_frames - 0.5) * 0.8 + 0.45 + np.array([0.06, 0.0, -0.05], np.float32), 0, 1)
    before = color_stats(drifted, space)
    fixed = match_color(drifted, reference)
    after = color_stats(fixed, space)
    assert fixed.dtype == np.float32 and fixed.shape == drifted.shape and 0 <= fixed.min() and fixed.max() <= 1
    scale = 100.0 if space == "lab" else 1.0
    assert np.abs(after.mean - reference.mean).max() < 0.1 * np.abs(before.mean - reference.mean).max() + 0.005 * scale
    assert np.abs(after.std - reference.std).max() < 0.2 * np.abs(before.std - reference.std).max() + 0.005 * scale
    assert np.abs(fixed - ref_frames).mean() < 0.3 * np.abs(drifted - ref_frames).mean()


def test_match_color_keeps_motion_and_respects_strength_and_gain_limit():
    frames = _frames(2)
    stats = color_stats(frames, "lab")
    # matching frames to their own statistics changes (almost) nothing
    assert np.abs(match_color(frames, stats) - frames).max() < 3e-3
    shifted = np.clip(frames + 0.1, 0, 1)
    assert np.array_equal(match_color(shifted, stats, strength=0.0), shifted)
    half = match_color(shifted, stats, strength=0.5)
    full = match_color(shifted, stats)
    assert np.abs(half - (shifted + full) / 2).max() < 1e-5
    # a flat window (std ~ 0) is not blown up beyond max_gain
    flat = np.full((3, 8, 8, 3), 0.5, np.float32)
    flat[:, :, :4] = 0.52
    out = match_color(flat, stats, max_gain=2.0)
    assert np.ptp(rgb_to_lab(out)[..., 0]) <= 2.0 * np.ptp(rgb_to_lab(flat)[..., 0]) + 1e-3
    # frame-to-frame differences (motion) survive a global transform in RGB
    moved = match_color(shifted, color_stats(frames, "rgb"))
    assert np.allclose(np.diff(moved, axis=0), np.diff(shifted, axis=0), atol=0.02)


def test_color_stats_subsamples_large_inputs_and_checks_shape():
    big = np.random.default_rng(3).uniform(0, 1, (40, 96, 128, 3)).astype(np.float32)
    exact = color_stats(big, "rgb", max_pixels=1 << 30)
    sub = color_stats(big, "rgb", max_pixels=20000)
    assert np.abs(exact.mean - sub.mean).max() < 0.01 and np.abs(exact.std - sub.std).max() < 0.01
    with pytest.raises(InvalidInputError):
        color_stats(np.zeros((4, 4)), "rgb")
    with pytest.raises(InvalidInputError):
        color_stats(big[:1], "hsv")
    with pytest.raises(InvalidInputError):
        match_color(big[:1], exact, color_stats(big[:1], "lab"))
