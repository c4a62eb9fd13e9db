"""espeak-ng text to speech (myspinbot.speech.synthesize / list_voices).

The library backend (espeakng_loader's libespeak-ng) is exercised for real. The binary
backend runs against the real ``espeak-ng`` program when it is on PATH, and its plumbing
(command line, stdin, WAV reading, voice listing, fallback) against a stand-in program
written into a temporary folder.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import numpy as np
import pytest

from myspinbot.errors import InvalidInputError, SpeechEngineError
from myspinbot.speech import Speech, available_backend, list_voices, synthesize
from myspinbot.speech import espeak_lib

SENTENCE = "The quick brown fox jumps over the lazy dog."
ESPEAK_RATE_HZ = 22050
WORDS = ("speech engines turn written words into sound so that a portrait can talk about the weather "
         "the news or anything else you care to type into the box").split()


def _rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(x, dtype=np.float64))))


def _text(n_words: int) -> str:
    words = [WORDS[i % len(WORDS)] for i in range(n_words)]
    # sentences of 12 words, so espeak-ng sees ordinary punctuation
    return " ".join(w + ("." if (i + 1) % 12 == 0 else "") for i, w in enumerate(words)) + "."


# --- library backend ------------------------------------------------------------------

def test_sentence_shape_rate_duration_loudness():
    speech = synthesize(SENTENCE)
    assert isinstance(speech, Speech)
    assert speech.samples.dtype == np.float32
    assert speech.samples.ndim == 2 and speech.samples.shape[0] == 1 and speech.channels == 1
    assert speech.sample_rate == ESPEAK_RATE_HZ
    assert 0.5 < speech.duration_s < 5.0  # nine words at 175 wpm is about 3 s
    assert speech.duration_s == pytest.approx(speech.samples.shape[1] / ESPEAK_RATE_HZ)
    assert np.abs(speech.samples).max() <= 1.0
    assert _rms(speech.samples) > 0.02


def test_library_backend_is_the_default_here():
    assert available_backend() == "library"
    # espeak-ng adds a little randomness (noise excitation), so repeated calls differ slightly
    explicit = synthesize(SENTENCE, backend="library")
    assert explicit.duration_s == pytest.approx(synthesize(SENTENCE).duration_s, rel=0.03)


def test_faster_rate_gives_shorter_audio():
    slow = synthesize(SENTENCE, rate_wpm=100).duration_s
    normal = synthesize(SENTENCE, rate_wpm=175).duration_s
    fast = synthesize(SENTENCE, rate_wpm=350).duration_s
    assert slow > normal * 1.3 and normal > fast * 1.3


def _median_f0_hz(x: np.ndarray, rate: int = ESPEAK_RATE_HZ) -> float:
    """Median fundamental frequency of the louder 40 ms frames (autocorrelation peak, 50-400 Hz)."""
    n = int(0.04 * rate)
    frames = [x[i : i + n] - x[i : i + n].mean() for i in range(0, len(x) - n, n)]
    floor = np.percentile([_rms(f) for f in frames], 60)
    lo, hi = rate // 400, rate // 50
    estimates = []
    for frame in frames:
        if _rms(frame) >= floor:
            ac = np.correlate(frame, frame, "full")[n - 1 :]
            estimates.append(rate / (lo + int(np.argmax(ac[lo:hi]))))
    return float(np.median(estimates))


def test_pitch_changes_the_voice():
    low = _median_f0_hz(synthesize(SENTENCE, pitch=10).samples[0])
    normal = _median_f0_hz(synthesize(SENTENCE).samples[0])
    high = _median_f0_hz(synthesize(SENTENCE, pitch=90).samples[0])
    assert 60 < low < normal < high < 250  # espeak's "en": about 72, 102, 154 Hz
    assert high > 1.5 * low


def test_300_words_are_spoken_completely():
    speech = synthesize(_text(300))
    # 300 words at 175 wpm is about 100 s; espeak-ng pauses at sentence ends
    assert 60 < speech.duration_s < 200
    body = speech.samples[0, : int(speech.samples.shape[1] * 0.97)]
    # every tenth of the text is voiced: the callback collected the whole synthesis
    for part in np.array_split(body, 10):
        assert _rms(part) > 0.02


def test_thousands_of_words():
    speech = synthesize(_text(2000), rate_wpm=450)
    assert 200 < speech.duration_s < 600  # about 270 s at 450 wpm
    assert _rms(speech.samples[0, -5 * ESPEAK_RATE_HZ:]) > 0.01


def test_german_voice_and_unicode_text():
    speech = synthesize("Grüß Gott! Wie geht es Ihnen heute? Schön, dass Sie da sind.", voice="de")
    assert speech.sample_rate == ESPEAK_RATE_HZ and 1.0 < speech.duration_s < 8.0
    assert _rms(speech.samples) > 0.02


def test_voice_spellings_variants_and_case():
    for voice in ("en-us", "EN-GB", "en+f3", "EN+F3", "en+Alex", "gmw/en-US", "German"):
        assert synthesize("Hello there.", voice=voice).duration_s > 0.3


def test_list_voices():
    voices = list_voices()
    assert voices == sorted(voices) and len(voices) > 50
    assert {"en", "en-us", "de", "fr", "es"} <= set(voices)


@pytest.mark.parametrize("text", ["", "   ", "\n\t  "])
def test_empty_text_is_invalid(text):
    with pytest.raises(InvalidInputError, match="empty") as info:
        synthesize(text)
    assert info.value.code == "invalid_input"


def test_non_string_text_is_invalid():
    with pytest.raises(InvalidInputError):
        synthesize(None)  # type: ignore[arg-type]


def test_unknown_voice_names_the_valid_ones():
    with pytest.raises(InvalidInputError) as info:
        synthesize("Hello.", voice="xx-nowhere")
    message = str(info.value)
    assert info.value.code == "invalid_input"
    assert "xx-nowhere" in message and "en" in info.value.details["valid_voices"] and " de," in message
    with pytest.raises(InvalidInputError, match="variant"):
        synthesize("Hello.", voice="en+nosuchvariant")
    with pytest.raises(InvalidInputError):
        synthesize("Hello.", voice="")


@pytest.mark.parametrize(("kwargs"), [{"rate_wpm": 10}, {"rate_wpm": 1000}, {"rate_wpm": 1.5},
                                      {"pitch": -1}, {"pitch": 101}, {"pitch": True}, {"backend": "festival"}])
def test_bad_settings_are_invalid(kwargs):
    with pytest.raises(InvalidInputError):
        synthesize("Hello.", **kwargs)


def test_concurrent_calls_are_serialized_and_correct():
    # texts of very different lengths, so audio leaking between calls would show
    texts = [_text(n) for n in (2, 40, 5, 25, 1, 12)]
    expected = [synthesize(t).duration_s for t in texts]
    results: list[float | None] = [None] * len(texts)
    errors: list[BaseException] = []

    def work(i: int) -> None:
        try:
            results[i] = synthesize(texts[i]).duration_s
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(texts))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert results == pytest.approx(expected, rel=0.03)


def test_import_loads_nothing():
    code = textwrap.dedent("""
        import sys
        import myspinbot.speech
        from myspinbot.speech import espeak_lib
        assert espeak_lib._HANDLE is None, "library loaded at import"
        assert "av" not in sys.modules and "scipy" not in sys.modules
        assert not any(m == "comfy" or m.startswith(("comfy.", "comfy_api", "folder_paths", "server"))
                       for m in sys.modules)
    """)
    custom_nodes = Path(__file__).resolve().parents[2] / "custom_nodes"
    env = {**os.environ, "PYTHONPATH": str(custom_nodes)}
    subprocess.run([sys.executable, "-c", code], check=True, env=env, timeout=60)


def test_speech_validates_its_fields():
    with pytest.raises(ValueError):
        Speech(samples=np.zeros(10, np.float32), sample_rate=22050)
    with pytest.raises(ValueError):
        Speech(samples=np.zeros((1, 10), np.float64), sample_rate=22050)
    with pytest.raises(ValueError):
        Speech(samples=np.zeros((1, 10), np.float32), sample_rate=0)
    assert Speech(samples=np.zeros((1, 11025), np.float32), sample_rate=22050).duration_s == 0.5


# --- binary backend: stand-in program -------------------------------------------------

FAKE_ESPEAK = r'''
import json, math, os, struct, sys, wave
args = sys.argv[1:]
if os.environ.get("FAKE_ESPEAK_FAIL"):
    sys.stderr.write("espeak-ng: simulated failure\n"); sys.exit(1)
if args == ["--voices"]:
    print("Pty Language       Age/Gender VoiceName          File                 Other Languages")
    print(" 5  de              --/M      German             gmw/de               ")
    print(" 2  en-gb           --/M      English_(Great_Britain) gmw/en               (en 2)")
    print(" 5  en-us           --/M      English_(America)  gmw/en-US            (en 3)")
    sys.exit(0)
if args == ["--voices=variant"]:
    print("Pty Language       Age/Gender VoiceName          File                 Other Languages")
    print(" 0  variant          --/F      female3            !v/f3                ")
    sys.exit(0)
opts = dict(zip(args[0::2], args[1::2]))
text = sys.stdin.buffer.read().decode("utf-8")
with open(os.environ["FAKE_ESPEAK_LOG"], "w", encoding="utf-8") as log:
    json.dump({"argv": args, "text": text}, log)
rate, wpm = 22050, int(opts["-s"])
n = int(rate * 60.0 * len(text.split()) / wpm)
with wave.open(opts["-w"], "wb") as out:
    out.setnchannels(1); out.setsampwidth(2); out.setframerate(rate)
    out.writeframes(b"".join(struct.pack("<h", int(8000 * math.sin(2 * math.pi * 200 * i / rate))) for i in range(n)))
'''


@pytest.fixture
def fake_espeak(tmp_path, monkeypatch):
    """Put a stand-in ``espeak-ng`` (only) on PATH; return the path of its call log."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    program = bin_dir / "espeak-ng"
    program.write_text(f"#!{sys.executable}\n{FAKE_ESPEAK}", encoding="utf-8")
    program.chmod(program.stat().st_mode | stat.S_IXUSR)
    log = tmp_path / "calls.json"
    monkeypatch.setenv("PATH", str(bin_dir))
    monkeypatch.setenv("FAKE_ESPEAK_LOG", str(log))
    return log


