"""Tier 1: the lip-sync score (``lipsync.sync_stats``, ``mfcc``, ``syncnet_crops``, ``syncnet_score``).

* The offset search and the statistics on stand-in embeddings whose answer is known: audio
  embeddings that are the video's moved by ``k`` windows give offset ``k``.
* The whole pipeline on a real face: the portrait's brightness and the loudness of noise
  bursts follow one random on/off pattern, the audio moved by ``k`` frames, and a stand-in
  "SyncNet" embeds exactly those two signals (mean crop brightness per frame, MFCC energy per
  frame), so the offset found must be ``k``.
* The full-size SyncNet with random weights, loaded through the strict loader.
"""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch
from PIL import Image
from scipy.signal import medfilt

from myspinbot.errors import InvalidInputError, NoFaceDetectedError
from myspinbot.lipsync import SyncNet, load_syncnet, mfcc, offset_distances, score_lipsync, sync_stats
from myspinbot.lipsync.mfcc import frame_count
from myspinbot.lipsync.sync_stats import _medfilt, per_second
from myspinbot.lipsync.syncnet_crops import crop_face, face_track
from myspinbot.lipsync.syncnet_score import ScoreSettings, frames_at_25, window_count
from myspinbot.speech.audio_io import write_wav
from myspinbot.video.writer import Mp4Writer


def _moved(video: torch.Tensor, k: int, seed: int = 1) -> torch.Tensor:
    """Audio embeddings in which the sound of video window i sits at audio window i - k."""
    g = torch.Generator().manual_seed(seed)
    audio = torch.randn(video.shape, generator=g)
    n = video.shape[0]
    for j in range(n):
        if 0 <= j + k < n:
            audio[j] = video[j + k] + 0.05 * torch.randn(video.shape[1], generator=g)
    return audio


@pytest.mark.parametrize("k", [-12, -3, 0, 1, 7, 15])
def test_moved_audio_gives_its_offset(k):
    video = torch.randn(60, 32, generator=torch.Generator().manual_seed(0))
    stats = sync_stats(video, _moved(video, k))
    assert stats.offset == k
    assert stats.mean_dists.shape == (31,) and stats.window_dists.shape == (60, 31)
    best = 15 - k
    assert stats.lse_d == pytest.approx(float(stats.mean_dists[best])) and stats.lse_d == pytest.approx(stats.mean_dists.min())
    assert stats.lse_c == pytest.approx(float(np.median(stats.mean_dists)) - stats.lse_d) and stats.lse_c > 1.0
    assert np.array_equal(stats.best_dists, stats.window_dists[:, best])


def test_distances_are_the_authors_zero_padded_pairwise_distances():
    g = torch.Generator().manual_seed(5)
    video, audio = torch.randn(9, 6, generator=g), torch.randn(9, 6, generator=g)
    d = offset_distances(video, audio, vshift=3)
    for i in range(9):
        for j in range(7):
            a = i + j - 3
            other = audio[a] if 0 <= a < 9 else torch.zeros(6)
            assert d[i, j] == pytest.approx(float(torch.norm(video[i] - other + 1e-6)), rel=1e-6)
    with pytest.raises(InvalidInputError):
        offset_distances(video, audio[:5])
    with pytest.raises(InvalidInputError):
        offset_distances(video, audio, vshift=-1)


def test_smoothing_and_per_second_curves():
    x = np.random.default_rng(2).standard_normal(50)
    assert np.array_equal(_medfilt(x, 9), medfilt(x, kernel_size=9))
    assert np.allclose(per_second(np.arange(60.0), fps=25.0), [12.0, 37.0, 54.5])
    with pytest.raises(InvalidInputError):
        per_second(np.array([]))


def test_mfcc_frames_and_scale():
    assert [frame_count(n) for n in (1, 400, 401, 560, 561, 16000)] == [1, 1, 2, 2, 3, 99]
    t = np.arange(16000) / 16000.0
    tone = 0.5 * np.sin(2 * np.pi * 440 * t)
    cc = mfcc(tone)
    assert cc.shape == (99, 13) and cc.dtype == np.float64
    as_int16 = np.round(tone * 32768).astype(np.int16)
    assert np.array_equal(mfcc(as_int16), cc)  # float input is the int16 PCM the authors read
    quiet = mfcc(tone * 0.1)
    assert np.allclose(cc[:, 0] - quiet[:, 0], 2 * np.log(10), atol=1e-3)  # log energy: 20 dB less
    with pytest.raises(InvalidInputError):
        mfcc(np.zeros((2, 100)))


def test_face_track_interpolates_and_smooths():
    boxes = [None, (10, 20, 30, 50), None, None, (16, 20, 36, 50)] + [None] * 3
    track = face_track(boxes)
    assert track.shape == (8, 3)
    with pytest.raises(NoFaceDetectedError):
        face_track([None, None])


