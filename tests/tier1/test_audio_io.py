"""Audio decoding, probing, mixing, resampling and WAV writing (myspinbot.speech.audio_io).

Inputs are the real recordings in the shared fixtures; compressed variants (mp3, flac, m4a,
ogg/opus) are encoded from ``speech_front_left.wav`` with PyAV into a temporary folder.
"""

from __future__ import annotations

import wave
from pathlib import Path

import av
import numpy as np
import pytest

from myspinbot.errors import InvalidInputError
from myspinbot.speech import load_audio, probe_audio, resample, to_mono, write_wav

FIXTURE_SECONDS = {"speech_front_left.wav": 1.48, "speech_front_right.wav": 1.53}


def _encode(samples: np.ndarray, rate: int, path: Path, codec: str, container_format: str) -> Path:
    """Encode mono float32 ``[1, T]`` samples with PyAV (frames sized for the codec)."""
    with av.open(str(path), "w", format=container_format) as out:
        stream = out.add_stream(codec, rate=rate, layout="mono")
        ctx = stream.codec_context
        fmt = ctx.codec.audio_formats[0].name
        chunker = av.AudioResampler(format=fmt, layout="mono", rate=rate, frame_size=ctx.frame_size or 1024)
        source = av.AudioFrame.from_ndarray(np.ascontiguousarray(samples, dtype=np.float32), format="fltp", layout="mono")
        source.sample_rate = rate
        for frame in chunker.resample(source) + chunker.resample(None):
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return path


@pytest.fixture(scope="module")
def left(fixtures_dir) -> Path:
    return fixtures_dir / "speech_front_left.wav"


@pytest.fixture(scope="module")
def encoded(left, tmp_path_factory) -> dict[str, Path]:
    """The left fixture as mp3, flac, m4a (aac) and ogg (opus)."""
    samples, rate = load_audio(left)
    folder = tmp_path_factory.mktemp("encoded")
    specs = {"mp3": ("libmp3lame", "mp3"), "flac": ("flac", "flac"), "m4a": ("aac", "ipod"), "ogg": ("libopus", "ogg")}
    return {ext: _encode(samples, rate, folder / f"speech.{ext}", codec, fmt) for ext, (codec, fmt) in specs.items()}


@pytest.mark.parametrize("name", sorted(FIXTURE_SECONDS))
def test_load_real_fixture(fixtures_dir, name):
    samples, rate = load_audio(fixtures_dir / name)
    assert rate == 48000
    assert samples.dtype == np.float32 and samples.ndim == 2 and samples.shape[0] == 1
    assert samples.shape[1] / rate == pytest.approx(FIXTURE_SECONDS[name], abs=0.01)
    assert np.abs(samples).max() <= 1.0
    assert np.sqrt(np.mean(samples**2)) > 0.01  # a voice, not silence


@pytest.mark.parametrize("name", sorted(FIXTURE_SECONDS))
def test_probe_real_fixture(fixtures_dir, name):
    info = probe_audio(fixtures_dir / name)
    assert info["sample_rate"] == 48000
    assert info["channels"] == 1
    assert info["codec"] == "pcm_s16le"
    assert info["duration_s"] == pytest.approx(FIXTURE_SECONDS[name], abs=0.01)


def test_load_from_bytes_and_file_object_matches_path(left):
    from_path, rate = load_audio(left)
    from_bytes, rate_b = load_audio(left.read_bytes())
    with open(left, "rb") as handle:
        from_file, rate_f = load_audio(handle)
    assert rate == rate_b == rate_f == 48000
    np.testing.assert_array_equal(from_path, from_bytes)
    np.testing.assert_array_equal(from_path, from_file)
    assert probe_audio(left.read_bytes())["duration_s"] == pytest.approx(1.48, abs=0.01)


def test_wav_values_match_pcm(left):
    samples, _ = load_audio(left)
    with wave.open(str(left), "rb") as wav:
        pcm = np.frombuffer(wav.readframes(wav.getnframes()), dtype="<i2")
    np.testing.assert_allclose(samples[0], pcm / 32768.0, atol=1e-6)


