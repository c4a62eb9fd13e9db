"""Tier 1: the streaming MP4 writer, probe and readers (PyAV, no ComfyUI)."""

from __future__ import annotations


import numpy as np
import pytest

from myspinbot.errors import InvalidInputError
from myspinbot.video import Mp4Writer, even_size, iter_video_frames, load_audio, probe_media



def _tone(seconds: float, rate: int, channels: int, freq: float = 440.0) -> np.ndarray:
    t = np.arange(int(round(seconds * rate))) / rate
    rows = [0.3 * np.sin(2 * np.pi * freq * (c + 1) * t) for c in range(channels)]
    return np.stack(rows).astype(np.float32)


def _frames(n: int, w: int, h: int):
    for i in range(n):
        frame = np.zeros((h, w, 3), np.uint8)
        frame[:, (i * 3) % w] = 255  # a moving bar
        frame[..., 1] = i * 4 % 256
        yield frame


def test_even_size():
    assert even_size(513, 301) == (512, 300)
    assert even_size(512, 512) == (512, 512)
    w, h = even_size(4000, 3000, max_side=1024)
    assert (w, h) == (1024, 768)
    w, h = even_size(1001, 3001, max_side=1024)
    assert w % 2 == 0 and h % 2 == 0 and h <= 1024 and abs(w / h - 1001 / 3001) < 0.01


def test_frames_and_stereo_audio_make_valid_mp4(tmp_path):
    path = tmp_path / "clip.mp4"
    rate, fps, n = 48000, 25.0, 50  # 2.0 s of video, 1.97 s of audio
    audio = _tone(1.97, rate, 2)
    with Mp4Writer(path, 160, 120, fps, audio, rate) as writer:
        for frame in _frames(n, 160, 120):
            writer.write(frame)
        assert writer.frames_written == n
    info = probe_media(path)
    assert info["video_streams"] == 1 and info["audio_streams"] == 1
    v, a = info["video"], info["audio"]
    assert v["codec"] == "h264" and v["pix_fmt"] == "yuv420p"
    assert (v["width"], v["height"]) == (160, 120)
    assert v["frame_count"] == n and v["fps"] == pytest.approx(fps)
    assert v["duration_s"] == pytest.approx(n / fps, abs=1e-3)
    assert a["codec"] == "aac" and a["sample_rate"] == rate and a["channels"] == 2
    assert a["duration_s"] == pytest.approx(1.97, abs=0.03)
    decoded, decoded_rate = load_audio(path)
    assert decoded_rate == rate and decoded.shape[0] == 2
    assert decoded.shape[1] >= audio.shape[1] - 1024
    # The tone survives the codec: similar loudness per channel.
    core = slice(4800, audio.shape[1] - 4800)
    assert np.sqrt(np.mean(decoded[:, core] ** 2)) == pytest.approx(np.sqrt(np.mean(audio[:, core] ** 2)), rel=0.1)
    frames = list(iter_video_frames(path))
    assert len(frames) == n and frames[0].shape == (120, 160, 3) and frames[0].dtype == np.uint8


def test_audio_longer_than_video_is_written_on_close(tmp_path):
    path = tmp_path / "long_audio.mp4"
    with Mp4Writer(path, 64, 64, 10.0, _tone(2.5, 44100, 1), 44100) as writer:
        for frame in _frames(10, 64, 64):  # 1 s of video
            writer.write(frame)
    info = probe_media(path)
    assert info["video"]["duration_s"] == pytest.approx(1.0, abs=1e-3)
    assert info["audio"]["channels"] == 1 and info["audio"]["sample_rate"] == 44100
    assert info["audio"]["duration_s"] == pytest.approx(2.5, abs=0.03)


def test_unsupported_rate_is_resampled_and_fractional_fps(tmp_path):
    path = tmp_path / "resampled.mp4"
    with Mp4Writer(path, 64, 48, 30000 / 1001, _tone(1.0, 22000, 1), 22000) as writer:
        for frame in _frames(30, 64, 48):
            writer.write(frame)
    info = probe_media(path)
    assert info["audio"]["sample_rate"] == 48000  # AAC has no 22000 Hz mode
    assert info["audio"]["duration_s"] == pytest.approx(1.0, abs=0.03)
    assert info["video"]["fps"] == pytest.approx(29.97, abs=0.01)
    assert info["video"]["duration_s"] == pytest.approx(30 * 1001 / 30000, abs=1e-3)


def test_video_only(tmp_path):
    path = tmp_path / "silent.mp4"
    with Mp4Writer(path, 32, 32, 24.0) as writer:
        for frame in _frames(12, 32, 32):
            writer.write(frame)
    info = probe_media(path)
    assert info["audio"] is None and info["video"]["frame_count"] == 12


@pytest.mark.parametrize("size", [(161, 120), (160, 121), (0, 10)])
def test_odd_size_rejected(tmp_path, size):
    path = tmp_path / "odd.mp4"
    with pytest.raises(InvalidInputError) as err:
        Mp4Writer(path, size[0], size[1], 25.0)
    assert err.value.code == "invalid_input"
    assert not path.exists()


def test_bad_frame_and_audio_rejected(tmp_path):
    with pytest.raises(InvalidInputError):
        Mp4Writer(tmp_path / "a.mp4", 32, 32, 25.0, np.zeros((3, 100), np.float32), 48000)
    with pytest.raises(InvalidInputError):
        Mp4Writer(tmp_path / "b.mp4", 32, 32, 25.0, np.zeros((1, 100), np.float32), None)
    with pytest.raises(InvalidInputError):
        Mp4Writer(tmp_path / "c.mp4", 32, 32, 0.0)
    with Mp4Writer(tmp_path / "d.mp4", 32, 32, 25.0) as writer:
        with pytest.raises(InvalidInputError):
            writer.write(np.zeros((32, 32, 3), np.float32))
        with pytest.raises(InvalidInputError):
            writer.write(np.zeros((30, 32, 3), np.uint8))
        writer.write(np.zeros((32, 32, 3), np.uint8))
    assert probe_media(tmp_path / "d.mp4")["video"]["frame_count"] == 1


def test_failure_inside_block_removes_partial_file(tmp_path):
    path = tmp_path / "partial.mp4"
    with pytest.raises(RuntimeError, match="boom"):
        with Mp4Writer(path, 64, 64, 25.0, _tone(2.0, 48000, 1), 48000) as writer:
            for i, frame in enumerate(_frames(20, 64, 64)):
                writer.write(frame)
                if i == 9:
                    assert path.exists()
                    raise RuntimeError("boom")
    assert not path.exists()


def test_probe_missing_file(tmp_path):
    with pytest.raises(InvalidInputError):
        probe_media(tmp_path / "nope.mp4")
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"not a video")
    with pytest.raises(InvalidInputError):
        probe_media(bad)