def _library_unavailable(monkeypatch):
    def fail():
        raise SpeechEngineError("espeak-ng library not available (simulated)")

    monkeypatch.setattr(espeak_lib, "get_library", fail)


def test_binary_backend_command_line_and_wav(fake_espeak):
    text = "Grüße aus dem Weltall, sagt die Astronautin."
    speech = synthesize(text, voice="de", rate_wpm=200, pitch=30, backend="binary")
    call = json.loads(fake_espeak.read_text(encoding="utf-8"))
    argv = call["argv"]
    assert call["text"] == text  # UTF-8 through stdin
    assert argv[argv.index("-v") + 1] == "gmw/de"  # the voice file of language "de"
    assert argv[argv.index("-s") + 1] == "200" and argv[argv.index("-p") + 1] == "30"
    assert "-w" in argv and argv[-1] == "--stdin"
    assert speech.sample_rate == 22050 and speech.samples.shape[0] == 1 and speech.samples.dtype == np.float32
    assert speech.duration_s == pytest.approx(60 * 7 / 200, abs=0.01)
    assert _rms(speech.samples) > 0.1


def test_binary_backend_voices(fake_espeak):
    assert list_voices(backend="binary") == ["de", "en", "en-gb", "en-us"]
    synthesize("hello there", voice="EN+Female3", backend="binary")
    assert json.loads(fake_espeak.read_text(encoding="utf-8"))["argv"][1] == "gmw/en+f3"
    with pytest.raises(InvalidInputError, match="valid voices: de, en, en-gb, en-us"):
        synthesize("hello", voice="fr", backend="binary")


