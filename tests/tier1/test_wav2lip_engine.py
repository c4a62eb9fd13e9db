"""Tier 1: the streaming lip-sync engine (``lipsync.engine``) on the real portrait and speech.

The full-size generator runs once with random weights (the output is meaningless but has the
real cost and shapes); the rest uses stand-in generators that record their inputs and return a
flat colour, so the conventions (BGR, masked half, mel windows, paste region) can be checked.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from myspinbot.errors import InvalidInputError
from myspinbot.lipsync import Wav2Lip, mel_windows, melspectrogram
from myspinbot.lipsync import boxes as boxes_mod
from myspinbot.lipsync.boxes import BoxSettings, BoxSmoother, find_face_box
from myspinbot.lipsync.engine import LipSyncSettings, lip_sync
from myspinbot.lipsync.paste import face_crop, lower_face_weight
from myspinbot.speech.audio_io import load_audio, resample, to_mono
from myspinbot.video.probe import probe_media
from myspinbot.video.reader import iter_video_frames
from myspinbot.video.writer import Mp4Writer

FACE_BOX = (177, 67, 270, 179)  # Haar box (177, 67, 93, 93) + 10 % chin + 10 px below


@pytest.fixture(scope="module")
def portrait_path(fixtures_dir):
    return fixtures_dir / "portrait_astronaut.png"


@pytest.fixture(scope="module")
def speech_path(fixtures_dir):
    return fixtures_dir / "speech_front_left.wav"  # 1.48 s, 48 kHz mono


@pytest.fixture(scope="module")
def portrait(portrait_path) -> np.ndarray:
    return np.array(Image.open(portrait_path).convert("RGB"))


class StandIn:
    """A generator stand-in: records its inputs, returns pure red (BGR channel 2)."""

    def __init__(self):
        self.mels: list[torch.Tensor] = []
        self.faces: list[torch.Tensor] = []

    def __call__(self, mel: torch.Tensor, faces: torch.Tensor) -> torch.Tensor:
        self.mels.append(mel.clone())
        self.faces.append(faces.clone())
        out = torch.zeros(faces.shape[0], 3, 96, 96)
        out[:, 2] = 1.0
        return out


def _decode(path) -> list[np.ndarray]:
    return list(iter_video_frames(path))


def test_face_box_of_the_portrait(portrait):
    assert find_face_box(portrait) == FACE_BOX
    assert find_face_box(portrait, BoxSettings(pads=(5, 0, 3, 4), chin_margin=0.0)) == (174, 62, 274, 160)
    assert find_face_box(np.full((200, 200, 3), 128, np.uint8)) is None
    with pytest.raises(InvalidInputError):
        BoxSettings(pads=(0, 10, 0))


def test_box_smoother_is_the_authors_rule():
    boxes = [(i, 0, 10 + i, 10) for i in range(8)]
    smoother: BoxSmoother[int] = BoxSmoother(5)
    out = []
    for k, b in enumerate(boxes):
        out.extend(smoother.push(k, b))
        assert len(out) == max(0, k - 3)  # each frame waits for the next four
    out.extend(smoother.finish())
    assert [k for k, _ in out] == list(range(8))
    assert out[0][1] == (2, 0, 12, 10)  # mean of boxes 0..4
    assert out[3][1] == (5, 0, 15, 10)  # mean of 3..7
    assert out[4][1] == out[7][1] == (5, 0, 15, 10)  # the tail: the last five
    gaps: BoxSmoother[int] = BoxSmoother(3)
    got = list(gaps.push(0, (0, 0, 10, 10))) + list(gaps.push(1, None)) + list(gaps.push(2, (2, 2, 12, 12)))
    got += list(gaps.finish())
    assert got == [(0, (1, 1, 11, 11)), (1, None), (2, (1, 1, 11, 11))]
    assert list(BoxSmoother(1).push("a", (1, 2, 3, 4))) == [("a", (1, 2, 3, 4))]


@pytest.mark.slow
def test_full_size_generator_on_the_portrait(portrait_path, speech_path, portrait, tmp_path):
    torch.manual_seed(0)
    model = Wav2Lip().eval()
    seen = []
    result = lip_sync(model, portrait_path, speech_path, tmp_path / "synced.mp4",
                      LipSyncSettings(batch_size=16), progress=lambda done, total: seen.append((done, total)))
    assert result.frames == 38 and result.fps == 25.0  # ceil(1.48 s * 25)
    assert 0.0 <= result.video_seconds - result.audio_seconds < 1 / 25
    assert (result.frames_synced, result.frames_without_face, result.source_frames) == (38, 0, 1)
    assert seen == [(16, 38), (32, 38), (38, 38)]
    info = probe_media(result.path)
    assert info["video"]["frame_count"] == 38 and (info["video"]["width"], info["video"]["height"]) == (512, 512)
    assert info["audio"]["sample_rate"] == 48000 and abs(info["audio"]["duration_s"] - 1.48) < 0.03
    frame = _decode(result.path)[10].astype(np.float32)
    src = portrait.astype(np.float32)
    x1, y1, x2, y2 = FACE_BOX
    upper = (slice(y1, y1 + 40), slice(x1, x2))  # forehead and eyes
    lower = (slice(y1 + 70, y2 - 10), slice(x1 + 15, x2 - 15))  # mouth and chin
    assert np.abs(frame[upper] - src[upper]).mean() < 3.0  # untouched (codec noise only)
    assert np.abs(frame[lower] - src[lower]).mean() > 10.0  # redrawn (random weights)
    outside = (slice(300, 500), slice(0, 512))
    assert np.abs(frame[outside] - src[outside]).mean() < 3.0


def test_inputs_follow_the_training_conventions(portrait_path, speech_path, portrait, tmp_path):
    model = StandIn()
    result = lip_sync(model, portrait_path, speech_path, tmp_path / "red.mp4", LipSyncSettings(batch_size=8))
    assert [m.shape[0] for m in model.mels] == [8, 8, 8, 8, 6]
    mels = torch.cat(model.mels).numpy()
    faces = torch.cat(model.faces).numpy()
    assert mels.shape == (38, 1, 80, 16) and faces.shape == (38, 6, 96, 96)
    samples, rate = load_audio(speech_path)
    expected = mel_windows(melspectrogram(resample(to_mono(samples), rate, 16000)[0]), 25.0, num_frames=38)
    np.testing.assert_array_equal(mels[:, 0], expected)
    crop = face_crop(portrait, FACE_BOX).astype(np.float32) / 255.0  # BGR
    np.testing.assert_allclose(faces[0, 3:].transpose(1, 2, 0), crop, atol=1e-6)
    np.testing.assert_allclose(faces[0, :3, :48].transpose(1, 2, 0), crop[:48], atol=1e-6)
    assert np.all(faces[:, :3, 48:] == 0.0)
    # Red in BGR comes back red in RGB, in the lower face only.
    frame = _decode(result.path)[5].astype(int)
    mouth = frame[150:165, 205:245]
    assert mouth[..., 0].mean() > 200 and mouth[..., 1].mean() < 60 and mouth[..., 2].mean() < 60
    eyes = frame[95:115, 190:260]
    assert np.abs(eyes - portrait[95:115, 190:260].astype(int)).mean() < 3.0


def test_blend_weight_is_the_lower_face():
    w = lower_face_weight(96)
    assert w.shape == (96, 96) and w.dtype == np.float32
    assert float(w[:45].max()) < 0.01 and float(w[62:76, 20:76].min()) > 0.99
    border = np.concatenate([w[0], w[-1], w[:, 0], w[:, -1]])
    assert float(border.max()) < 0.01  # no seam where the box ends
    assert 0.1 < float(w[70, 7]) < 0.9 and 0.1 < float(w[51, 48]) < 0.9  # feathered, not cut


def _write_video(path, frames, fps=25.0):
    h, w = frames[0].shape[:2]
    with Mp4Writer(path, w, h, fps, crf=10) as writer:
        for frame in frames:
            writer.write(frame)


def test_short_video_is_looped_and_faceless_frames_pass(portrait, speech_path, tmp_path, monkeypatch):
    blank = np.full_like(portrait, 90)
    frames = [np.roll(portrait, k, axis=1) for k in range(6)] + [blank] * 4  # 10 frames, 4 without face
    video = tmp_path / "short.mp4"
    _write_video(video, frames)
    calls = []
    real = boxes_mod.find_face_box

    def counting(frame, settings=BoxSettings()):
        calls.append(1)
        return real(frame, settings)

    monkeypatch.setattr("myspinbot.lipsync.engine.find_face_box", counting)
    model = StandIn()
    result = lip_sync(model, video, speech_path, tmp_path / "looped.mp4", LipSyncSettings(batch_size=16))
    assert len(calls) == 10  # each source frame is detected once, however often it is looped
    assert result.frames == 38 and result.source_frames == 10
    assert result.frames_without_face == 4 * 3 + 2  # source frames 6-9 in three passes, then 6-7 of the fourth (30-37)
    assert result.frames_synced + result.frames_without_face == 38
    assert result.faceless_ranges == ((6, 9), (16, 19), (26, 29), (36, 37))
    assert sum(m.shape[0] for m in model.mels) == result.frames_synced
    out = _decode(result.path)
    assert len(out) == 38
    decoded_source = _decode(video)
    for i in (7, 17, 29):  # blank frames pass through unchanged (up to the codec)
        assert np.abs(out[i].astype(int) - decoded_source[i % 10].astype(int)).mean() < 2.0
    assert out[12][150:165, 205:245, 0].mean() > 200  # a looped face frame is still synced


def test_odd_sized_still_is_cropped_to_even(portrait, speech_path, tmp_path):
    odd = tmp_path / "odd.png"
    Image.fromarray(portrait[:511, :509]).save(odd)
    result = lip_sync(StandIn(), odd, speech_path, tmp_path / "odd.mp4", LipSyncSettings(still_fps=30.0))
    assert (result.width, result.height) == (508, 510)
    assert result.frames == 45 and result.fps == 30.0  # ceil(1.48 s * 30)


def test_unusable_inputs(portrait_path, speech_path, tmp_path):
    with pytest.raises(InvalidInputError):
        lip_sync(StandIn(), tmp_path / "nothing.png", speech_path, tmp_path / "x.mp4")
    with pytest.raises(InvalidInputError):
        lip_sync(StandIn(), portrait_path, tmp_path / "nothing.wav", tmp_path / "x.mp4")
    with pytest.raises(InvalidInputError):
        LipSyncSettings(batch_size=0)
    assert not (tmp_path / "x.mp4").exists()


def test_faceless_still_is_an_error_unless_faces_are_optional(speech_path, tmp_path):
    from myspinbot.errors import NoFaceDetectedError

    wall = tmp_path / "wall.png"
    Image.fromarray(np.full((96, 128, 3), 90, np.uint8)).save(wall)
    with pytest.raises(NoFaceDetectedError):
        lip_sync(StandIn(), wall, speech_path, tmp_path / "wall.mp4")
    assert not (tmp_path / "wall.mp4").exists()
    generator = StandIn()
    result = lip_sync(generator, wall, speech_path, tmp_path / "voice_over.mp4", LipSyncSettings(require_face=False))
    assert result.frames == 38 and result.frames_synced == 0 and result.frames_without_face == 38  # ceil(1.48004 s * 25)
    assert result.faceless_ranges == ((0, 37),) and generator.faces == []
    frames = _decode(result.path)
    assert len(frames) == 38 and max(int(np.abs(f.astype(int) - 90).max()) for f in frames) <= 3  # unchanged
    assert probe_media(result.path)["audio"] is not None