def test_crop_is_the_authors_cut(monkeypatch):
    rng = np.random.default_rng(4)
    frame = rng.integers(0, 256, (120, 160, 3), dtype=np.uint8)
    for s, x, y in [(30.0, 80.0, 60.0), (20.5, 10.2, 100.7), (41.0, 150.0, 5.0)]:
        cs = 0.4
        pad = int(s * (1 + 2 * cs))
        padded = np.pad(frame, ((pad, pad), (pad, pad), (0, 0)), "constant", constant_values=110)
        my, mx = y + pad, x + pad
        face = padded[int(my - s):int(my + s * (1 + 2 * cs)), int(mx - s * (1 + cs)):int(mx + s * (1 + cs))]

        want = cv2.resize(face[:, :, ::-1].copy(), (224, 224))
        assert np.array_equal(crop_face(frame, s, x, y), want), (s, x, y)


def test_frames_at_25_picks_the_nearest_source_frame(tmp_path):
    path = tmp_path / "fifty.mp4"
    with Mp4Writer(path, 16, 16, 50.0, crf=0) as writer:
        for i in range(20):
            writer.write(np.full((16, 16, 3), 10 * i, np.uint8))
    got = [int(round(f.mean() / 10)) for f in frames_at_25(path, 50.0)]
    assert got == list(range(0, 20, 2))
    assert window_count(100, 100 * 640) == 95 and window_count(100, 50 * 640 + 639) == 45


class StandIn(torch.nn.Module):
    """A "SyncNet" that embeds the two signals the test clip is made of, standardised."""

    def __init__(self):
        super().__init__()
        self.anchor = torch.nn.Parameter(torch.zeros(1))  # device / dtype for the pipeline

    @staticmethod
    def _norm(x: torch.Tensor) -> torch.Tensor:
        x = x - x.mean(dim=1, keepdim=True)
        return x / (x.norm(dim=1, keepdim=True) + 1e-3)

    def forward_video(self, crops):  # [B, 3, 5, 224, 224] -> brightness per frame
        return self._norm(crops.mean(dim=(1, 3, 4)))

    def forward_audio(self, cc):  # [B, 1, 13, 20] -> log energy per video frame (4 MFCC frames)
        return self._norm(cc[:, 0, 0].reshape(-1, 5, 4).mean(dim=2))


@pytest.fixture(scope="module")
def portrait(fixtures_dir) -> np.ndarray:
    return np.array(Image.open(fixtures_dir / "portrait_astronaut.png").convert("RGB"))


def _clip(portrait, tmp_path, k: int, frames: int = 75):
    pattern = np.random.default_rng(7).integers(0, 2, frames + 40)
    with Mp4Writer(tmp_path / f"clip{k}.mp4", 512, 512, 25.0, crf=10) as writer:
        for i in range(frames):
            writer.write((portrait * (0.6 + 0.4 * pattern[20 + i])).astype(np.uint8))
    noise = np.random.default_rng(8).standard_normal(frames * 640)
    amp = np.repeat([0.02 + 0.3 * pattern[20 + m + k] for m in range(frames)], 640)  # audio frame m: video's m + k
    write_wav(tmp_path / f"speech{k}.wav", (noise * amp)[None], 16000)
    return tmp_path / f"clip{k}.mp4", tmp_path / f"speech{k}.wav"


@pytest.mark.parametrize("k", [0, 4, -6])
def test_pipeline_finds_the_offset_of_a_known_clip(portrait, tmp_path, k):
    video, speech = _clip(portrait, tmp_path, k)
    calls = []
    score = score_lipsync(StandIn(), video, speech, progress=lambda d, t: calls.append((d, t)))
    assert score.offset == k, score.summary
    assert score.frames == 75 and score.faceless_frames == 0 and score.stats.windows == 70
    assert score.lse_c > 0.3 and score.lse_d < float(np.median(score.stats.mean_dists))
    assert score.conf_per_second.shape == (3,) and score.dist_per_second.shape == (3,)
    assert calls[-1] == (150, 150) and [d for d, _ in calls] == sorted(d for d, _ in calls)
    block = score.quality_block("stand-in")
    assert block["offset_frames"] == k and block["windows"] == 70 and block["model"] == "stand-in"
    assert len(block["conf_per_second"]) == 3 and isinstance(block["lse_c"], float)


def test_full_size_syncnet_through_the_strict_loader(portrait, tmp_path):
    torch.manual_seed(0)
    path = tmp_path / "syncnet_v2.model"
    torch.save(SyncNet().state_dict(), path)
    video, speech = _clip(portrait, tmp_path, 0, frames=30)
    score = score_lipsync(load_syncnet(path), video, speech, ScoreSettings(batch_size=8))
    assert -15 <= score.offset <= 15 and np.isfinite([score.lse_d, score.lse_c]).all() and score.lse_c >= 0
    assert score.stats.windows == 25 and score.stats.framewise_conf.shape == (25,)


def test_unusable_clips(portrait, tmp_path):
    silent = tmp_path / "silent.mp4"
    with Mp4Writer(silent, 64, 64, 25.0) as writer:
        for _ in range(10):
            writer.write(np.full((64, 64, 3), 90, np.uint8))
    with pytest.raises(InvalidInputError, match="no audio track"):
        score_lipsync(StandIn(), silent)
    speech = tmp_path / "speech.wav"
    write_wav(speech, np.zeros((1, 16000)), 16000)
    with pytest.raises(NoFaceDetectedError):
        score_lipsync(StandIn(), silent, speech)
    video, _ = _clip(portrait, tmp_path, 0, frames=5)
    with pytest.raises(InvalidInputError, match="too short"):
        score_lipsync(StandIn(), video, speech)