def test_binary_backend_failure_is_a_speech_error(fake_espeak, monkeypatch):
    monkeypatch.setenv("FAKE_ESPEAK_FAIL", "1")
    with pytest.raises(SpeechEngineError, match="simulated failure") as info:
        synthesize("hello", backend="binary")
    assert info.value.code == "speech_failed"


def test_auto_falls_back_to_binary(fake_espeak, monkeypatch):
    _library_unavailable(monkeypatch)
    assert available_backend() == "binary"
    assert synthesize("one two three four", rate_wpm=120).duration_s == pytest.approx(2.0, abs=0.01)


def test_nothing_available_says_how_to_fix(tmp_path, monkeypatch):
    _library_unavailable(monkeypatch)
    monkeypatch.setenv("PATH", str(tmp_path))  # no espeak-ng here
    for call in (lambda: synthesize("hello"), list_voices, lambda: synthesize("hello", backend="binary")):
        with pytest.raises(SpeechEngineError) as info:
            call()
        assert "pip install espeakng-loader" in str(info.value)
        assert "apt-get install espeak-ng" in str(info.value)
        assert info.value.code == "speech_failed"


# --- binary backend: the real program ------------------------------------------------

@pytest.mark.skipif(shutil.which("espeak-ng") is None,
                    reason="espeak-ng program not on PATH (apt-get install espeak-ng); "
                           "its plumbing is covered by the stand-in tests, the library backend for real")
def test_real_binary_backend():
    speech = synthesize(SENTENCE, backend="binary")
    assert speech.sample_rate == ESPEAK_RATE_HZ and 0.5 < speech.duration_s < 5.0
    assert _rms(speech.samples) > 0.02
    assert synthesize(SENTENCE, rate_wpm=350, backend="binary").duration_s < speech.duration_s
    assert synthesize("Guten Tag.", voice="de", backend="binary").duration_s > 0.3
    assert "en" in list_voices(backend="binary")
    with pytest.raises(InvalidInputError):
        synthesize("Hello.", voice="xx-nowhere", backend="binary")
