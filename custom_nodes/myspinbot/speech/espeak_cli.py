"""espeak-ng through its command-line program (``espeak-ng`` on PATH): the fallback backend."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import wave
from pathlib import Path

import numpy as np

from ..errors import SpeechEngineError
from .voices import VoiceCatalog, catalog_from_listing

BINARY_NAME = "espeak-ng"
_LIST_TIMEOUT_S = 30.0


def find_binary() -> str | None:
    """Return the full path of ``espeak-ng`` on PATH, or None."""
    return shutil.which(BINARY_NAME)


def _run(args: list[str], *, stdin: bytes | None, timeout_s: float) -> subprocess.CompletedProcess:
    try:
        proc = subprocess.run(args, input=stdin, capture_output=True, timeout=timeout_s, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise SpeechEngineError(f"running {args[0]} failed: {exc}") from exc
    if proc.returncode != 0:
        message = proc.stderr.decode("utf-8", "replace").strip() or proc.stdout.decode("utf-8", "replace").strip()
        raise SpeechEngineError(f"{' '.join(args[:1] + args[1:2])} exited with {proc.returncode}: {message[:500]}")
    return proc


def voice_catalog(binary: str) -> VoiceCatalog:
    """List the voices of the ``binary`` (``--voices`` and ``--voices=variant``).

    Raises:
        SpeechEngineError: the program fails or lists no voice.
    """
    voices = _run([binary, "--voices"], stdin=None, timeout_s=_LIST_TIMEOUT_S).stdout.decode("utf-8", "replace")
    try:
        variants = _run([binary, "--voices=variant"], stdin=None, timeout_s=_LIST_TIMEOUT_S).stdout
    except SpeechEngineError:
        variants = b""  # variants are optional: without a list, any variant is let through
    catalog = catalog_from_listing(voices, variants.decode("utf-8", "replace"))
    if not catalog.codes:
        raise SpeechEngineError(f"{binary} --voices listed no voice")
    return catalog


def synthesize(binary: str, text: str, voice: str, rate_wpm: int, pitch: int) -> tuple[np.ndarray, int]:
    """Speak ``text`` with ``binary -v VOICE -s RATE -p PITCH -b 1 -w out.wav --stdin``.

    Arguments are assumed validated by the caller. The text goes through stdin as UTF-8.

    Returns:
        ``(samples, sample_rate)``: int16 array shaped ``[T]`` (first channel if the WAV had
        several) and its rate in Hz.

    Raises:
        SpeechEngineError: the program fails, times out, or writes no readable 16-bit WAV.
    """
    data = text.replace("\x00", " ").encode("utf-8")
    timeout_s = 60.0 + len(data) / 20.0  # generous: espeak-ng speaks far faster than real time
    with tempfile.TemporaryDirectory(prefix="myspinbot-espeak-") as tmp:
        out = Path(tmp) / "speech.wav"
        args = [binary, "-v", voice, "-s", str(int(rate_wpm)), "-p", str(int(pitch)), "-b", "1",
                "-w", str(out), "--stdin"]
        _run(args, stdin=data, timeout_s=timeout_s)
        return _read_wav_int16(out)


def _read_wav_int16(path: Path) -> tuple[np.ndarray, int]:
    try:
        with wave.open(str(path), "rb") as wav:
            channels, width, rate = wav.getnchannels(), wav.getsampwidth(), wav.getframerate()
            frames = wav.readframes(wav.getnframes())
    except (OSError, EOFError, wave.Error) as exc:
        raise SpeechEngineError(f"espeak-ng wrote no readable WAV: {exc}") from exc
    if width != 2 or channels < 1 or rate <= 0:
        raise SpeechEngineError(f"espeak-ng wrote an unexpected WAV ({channels} ch, {8 * width}-bit, {rate} Hz)")
    usable = len(frames) - len(frames) % (2 * channels)
    samples = np.frombuffer(frames[:usable], dtype="<i2").reshape(-1, channels)[:, 0]
    return samples.astype(np.int16), int(rate)
