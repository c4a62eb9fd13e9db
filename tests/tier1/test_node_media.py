"""Tier 1: the lip-sync node's conversions from ComfyUI types to files (``nodes._media``),
which import no ComfyUI module: IMAGE batches, AUDIO dicts and (duck-typed) VIDEO objects."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from myspinbot.errors import InvalidInputError
from myspinbot.nodes._media import (
    TempFiles,
    audio_to_wav_file,
    faceless_report,
    images_to_face_file,
    video_to_file,
)
from myspinbot.speech.audio_io import load_audio
from myspinbot.video.probe import probe_media
from myspinbot.video.reader import iter_video_frames
from myspinbot.video.writer import Mp4Writer


def _gradient(b: int, h: int, w: int, c: int = 3) -> torch.Tensor:
    y, x = torch.meshgrid(torch.linspace(0, 1, h), torch.linspace(0, 1, w), indexing="ij")
    frames = [torch.stack([x, y, torch.full_like(x, i / max(b, 1))] + [torch.ones_like(x)] * (c - 3), -1)
              for i in range(b)]
    return torch.stack(frames)


def test_one_image_is_a_png_still(tmp_path):
    temp = TempFiles(tmp_path / "t", "lipsync_in")
    images = _gradient(1, 21, 30, c=4)  # RGBA: alpha dropped
    path = images_to_face_file(images, 25.0, temp)
    assert path.suffix == ".png" and path.parent == tmp_path / "t"
    back = np.asarray(Image.open(path))
    assert back.shape == (21, 30, 3)
    assert np.abs(back / 255.0 - images[0, ..., :3].numpy()).max() <= 0.5 / 255 + 1e-6
    temp.cleanup()
    assert not path.exists()


def test_image_batch_is_a_video_at_fps(tmp_path):
    temp = TempFiles(tmp_path, "lipsync_in")
    images = _gradient(5, 33, 41)
    path = images_to_face_file(images, 12.0, temp)
    info = probe_media(path)["video"]
    assert path.suffix == ".mp4" and info["frame_count"] == 5 and info["fps"] == pytest.approx(12.0)
    assert (info["width"], info["height"]) == (40, 32)  # cropped to even sides
    frames = list(iter_video_frames(path))
    want = (images[3, :32, :40].numpy() * 255).astype(np.float64)
    assert np.abs(frames[3].astype(np.float64) - want).mean() < 3.0
    gray = torch.rand(2, 16, 16, 1)
    assert probe_media(images_to_face_file(gray, 25.0, temp))["video"]["frame_count"] == 2
    with pytest.raises(InvalidInputError):
        images_to_face_file(torch.zeros(0, 8, 8, 3), 25.0, temp)
    with pytest.raises(InvalidInputError):
        images_to_face_file(torch.zeros(8, 8, 3), 25.0, temp)
    temp.cleanup()
    assert list(tmp_path.iterdir()) == []


def test_audio_dict_becomes_a_wav(tmp_path):
    temp = TempFiles(tmp_path, "lipsync_in")
    t = torch.arange(22050) / 22050.0
    waveform = torch.stack([0.5 * torch.sin(2 * torch.pi * 220 * t), 0.25 * torch.sin(2 * torch.pi * 330 * t)])
    path = audio_to_wav_file({"waveform": waveform[None], "sample_rate": 22050}, temp)
    samples, rate = load_audio(path)
    assert rate == 22050 and samples.shape == (2, 22050)
    assert np.abs(samples - waveform.numpy()).max() < 1e-3
    with pytest.raises(InvalidInputError):
        audio_to_wav_file({"waveform": torch.zeros(1, 1, 0), "sample_rate": 16000}, temp)
    with pytest.raises(InvalidInputError):
        audio_to_wav_file(torch.zeros(1, 1, 10), temp)


class FakeVideo:
    """What the helper uses of ComfyUI's VideoFromFile: stream source, trim window, save_to."""

    def __init__(self, path, trim=(0.0, 0.0)):
        self.path, self.trim, self.saved = str(path), trim, []

    def get_stream_source(self):
        return self.path

    def get_active_trim_window(self):
        return self.trim

    def save_to(self, path, **_):
        self.saved.append(path)
        with open(self.path, "rb") as src, open(path, "wb") as dst:
            dst.write(src.read())


def test_video_is_read_in_place_unless_trimmed(tmp_path):
    clip = tmp_path / "clip.mp4"
    with Mp4Writer(clip, 16, 16, 25.0) as writer:
        for i in range(3):
            writer.write(np.full((16, 16, 3), 60 * i, np.uint8))
    temp = TempFiles(tmp_path / "t", "lipsync_in")
    untrimmed = FakeVideo(clip)
    assert video_to_file(untrimmed, temp) == clip and untrimmed.saved == []
    trimmed = FakeVideo(clip, trim=(0.04, 0.0))
    copy = video_to_file(trimmed, temp)
    assert copy != clip and trimmed.saved == [str(copy)] and copy.parent == tmp_path / "t"
    with pytest.raises(InvalidInputError):
        video_to_file(object(), temp)


def test_faceless_report():
    assert faceless_report(38, 25.0, []) == "0 of 38 frames without a face: every frame was lip-synced"
    text = faceless_report(38, 25.0, [(6, 9), (12, 12)])
    assert text == "5 of 38 frames without a face (passed through unchanged): 6-9 (0.24-0.40 s), 12 (0.48-0.52 s)"
    many = faceless_report(100, 25.0, [(i, i) for i in range(0, 60, 2)], limit=3)
    assert many.startswith("30 of 100 frames") and many.endswith("and 27 more runs")