@pytest.mark.parametrize(
    ("ext", "codecs"),
    [("mp3", {"mp3", "mp3float"}), ("flac", {"flac"}), ("m4a", {"aac"}), ("ogg", {"opus", "libopus"})],
)
def test_compressed_formats(encoded, left, ext, codecs):
    original, _ = load_audio(left)
    samples, rate = load_audio(encoded[ext])
    assert rate == 48000 and samples.dtype == np.float32 and samples.shape[0] == 1
    # encoders add priming/padding: allow a few codec frames either way
    assert samples.shape[1] / rate == pytest.approx(1.48, abs=0.1)
    rms = lambda x: float(np.sqrt(np.mean(x**2)))  # noqa: E731
    assert rms(samples) == pytest.approx(rms(original), rel=0.3)
    info = probe_audio(encoded[ext])
    assert info["codec"] in codecs
    assert info["sample_rate"] == 48000 and info["channels"] == 1
    assert info["duration_s"] == pytest.approx(1.48, abs=0.1)


def test_flac_is_lossless(encoded, left):
    original, _ = load_audio(left)
    decoded, _ = load_audio(encoded["flac"])
    assert decoded.shape == original.shape
    np.testing.assert_allclose(decoded, original, atol=1.0 / 32768)


def test_text_file_renamed_wav_is_rejected(tmp_path):
    fake = tmp_path / "notes.wav"
    fake.write_text("This is a shopping list, not audio.\n" * 30)
    for reader in (load_audio, probe_audio):
        with pytest.raises(InvalidInputError) as info:
            reader(fake)
        assert info.value.code == "invalid_input"
        assert "notes.wav" in str(info.value) and "not a readable audio file" in str(info.value)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_random_bytes_are_rejected(tmp_path, seed):
    blob = np.random.default_rng(seed).bytes(16384)
    path = tmp_path / "upload.mp3"
    path.write_bytes(blob)
    for reader in (load_audio, probe_audio):
        for source in (path, blob):
            with pytest.raises(InvalidInputError):
                reader(source)


def test_image_has_no_audio_stream(fixtures_dir):
    for reader in (load_audio, probe_audio):
        with pytest.raises(InvalidInputError, match="no audio stream"):
            reader(fixtures_dir / "portrait_astronaut.png")


def test_zero_sample_wav_is_rejected(tmp_path):
    empty = write_wav(tmp_path / "empty.wav", np.zeros((1, 0), np.float32), 16000)
    for reader in (load_audio, probe_audio):
        with pytest.raises(InvalidInputError, match="no audio samples"):
            reader(empty)


def test_missing_and_empty_inputs(tmp_path):
    with pytest.raises(InvalidInputError, match="does not exist"):
        load_audio(tmp_path / "nope.wav")
    (tmp_path / "zero.wav").write_bytes(b"")
    with pytest.raises(InvalidInputError, match="empty"):
        probe_audio(tmp_path / "zero.wav")
    with pytest.raises(InvalidInputError, match="empty"):
        load_audio(b"")


def test_write_wav_roundtrip_stereo_and_mono(tmp_path, left):
    mono, rate = load_audio(left)
    stereo = np.concatenate([mono, -0.5 * mono], axis=0)
    path = write_wav(tmp_path / "stereo.wav", stereo, rate)
    back, back_rate = load_audio(path)
    assert back_rate == rate and back.shape == stereo.shape
    np.testing.assert_allclose(back, stereo, atol=2.0 / 32768)
    with wave.open(str(path), "rb") as wav:
        assert (wav.getnchannels(), wav.getsampwidth(), wav.getframerate()) == (2, 2, rate)
    mixed = to_mono(back)
    assert mixed.shape == (1, stereo.shape[1]) and mixed.dtype == np.float32
    np.testing.assert_allclose(mixed, 0.25 * mono, atol=2.0 / 32768)
    # 1-D input is mono
    path_1d = write_wav(tmp_path / "mono.wav", mono[0], rate)
    assert probe_audio(path_1d)["channels"] == 1


