"""Text to speech with espeak-ng: the public entry points ``synthesize`` and ``list_voices``.

Two backends, chosen automatically (``backend="auto"``): the C library shipped by the
``espeakng_loader`` pip package (``"library"``, preferred), else the ``espeak-ng`` program on
PATH (``"binary"``). Nothing is loaded at import time.
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass
from typing import Callable

import numpy as np

from ..errors import InvalidInputError, SpeechEngineError
from . import espeak_cli, espeak_lib
from .result import Speech
from .voices import VoiceCatalog

BACKENDS = ("auto", "library", "binary")
MIN_RATE_WPM, MAX_RATE_WPM = 80, 450  # espeak-ng's documented speaking-rate range
MIN_PITCH, MAX_PITCH = 0, 100  # espeak-ng's pitch range; 50 is the voice's normal pitch
FIX_HINT = "fix: `pip install espeakng-loader` (library) or `apt-get install espeak-ng` (binary on PATH)"


@dataclass(frozen=True)
class _Backend:
    name: str
    catalog: VoiceCatalog
    speak: Callable[[str, str, int, int], tuple[np.ndarray, int]]  # -> int16 [T], Hz


def _library_backend() -> _Backend:
    lib = espeak_lib.get_library()

    def speak(text: str, voice: str, rate_wpm: int, pitch: int) -> tuple[np.ndarray, int]:
        return lib.synthesize(text, voice, rate_wpm, pitch), lib.sample_rate

    return _Backend("library", lib.catalog, speak)


def _binary_backend() -> _Backend:
    binary = espeak_cli.find_binary()
    if binary is None:
        raise SpeechEngineError(f"the `{espeak_cli.BINARY_NAME}` program is not on PATH; {FIX_HINT}")

    def speak(text: str, voice: str, rate_wpm: int, pitch: int) -> tuple[np.ndarray, int]:
        return espeak_cli.synthesize(binary, text, voice, rate_wpm, pitch)

    return _Backend("binary", espeak_cli.voice_catalog(binary), speak)


def _select_backend(backend: str) -> _Backend:
    if backend not in BACKENDS:
        raise InvalidInputError(f"unknown speech backend {backend!r}; choose one of {', '.join(BACKENDS)}")
    if backend == "library":
        return _library_backend()
    if backend == "binary":
        return _binary_backend()
    try:
        return _library_backend()
    except SpeechEngineError as library_error:
        if espeak_cli.find_binary() is None:
            raise SpeechEngineError(
                f"no espeak-ng available (library: {library_error.message}; "
                f"binary: `{espeak_cli.BINARY_NAME}` not on PATH); {FIX_HINT}"
            ) from library_error
        return _binary_backend()


def available_backend() -> str:
    """Return the backend ``"auto"`` picks now: ``"library"`` or ``"binary"``.

    Raises:
        SpeechEngineError: neither is available (message says how to install one).
    """
    return _select_backend("auto").name


def list_voices(*, backend: str = "auto") -> list[str]:
    """Return the sorted language codes the chosen backend can speak (``"en"``, ``"de"``, ...).

    ``synthesize`` also accepts espeak-ng voice names and file identifiers (``"gmw/en-US"``)
    and a ``+variant`` suffix (``"en+f3"``).

    Raises:
        InvalidInputError: unknown ``backend``.
        SpeechEngineError: no espeak-ng available.
    """
    return list(_select_backend(backend).catalog.codes)


def _check_int(name: str, value: object, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise InvalidInputError(f"{name} must be an integer in {low}..{high}, got {value!r}")
    if not low <= int(value) <= high:
        raise InvalidInputError(f"{name} must be in {low}..{high}, got {value}")
    return int(value)


def synthesize(
    text: str,
    *,
    voice: str = "en",
    rate_wpm: int = 175,
    pitch: int = 50,
    backend: str = "auto",
) -> Speech:
    """Speak ``text`` with espeak-ng.

    Args:
        text: what to say (any length; thousands of words are fine). NUL characters are
            replaced by spaces.
        voice: an espeak-ng voice: a language code from ``list_voices()`` (``"en"``,
            ``"en-us"``, ``"de"``), optionally with a variant (``"en+f3"``).
        rate_wpm: speaking rate in words per minute, 80..450.
        pitch: base pitch, 0..100 (50 = the voice's normal pitch).
        backend: ``"auto"`` (library if available, else binary), ``"library"`` or ``"binary"``.

    Returns:
        Speech with float32 samples shaped ``[1, T]`` in -1..1 at espeak-ng's rate (22050 Hz).

    Raises:
        InvalidInputError: empty/whitespace or non-string text, unknown voice (message lists
            the valid ones), rate or pitch out of range, unknown backend.
        SpeechEngineError: no espeak-ng is available (message says how to install one), or
            espeak-ng failed or produced no audio.
    """
    if not isinstance(text, str):
        raise InvalidInputError(f"text must be a string, got {type(text).__name__}")
    if not text.strip():
        raise InvalidInputError("text is empty: give at least one word to speak")
    rate_wpm = _check_int("rate_wpm", rate_wpm, MIN_RATE_WPM, MAX_RATE_WPM)
    pitch = _check_int("pitch", pitch, MIN_PITCH, MAX_PITCH)
    chosen = _select_backend(backend)
    voice = chosen.catalog.check(voice)
    pcm, sample_rate = chosen.speak(text, voice, rate_wpm, pitch)
    if pcm.size == 0:
        raise SpeechEngineError(f"espeak-ng ({chosen.name}) produced no audio for the text")
    samples = (pcm.astype(np.float32) / np.float32(32768.0)).reshape(1, -1)
    return Speech(samples=samples, sample_rate=int(sample_rate))
