"""Tier 1: animate the real portrait fixture to real speech, end to end, and check the MP4.

The speech is the two fixture recordings ("Front left", "Front right") concatenated with
silence: 0.3 s silence + left + 1.0 s silence + right + 0.5 s silence, about 4.8 s at
48 kHz mono. The quiet stretches give the mouth-vs-audio correlation something to follow.
"""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest

from myspinbot.animate import animate_portrait
from myspinbot.video import iter_video_frames, load_audio, probe_media

from media_checks import mouth_motion

FPS = 25.0


@pytest.fixture(scope="module")
def portrait(fixtures_dir) -> np.ndarray:
    bgr = cv2.imread(str(fixtures_dir / "portrait_astronaut.png"), cv2.IMREAD_COLOR)
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


@pytest.fixture(scope="module")
def speech(fixtures_dir) -> tuple[np.ndarray, int]:
    left, rate = load_audio(fixtures_dir / "speech_front_left.wav")
    right, rate_r = load_audio(fixtures_dir / "speech_front_right.wav")
    assert rate == rate_r == 48000 and left.shape[0] == right.shape[0] == 1

    def silence(seconds: float) -> np.ndarray:
        return np.zeros((1, int(seconds * rate)), np.float32)

    audio = np.concatenate([silence(0.3), left, silence(1.0), right, silence(0.5)], axis=1)
    return audio, rate


@pytest.fixture(scope="module")
def animated(portrait, speech, tmp_path_factory):
    audio, rate = speech
    out = tmp_path_factory.mktemp("animate") / "talking.mp4"
    calls: list[tuple[int, int]] = []
    result = animate_portrait(portrait, audio, rate, out, fps=FPS, seed=0, on_progress=lambda d, t: calls.append((d, t)))
    frames = np.stack(list(iter_video_frames(out))).astype(np.float32)
    return result, calls, frames


def test_mp4_streams_and_durations(animated, speech, portrait):
    result, calls, frames = animated
    audio, rate = speech
    audio_s = audio.shape[1] / rate
    info = probe_media(result.path)
    assert info["video_streams"] == 1 and info["audio_streams"] == 1
    assert info["video"]["codec"] == "h264" and info["audio"]["codec"] == "aac"
    assert (info["video"]["width"], info["video"]["height"]) == (portrait.shape[1], portrait.shape[0])
    assert (result.width, result.height) == (portrait.shape[1], portrait.shape[0])
    assert result.frame_count == math.ceil(audio_s * FPS) == info["video"]["frame_count"] == len(frames)
    assert abs(info["video"]["duration_s"] - audio_s) <= 1.0 / FPS
    assert info["video"]["duration_s"] >= audio_s - 1e-6  # the video covers the audio
    assert info["audio"]["duration_s"] == pytest.approx(audio_s, abs=0.03)
    assert info["audio"]["sample_rate"] == rate and info["audio"]["channels"] == 1
    assert result.faces_found == 1 and "the only face" in result.summary
    assert calls == [(i, result.frame_count) for i in range(1, result.frame_count + 1)]


def test_mouth_follows_speech_and_forehead_stays_still(animated, speech):
    result, _, frames = animated
    audio, rate = speech
    r, mouth_change, forehead_change = mouth_motion(frames, result.face_box, audio, rate, FPS)
    assert r >= 0.3, f"mouth motion does not follow speech (Pearson r={r:.2f})"
    assert mouth_change.max() > 10.0  # visibly opens (mean abs change in 0..255 units)
    assert forehead_change.mean() < 0.25 * mouth_change.mean(), (forehead_change.mean(), mouth_change.mean())


def test_progress_error_stops_and_removes_file(portrait, speech, tmp_path):
    audio, rate = speech
    out = tmp_path / "stopped.mp4"
    seen: list[int] = []

    class Interrupted(Exception):
        pass

    def progress(done: int, total: int) -> None:
        seen.append(done)
        assert out.exists()  # the file is being written while frames stream in
        if done == 5:
            raise Interrupted("stop")

    with pytest.raises(Interrupted):
        animate_portrait(portrait, audio, rate, out, on_progress=progress)
    assert seen == [1, 2, 3, 4, 5]
    assert not out.exists()


def test_grayscale_float_and_rgba_portraits(portrait, tmp_path):
    audio = np.zeros((2, 4800), np.float32)  # 0.1 s of stereo silence
    gray = cv2.cvtColor(portrait, cv2.COLOR_RGB2GRAY)
    res = animate_portrait(gray, audio, 48000, tmp_path / "gray.mp4", blink=False, head_motion=0.0)
    assert res.frame_count == 3 and probe_media(res.path)["audio"]["channels"] == 2
    rgba = np.dstack([portrait, np.full(portrait.shape[:2], 255, np.uint8)])
    res = animate_portrait(rgba.astype(np.float32) / 255.0, audio[0], 48000, tmp_path / "rgba.mp4", max_side=256)
    assert (res.width, res.height) == (256, 256)
