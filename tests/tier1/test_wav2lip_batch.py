"""Tier 1: the engine's per-batch step (``lipsync.batch``) and its encoder thread (``lipsync.engine``).

A small random Wav2Lip (the official architecture with fewer channels, batch norms randomised
and folded as the loader does) stands in for the full one: the savings of the batch step (one
face encoding per distinct crop, the blend weight kept per box size) must give the frames the
plain per-frame forward gives, up to float rounding (at most one 8-bit level, rarely); so must
any batch size; a generator, encoder (worker thread) or progress error stops the run and
leaves no MP4.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from myspinbot.lipsync import Wav2Lip, Wav2LipConfig, mel_windows, melspectrogram
from myspinbot.lipsync.batch import BatchRunner, unique_rows
from myspinbot.lipsync.engine import LipSyncSettings, lip_sync
from myspinbot.lipsync.paste import face_crop, lower_face_weight, model_input, paste_face
from myspinbot.speech.audio_io import load_audio, resample, to_mono
from myspinbot.video.probe import probe_media
from myspinbot.video.reader import iter_video_frames

BOX = (177, 67, 270, 179)  # the fixture portrait's padded face box (see test_wav2lip_engine.py)
SMALL = Wav2LipConfig(stem_channels=4, encoder_channels=(8, 8, 16, 16, 16), embed_channels=16,
                      audio_channels=(4, 8, 8, 16), decoder_channels=(16, 16, 16, 8, 8, 8), head_channels=4)


def _random_small(seed: int = 0) -> Wav2Lip:
    torch.manual_seed(seed)
    model = Wav2Lip(SMALL)
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():  # He-scaled convolutions, so the audio still moves the mouth at the end
        for name, t in model.state_dict().items():
            if name.endswith("num_batches_tracked"):
                continue
            if name.endswith("running_var"):
                t.copy_(torch.rand(t.shape, generator=g) * 1.5 + 0.5)
            elif name.endswith(("running_mean", "bias")):
                t.copy_(torch.rand(t.shape, generator=g) * 0.4 - 0.2)
            elif t.ndim == 1:
                t.copy_(torch.rand(t.shape, generator=g) + 0.5)
            else:
                t.copy_(torch.randn(t.shape, generator=g) * (2.0 / t[0].numel()) ** 0.5)
    model.requires_grad_(False)
    return model.fold_norms().to(memory_format=torch.channels_last)


@pytest.fixture(scope="module")
def model() -> Wav2Lip:
    return _random_small()


@pytest.fixture(scope="module")
def portrait(fixtures_dir) -> np.ndarray:
    return np.array(Image.open(fixtures_dir / "portrait_astronaut.png").convert("RGB"))


@pytest.fixture(scope="module")
def mel(fixtures_dir) -> np.ndarray:
    samples, rate = load_audio(fixtures_dir / "speech_front_left.wav")
    return melspectrogram(resample(to_mono(samples), rate, 16000)[0])


def _plain(model, mel, starts, frame, box, index) -> np.ndarray:
    """One frame the straightforward way: its own crop, its own forward, paste."""
    crop = face_crop(frame, box)
    x = torch.from_numpy(model_input(crop[None]))
    m = torch.from_numpy(np.ascontiguousarray(mel[None, None, :, starts[index]:starts[index] + 16]))
    with torch.no_grad():
        face = model(m, x).clamp(0.0, 1.0).permute(0, 2, 3, 1)[0].numpy()
    return paste_face(frame, face, box, lower_face_weight(96))


def test_unique_rows():
    a, b = np.zeros((2, 2, 3), np.uint8), np.ones((2, 2, 3), np.uint8)
    assert unique_rows([a, a.copy(), b, a]) == ([0, 2], [0, 0, 1, 0])
    assert unique_rows([a]) == ([0], [0])


def test_shared_and_distinct_crops_match_the_plain_forward(model, mel, portrait):
    starts = 20 + np.arange(12) * 5  # inside the speech (it starts with silence)
    shifted = np.roll(portrait, 3, axis=1)
    runner = BatchRunner(model, mel, starts, lower_face_weight(96))
    assert runner.split
    cases = {
        "still": [(k, portrait, BOX) for k in range(6)],  # one crop: encoded once, expanded
        "mixed": [(k, portrait if k % 3 else shifted, BOX) for k in range(6, 12)],  # two crops: index_select
    }
    for name, items in cases.items():
        before = [f.copy() for _, f, _ in items]
        got = runner(items)
        for (index, frame, box), out, src in zip(items, got, before):
            expected = _plain(model, mel, starts, frame, box, index)
            diff = np.abs(out.astype(int) - expected.astype(int))
            assert diff.max() <= 1 and (diff > 0).mean() < 1e-3, name
            assert np.array_equal(frame, src)  # inputs untouched (a still's frame is shared)
        assert not np.array_equal(got[0], got[1])  # different mel windows, different mouths


def test_faceless_frames_and_plain_callables(mel, portrait):
    calls = []

    def stand_in(m, faces):  # no encode_faces/decode: shared crops are repeated for it
        calls.append(faces.shape[0])
        return torch.zeros(faces.shape[0], 3, 96, 96)

    runner = BatchRunner(stand_in, mel, np.zeros(4, int), lower_face_weight(96))
    assert not runner.split
    out = runner([(0, portrait, BOX), (1, portrait, None), (2, portrait, BOX)])
    assert calls == [2]
    assert out[1] is portrait
    assert runner([(3, portrait, None)])[0] is portrait and calls == [2]


def test_batch_size_changes_nothing(model, fixtures_dir, tmp_path):
    face, speech = fixtures_dir / "portrait_astronaut.png", fixtures_dir / "speech_front_left.wav"
    outs = {}
    for batch in (16, 5, 1):
        result = lip_sync(model, face, speech, tmp_path / f"b{batch}.mp4", LipSyncSettings(batch_size=batch, crf=0))
        assert result.frames == 38
        outs[batch] = np.stack(list(iter_video_frames(result.path))).astype(int)
    for batch in (5, 1):
        diff = np.abs(outs[batch] - outs[16])
        print(f"batch {batch} vs 16: max {diff.max()}, differing {(diff > 0).mean():.2e}")
        assert diff.max() <= 2 and (diff > 0).mean() < 1e-3


def test_generator_error_leaves_no_file(fixtures_dir, tmp_path):
    calls = []

    def broken(m, faces):
        calls.append(1)
        if len(calls) == 2:
            raise RuntimeError("generator failed on batch 2")
        return torch.zeros(faces.shape[0], 3, 96, 96)

    out = tmp_path / "broken.mp4"
    with pytest.raises(RuntimeError, match="batch 2"):
        lip_sync(broken, fixtures_dir / "portrait_astronaut.png", fixtures_dir / "speech_front_left.wav", out,
                 LipSyncSettings(batch_size=8))
    assert len(calls) == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # neither the MP4 nor its video-only part


def test_encoder_error_surfaces_from_the_worker(fixtures_dir, tmp_path, monkeypatch):
    from myspinbot.video.writer import Mp4Writer

    real = Mp4Writer.write
    count = []

    def failing(self, frame):
        count.append(1)
        if len(count) == 10:
            raise OSError("disk full at frame 10")
        return real(self, frame)

    monkeypatch.setattr(Mp4Writer, "write", failing)
    calls = []

    def counting(m, faces):
        calls.append(1)
        return torch.zeros(faces.shape[0], 3, 96, 96)

    out = tmp_path / "nospace.mp4"
    with pytest.raises(OSError, match="disk full"):
        lip_sync(counting, fixtures_dir / "portrait_astronaut.png", fixtures_dir / "speech_front_left.wav", out,
                 LipSyncSettings(batch_size=4))
    assert len(calls) <= 5  # batch 3 held frame 10; found out at most two batches later, not at the end (10)
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_progress_error_stops_the_run(fixtures_dir, tmp_path):
    """An interrupt raised by the progress callback (the node's) stops the run promptly."""
    calls = []

    def counting(m, faces):
        calls.append(1)
        return torch.zeros(faces.shape[0], 3, 96, 96)

    def interrupt(done, total):
        raise KeyboardInterrupt("stop")

    out = tmp_path / "stopped.mp4"
    with pytest.raises(KeyboardInterrupt):
        lip_sync(counting, fixtures_dir / "portrait_astronaut.png", fixtures_dir / "speech_front_left.wav", out,
                 LipSyncSettings(batch_size=4), progress=interrupt)
    assert len(calls) == 1  # 10 batches in all; the interrupt came after the first
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_mel_windows_reach_the_generator(model, mel, portrait):
    """The window of output frame k starts at column int(80 * k / fps) (as the authors cut them)."""
    windows = mel_windows(mel, 25.0, num_frames=5)
    seen = []

    def recording(m, faces):
        seen.append(m.clone())
        return torch.zeros(faces.shape[0], 3, 96, 96)

    starts = (np.arange(5) * 80 / 25.0).astype(int)
    BatchRunner(recording, mel, starts, lower_face_weight(96))([(k, portrait, BOX) for k in range(5)])
    np.testing.assert_array_equal(seen[0][:, 0].numpy(), windows)


def test_speech_is_muxed_from_the_file(fixtures_dir, tmp_path):
    """The mux reads the speech file again (nothing of it is held while frames are made): AAC at
    its rate, a 5.1 track mixed down to stereo, the video covering it to within one frame."""
    import soundfile

    rate = 44100
    t = np.arange(int(1.3 * rate)) / rate
    six = np.stack([0.2 * np.sin(2 * np.pi * (200 + 50 * c) * t) for c in range(6)], axis=1).astype(np.float32)
    wav = tmp_path / "six.wav"
    soundfile.write(str(wav), six, rate)

    def stand_in(m, faces):
        return torch.zeros(faces.shape[0], 3, 96, 96)

    result = lip_sync(stand_in, fixtures_dir / "portrait_astronaut.png", wav, tmp_path / "six.mp4")
    info = probe_media(result.path)
    assert info["audio"]["codec"] == "aac" and info["audio"]["sample_rate"] == rate
    assert info["audio"]["channels"] == 2
    assert abs(info["audio"]["duration_s"] - 1.3) < 0.05
    assert result.frames == 33 and 0.0 <= result.video_seconds - result.audio_seconds < 1 / 25
    assert sorted(p.name for p in tmp_path.iterdir()) == ["six.mp4", "six.wav"]  # no temporary left
