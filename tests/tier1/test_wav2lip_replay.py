"""Tier 1: replaying a short face source (loop, ping-pong) and the no-face error of ``lipsync``.

A stand-in generator (flat red) is used; the source frames carry their index in a corner so the
order the engine shows them in can be read back from the MP4.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from myspinbot.errors import InvalidInputError, NoFaceDetectedError
from myspinbot.lipsync.engine import LipSyncSettings, lip_sync
from myspinbot.lipsync.replay import FrameSpool, source_index
from myspinbot.video.reader import iter_video_frames
from myspinbot.video.writer import Mp4Writer


def _red(mel: torch.Tensor, faces: torch.Tensor) -> torch.Tensor:
    out = torch.zeros(faces.shape[0], 3, 96, 96)
    out[:, 2] = 1.0
    return out


@pytest.fixture(scope="module")
def portrait(fixtures_dir) -> np.ndarray:
    return np.array(Image.open(fixtures_dir / "portrait_astronaut.png").convert("RGB"))


@pytest.fixture(scope="module")
def speech_path(fixtures_dir):
    return fixtures_dir / "speech_front_left.wav"  # 1.48 s: 38 frames at 25 fps


def _marked(portrait: np.ndarray, i: int) -> np.ndarray:
    frame = portrait.copy()
    frame[:32, :32] = 20 * i  # the frame's index, as a grey level, far from the face
    return frame


def _read_marks(path) -> list[int]:
    return [int(round(float(f[8:24, 8:24].mean()) / 20)) for f in iter_video_frames(path)]


def test_source_index_loop_and_ping_pong():
    assert [source_index(k, 4, "loop") for k in range(10)] == [0, 1, 2, 3, 0, 1, 2, 3, 0, 1]
    assert [source_index(k, 4, "ping_pong") for k in range(10)] == [0, 1, 2, 3, 2, 1, 0, 1, 2, 3]
    assert [source_index(k, 2, "ping_pong") for k in range(5)] == [0, 1, 0, 1, 0]
    assert [source_index(k, 1, "ping_pong") for k in range(3)] == [0, 0, 0]
    with pytest.raises(InvalidInputError):
        source_index(0, 3, "bounce")
    with pytest.raises(InvalidInputError):
        source_index(0, 0, "loop")
    with pytest.raises(InvalidInputError):
        LipSyncSettings(loop="reverse")


def test_spool_reads_frames_back_in_any_order(tmp_path):
    frames = [np.full((6, 4, 3), 10 * i, np.uint8) for i in range(5)]
    with FrameSpool(6, 4, tmp_path) as spool:
        for f in frames:
            spool.append(f)
        assert spool.path.parent == tmp_path and spool.path.stat().st_size == 5 * 6 * 4 * 3
        for i in (4, 0, 2, 3, 1):
            assert np.array_equal(spool[i], frames[i])
        with pytest.raises(IndexError):
            spool[5]
        with pytest.raises(InvalidInputError):
            spool.append(np.zeros((4, 6, 3), np.uint8))
    assert not spool.path.exists()


@pytest.mark.parametrize("mode", ["loop", "ping_pong"])
def test_short_video_is_replayed_in_the_chosen_order(portrait, speech_path, tmp_path, mode):
    video = tmp_path / "ten.mp4"
    with Mp4Writer(video, 512, 512, 25.0, crf=4) as writer:
        for i in range(10):
            writer.write(_marked(portrait, i))
    out = tmp_path / f"{mode}.mp4"
    result = lip_sync(_red, video, speech_path, out, LipSyncSettings(loop=mode))
    assert result.frames == 38 and result.source_frames == 10 and result.frames_synced == 38
    assert _read_marks(out) == [source_index(k, 10, mode) for k in range(38)]
    assert [p.name for p in tmp_path.iterdir() if p.suffix == ".rgb"] == []  # the spool is gone


def test_no_face_in_any_frame_is_no_face_detected(speech_path, tmp_path):
    blank = tmp_path / "wall.png"
    Image.fromarray(np.full((128, 128, 3), 90, np.uint8)).save(blank)
    with pytest.raises(NoFaceDetectedError) as err:
        lip_sync(_red, blank, speech_path, tmp_path / "out.mp4")
    assert err.value.code == "no_face_detected" and "wall.png" in str(err.value)
    video = tmp_path / "walls.mp4"
    with Mp4Writer(video, 128, 128, 25.0) as writer:
        for i in range(6):
            writer.write(np.full((128, 128, 3), 40 * i, np.uint8))
    with pytest.raises(NoFaceDetectedError, match="any of the 6 frame"):
        lip_sync(_red, video, speech_path, tmp_path / "out.mp4", LipSyncSettings(loop="ping_pong"))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["wall.png", "walls.mp4"]  # no MP4 or spool left