def test_write_wav_clips_and_validates(tmp_path):
    path = write_wav(tmp_path / "loud.wav", np.array([[2.0, -2.0, 0.5]], np.float32), 8000)
    with wave.open(str(path), "rb") as wav:
        pcm = np.frombuffer(wav.readframes(3), dtype="<i2")
    assert pcm.tolist() == [32767, -32767, 16384]
    with pytest.raises(InvalidInputError):
        write_wav(tmp_path / "nan.wav", np.array([[np.nan]], np.float32), 8000)
    with pytest.raises(InvalidInputError):
        write_wav(tmp_path / "rate.wav", np.zeros((1, 4), np.float32), 0)
    with pytest.raises(InvalidInputError):
        write_wav(tmp_path / "shape.wav", np.zeros((1, 2, 3), np.float32), 8000)


@pytest.mark.parametrize(("sr_from", "sr_to"), [(48000, 16000), (22050, 16000), (16000, 48000), (48000, 44100)])
def test_resample_is_accurate_aligned_and_exact_length(sr_from, sr_to):
    tone, n = 300.0, sr_from // 2
    t = np.arange(n) / sr_from
    signal = np.stack([np.sin(2 * np.pi * tone * t), 0.5 * np.cos(2 * np.pi * tone * t), np.zeros(n)])
    out = resample(signal.astype(np.float32), sr_from, sr_to)
    length = -(-n * sr_to // sr_from)
    assert out.dtype == np.float32 and out.shape == (3, length)
    tt = np.arange(length) / sr_to
    expected = np.stack([np.sin(2 * np.pi * tone * tt), 0.5 * np.cos(2 * np.pi * tone * tt), np.zeros(length)])
    middle = slice(length // 10, -length // 10)  # away from the edges
    np.testing.assert_allclose(out[:, middle], expected[:, middle], atol=1e-3)


def _whole_frame_resample(channel: np.ndarray, sr_from: int, sr_to: int, length: int) -> np.ndarray:
    """The channel as one frame through libswresample (what ``resample`` did before it fed pieces)."""
    padded = np.concatenate([channel, np.zeros(256, np.float32)])[np.newaxis, :]
    frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(padded), format="fltp", layout="mono")
    frame.sample_rate = sr_from
    rs = av.AudioResampler(format="fltp", layout="mono", rate=sr_to)
    out = np.concatenate([f.to_ndarray()[0] for f in rs.resample(frame) + rs.resample(None)])
    return out[:length]


@pytest.mark.parametrize("n, sr_from, sr_to", [(48000 * 3 + 17, 48000, 16000), (65536, 44100, 16000),
                                               (65537 * 2, 22050, 16000), (1000, 16000, 24000)])
def test_resample_in_pieces_is_the_whole_frame_resample(n, sr_from, sr_to):
    """Fed in 64k-sample pieces (bounded memory for long tracks), libswresample gives the very
    samples one whole-signal frame gives."""
    x = (np.random.default_rng(n).standard_normal(n) * 0.3).astype(np.float32)
    got = resample(x, sr_from, sr_to)
    expected = _whole_frame_resample(x, sr_from, sr_to, got.shape[0])
    assert got.shape == expected.shape == (-(-n * sr_to // sr_from),)
    np.testing.assert_array_equal(got, expected)


def test_resample_edge_cases():
    assert resample(np.full(3, 0.5, np.float32), 48000, 16000).shape == (1,)
    assert resample(np.full(3, 0.5, np.float32), 16000, 48000).shape == (9,)
    assert resample(np.zeros((2, 0), np.float32), 16000, 48000).shape == (2, 0)
    signal = np.random.default_rng(0).standard_normal((2, 100)).astype(np.float32)
    same = resample(signal, 48000, 48000)
    np.testing.assert_array_equal(same, signal)
    assert same is not signal
    with pytest.raises(InvalidInputError):
        resample(signal, 0, 16000)
    with pytest.raises(InvalidInputError):
        resample(signal, 48000, 22050.5)
    with pytest.raises(InvalidInputError):
        resample(np.zeros((1, 2, 3)), 48000, 16000)


def test_to_mono_shapes():
    assert to_mono(np.ones(5, np.float64)).shape == (1, 5)
    assert to_mono(np.ones(5)).dtype == np.float32
    np.testing.assert_allclose(to_mono(np.array([[1.0, 0.0], [0.0, 1.0]])), [[0.5, 0.5]])
    with pytest.raises(InvalidInputError):
        to_mono(np.zeros((1, 2, 3)))
