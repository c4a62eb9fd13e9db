"""Tier 1: the streaming frame-map engine (``video.frame_map``, ``video.remux``) with plain numpy callables, no ComfyUI."""

from __future__ import annotations

import io
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from myspinbot.errors import InvalidInputError
from myspinbot.video import Mp4Writer, iter_video_frames, probe_media
from myspinbot.video.frame_map import encode_frames, map_video_frames, nearest_scale

W, H, FPS, N, RATE = 40, 30, 25.0, 20, 44100


def _tone(seconds: float, rate: int = RATE) -> np.ndarray:
    t = np.arange(int(round(seconds * rate))) / rate
    return np.stack([0.3 * np.sin(2 * np.pi * 440 * t), 0.2 * np.sin(2 * np.pi * 660 * t)]).astype(np.float32)


def _frame(i: int, w: int = W, h: int = H) -> np.ndarray:
    y, x = np.mgrid[0:h, 0:w]
    frame = np.zeros((h, w, 3), np.uint8)
    frame[..., 0] = (x * 255 // max(1, w - 1)).astype(np.uint8)
    frame[..., 1] = (y * 255 // max(1, h - 1)).astype(np.uint8)
    frame[..., 2] = (i * 12) % 256
    frame[:, (i * 2) % w] = 255  # a moving bar
    return frame


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("upscale") / "clip.mp4"
    with Mp4Writer(path, W, H, FPS, _tone(0.9), RATE, crf=10) as writer:
        for i in range(N):
            writer.write(_frame(i))
    return path


@pytest.fixture(scope="module")
def silent_clip(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("upscale") / "silent.mp4"
    with Mp4Writer(path, W, H, 12.5, crf=10) as writer:
        for i in range(7):
            writer.write(_frame(i))
    return path


def _audio_packets(path: Path) -> list[tuple]:
    with av.open(str(path)) as c:
        stream = c.streams.audio[0]
        return [(p.pts, p.dts, p.duration, bytes(p)) for p in c.demux(stream) if p.size]


def _leftovers(folder: Path, keep: set[str]) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name not in keep)


def test_nearest_x2_size_frames_fps_and_audio_copied(clip, tmp_path):
    out = tmp_path / "up.mp4"
    calls = []
    result = map_video_frames(clip, out, nearest_scale(2), on_progress=lambda d, t: calls.append((d, t)))
    assert result.path == out and out.is_file()
    assert result.frame_count == N and result.fps == Fraction(25)
    assert result.in_size == (W, H) and result.out_size == result.mapped_size == (2 * W, 2 * H)
    assert not result.cropped and result.audio == "copied" and result.audio_codec == "aac"
    src, dst = probe_media(clip), probe_media(out)
    assert (dst["video"]["width"], dst["video"]["height"]) == (2 * W, 2 * H)
    assert dst["video"]["frame_count"] == N and dst["video"]["fps"] == pytest.approx(FPS)
    assert dst["video"]["duration_s"] == pytest.approx(src["video"]["duration_s"], abs=1e-3)
    assert dst["audio"] == src["audio"]  # codec, sample rate, channels, duration
    # Remuxed, not re-encoded: every audio packet identical, timestamps included.
    assert _audio_packets(out) == _audio_packets(clip)
    # Progress once per frame, after it was written.
    assert calls == [(i, N) for i in range(1, N + 1)]
    # The content is the nearest-neighbour enlargement of the source (up to H.264 loss).
    for a, b in zip(iter_video_frames(clip), iter_video_frames(out)):
        expected = np.repeat(np.repeat(a, 2, 0), 2, 1).astype(np.int16)
        assert np.abs(b.astype(np.int16) - expected).mean() < 4.0
    assert _leftovers(tmp_path, {"up.mp4"}) == []


def test_progress_exception_leaves_no_output(clip, tmp_path):
    out = tmp_path / "up.mp4"

    class Interrupted(Exception):
        pass

    def on_progress(done, total):
        if done == 5:
            raise Interrupted

    with pytest.raises(Interrupted):
        map_video_frames(clip, out, nearest_scale(2), on_progress=on_progress)
    assert not out.exists()
    assert _leftovers(tmp_path, set()) == []  # no partial or hidden temporary file


def test_failure_keeps_existing_destination(clip, tmp_path):
    out = tmp_path / "up.mp4"
    out.write_bytes(b"previous result")

    def broken(frame):
        raise RuntimeError("model failed")

    with pytest.raises(RuntimeError, match="model failed"):
        map_video_frames(clip, out, broken)
    assert out.read_bytes() == b"previous result"
    assert _leftovers(tmp_path, {"up.mp4"}) == []


def test_reencode_audio(clip, tmp_path):
    result = map_video_frames(clip, tmp_path / "re.mp4", nearest_scale(3), audio="reencode")
    assert result.audio == "reencoded" and result.out_size == (3 * W, 3 * H)
    src, dst = probe_media(clip)["audio"], probe_media(result.path)["audio"]
    assert dst["codec"] == "aac" and dst["sample_rate"] == src["sample_rate"] and dst["channels"] == src["channels"]
    assert dst["duration_s"] == pytest.approx(src["duration_s"], abs=0.05)


def _avi_with_u8_pcm(path: Path) -> None:
    """H.264 + unsigned 8-bit PCM in AVI: an audio codec MP4 cannot hold."""
    with av.open(str(path), "w", format="avi") as c:
        v = c.add_stream("libx264", rate=25)
        v.width, v.height, v.pix_fmt = W, H, "yuv420p"
        a = c.add_stream("pcm_u8", rate=8000)
        a.codec_context.layout = "mono"
        tone = (0.3 * np.sin(2 * np.pi * 300 * np.arange(8000) / 8000)).astype(np.float32)
        for i in range(10):
            c.mux(v.encode(av.VideoFrame.from_ndarray(_frame(i), format="rgb24")))
        for start in range(0, 8000, 800):
            block = (tone[start:start + 800] * 127 + 128).astype(np.uint8)[None]
            frame = av.AudioFrame.from_ndarray(block, format="u8", layout="mono")
            frame.sample_rate, frame.pts, frame.time_base = 8000, start, Fraction(1, 8000)
            c.mux(a.encode(frame))
        c.mux(v.encode(None))
        c.mux(a.encode(None))


def test_audio_codec_mp4_cannot_hold_is_reencoded(tmp_path):
    src = tmp_path / "u8.avi"
    _avi_with_u8_pcm(src)
    assert probe_media(src)["audio"]["codec"] == "pcm_u8"
    result = map_video_frames(src, tmp_path / "out.mp4", nearest_scale(2))
    assert result.audio == "reencoded" and result.audio_codec == "aac" and result.frame_count == 10
    audio = probe_media(result.path)["audio"]
    assert audio["sample_rate"] == 8000 and audio["channels"] == 1
    assert audio["duration_s"] == pytest.approx(1.0, abs=0.15)


def test_no_audio_and_file_object_source(silent_clip, tmp_path):
    result = map_video_frames(io.BytesIO(silent_clip.read_bytes()), tmp_path / "s.mp4", nearest_scale(2))
    assert result.audio == "none" and result.frame_count == 7 and result.fps == Fraction(25, 2)
    info = probe_media(result.path)
    assert info["audio_streams"] == 0 and info["video"]["frame_count"] == 7
    assert info["video"]["fps"] == pytest.approx(12.5)
    assert _leftovers(tmp_path, {"s.mp4"}) == []


def test_odd_mapped_size_is_cropped_to_even(silent_clip, tmp_path):
    result = map_video_frames(silent_clip, tmp_path / "odd.mp4", lambda f: np.ascontiguousarray(f[:-1, :-1]))
    assert result.mapped_size == (W - 1, H - 1) and result.out_size == (W - 2, H - 2) and result.cropped
    info = probe_media(result.path)["video"]
    assert (info["width"], info["height"]) == (W - 2, H - 2)


@pytest.mark.parametrize(
    "fn, message",
    [
        (lambda f: f.astype(np.float32), "uint8"),
        (lambda f: f[..., :2], "uint8"),
        (lambda f, n=[0]: (n.__setitem__(0, n[0] + 1), f if n[0] < 3 else f[:-2])[1], "changed the frame size"),
    ],
)
def test_bad_frame_function_output(silent_clip, tmp_path, fn, message):
    with pytest.raises(InvalidInputError, match=message):
        map_video_frames(silent_clip, tmp_path / "bad.mp4", fn)
    assert _leftovers(tmp_path, set()) == []


def test_missing_and_unreadable_input(tmp_path):
    with pytest.raises(InvalidInputError, match="not found"):
        map_video_frames(tmp_path / "nope.mp4", tmp_path / "o.mp4", nearest_scale(2))
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"not a video")
    with pytest.raises(InvalidInputError):
        map_video_frames(bad, tmp_path / "o.mp4", nearest_scale(2))
    assert not (tmp_path / "o.mp4").exists()


def test_encode_frames_writes_silent_mp4(tmp_path):
    calls = []
    result = encode_frames((_frame(i, 33, 21) for i in range(5)), tmp_path / "f.mp4", 10.0,
                           on_progress=lambda d, t: calls.append(d), total=5)
    assert result.frame_count == 5 and result.out_size == (32, 20) and result.audio == "none"
    assert calls == [1, 2, 3, 4, 5]
    info = probe_media(result.path)
    assert info["video"]["frame_count"] == 5 and info["video"]["fps"] == pytest.approx(10.0)
    with pytest.raises(InvalidInputError):
        encode_frames([], tmp_path / "empty.mp4", 10.0)
    assert _leftovers(tmp_path, {"f.mp4"}) == []
