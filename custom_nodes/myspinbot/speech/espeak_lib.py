"""espeak-ng through its C library (ctypes), located with the ``espeakng_loader`` package.

The library is loaded and initialised lazily, once, on the first ``get_library()`` call (never
at import). libespeak-ng keeps process-global state and is not thread-safe, so every call into
it happens under ``_LOCK``; the synth callback is re-registered on each synthesis in case
another user of the same shared library (e.g. a phonemizer) replaced it.
"""

from __future__ import annotations

import ctypes
import threading
from pathlib import Path

import numpy as np

from ..errors import InvalidInputError, SpeechEngineError
from .voices import VoiceCatalog, catalog_from_data_dir

INSTALL_HINT = "install it with `pip install espeakng-loader` (or `apt-get install espeak-ng` for the binary)"

# Constants from espeak-ng's speak_lib.h.
AUDIO_OUTPUT_SYNCHRONOUS = 2
ESPEAK_INITIALIZE_DONT_EXIT = 0x8000
POS_CHARACTER = 1
ESPEAK_CHARS_UTF8 = 1
ESPEAK_RATE = 1
ESPEAK_PITCH = 3
EE_OK = 0
EE_NOT_FOUND = 2
_BUFFER_MS = 200  # length of the chunks handed to the callback

# int SynthCallback(short *wav, int numsamples, espeak_EVENT *events); non-zero aborts.
_SynthCallback = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p)

_LOCK = threading.RLock()
_HANDLE: "EspeakLibrary | None" = None


def locate() -> tuple[str, str]:
    """Return ``(library_path, data_path)`` of the espeak-ng shipped by ``espeakng_loader``.

    Raises:
        SpeechEngineError: the package is not installed or its files are missing.
    """
    try:
        import espeakng_loader  # noqa: PLC0415 - optional dependency, imported on demand
    except ImportError as exc:
        raise SpeechEngineError(f"espeak-ng library not available: espeakng_loader missing; {INSTALL_HINT}") from exc
    try:
        library_path = str(espeakng_loader.get_library_path())
        data_path = str(espeakng_loader.get_data_path())
    except Exception as exc:  # the loader raises RuntimeError for missing data
        raise SpeechEngineError(f"espeakng_loader is broken ({exc}); {INSTALL_HINT}") from exc
    if not Path(library_path).is_file():
        raise SpeechEngineError(f"espeak-ng library missing at {library_path}; {INSTALL_HINT}")
    return library_path, data_path


class EspeakLibrary:
    """An initialised libespeak-ng (synchronous mode, samples collected by a callback).

    Use ``get_library()`` rather than constructing this: the C library can be initialised
    only once per process.

    Attributes:
        sample_rate: output rate in Hz reported by espeak_Initialize (22050).
        catalog: the voices found in the data directory.

    Raises:
        SpeechEngineError: the library cannot be loaded or initialised.
    """

    def __init__(self, library_path: str, data_path: str):
        self.library_path = library_path
        self.data_path = data_path
        try:
            lib = ctypes.CDLL(library_path)
        except OSError as exc:
            raise SpeechEngineError(f"cannot load espeak-ng library {library_path}: {exc}; {INSTALL_HINT}") from exc
        _declare_signatures(lib)
        rate = lib.espeak_Initialize(
            AUDIO_OUTPUT_SYNCHRONOUS, _BUFFER_MS, data_path.encode("utf-8"), ESPEAK_INITIALIZE_DONT_EXIT
        )
        if rate <= 0:
            raise SpeechEngineError(
                f"espeak_Initialize failed (returned {rate}) with data path {data_path}; {INSTALL_HINT}"
            )
        self._lib = lib
        self.sample_rate = int(rate)
        self.catalog: VoiceCatalog = catalog_from_data_dir(data_path)
        self._chunks: list[bytes] | None = None
        self._callback_error: BaseException | None = None
        self._callback = _SynthCallback(self._on_audio)  # kept alive as long as self

    def _on_audio(self, wav, numsamples, events) -> int:  # noqa: ARG002 - events unused
        try:
            if self._chunks is not None and numsamples > 0 and wav:
                self._chunks.append(ctypes.string_at(wav, numsamples * ctypes.sizeof(ctypes.c_short)))
            return 0
        except BaseException as exc:  # never let an exception cross the C boundary
            self._callback_error = exc
            return 1

    def synthesize(self, text: str, voice: str, rate_wpm: int, pitch: int) -> np.ndarray:
        """Speak ``text``; return int16 samples, shape ``[T]``, at ``self.sample_rate`` Hz.

        Arguments are assumed validated by the caller (``voice`` checked against
        ``self.catalog``, ``rate_wpm`` 80..450, ``pitch`` 0..100).

        Raises:
            InvalidInputError: espeak-ng does not know ``voice``.
            SpeechEngineError: espeak-ng reported an error during synthesis.
        """
        data = text.replace("\x00", " ").encode("utf-8") + b"\x00"
        with _LOCK:
            lib = self._lib
            status = lib.espeak_SetVoiceByName(voice.encode("utf-8"))
            if status == EE_NOT_FOUND:
                raise InvalidInputError(
                    f"unknown voice {voice!r}; valid voices: {', '.join(self.catalog.codes)}",
                    details={"voice": voice},
                )
            if status != EE_OK:
                raise SpeechEngineError(f"espeak_SetVoiceByName({voice!r}) failed with status {status}")
            for parameter, value in ((ESPEAK_RATE, rate_wpm), (ESPEAK_PITCH, pitch)):
                status = lib.espeak_SetParameter(parameter, int(value), 0)
                if status != EE_OK:
                    raise SpeechEngineError(f"espeak_SetParameter({parameter}, {value}) failed with status {status}")
            lib.espeak_SetSynthCallback(self._callback)
            self._chunks, self._callback_error = [], None
            try:
                status = lib.espeak_Synth(data, len(data), 0, POS_CHARACTER, 0, ESPEAK_CHARS_UTF8, None, None)
                if status == EE_OK:
                    status = lib.espeak_Synchronize()
                chunks, error = self._chunks, self._callback_error
            finally:
                self._chunks, self._callback_error = None, None
        if error is not None:
            raise SpeechEngineError(f"collecting espeak-ng audio failed: {error!r}") from error
        if status != EE_OK:
            raise SpeechEngineError(f"espeak_Synth failed with status {status}")
        return np.frombuffer(b"".join(chunks), dtype=np.int16)


def _declare_signatures(lib: ctypes.CDLL) -> None:
    """Set argtypes/restype of the espeak-ng functions this module calls."""
    c_int, c_uint, c_size_t, c_void_p, c_char_p = (
        ctypes.c_int, ctypes.c_uint, ctypes.c_size_t, ctypes.c_void_p, ctypes.c_char_p,
    )
    try:
        lib.espeak_Initialize.argtypes = [c_int, c_int, c_char_p, c_int]
        lib.espeak_Initialize.restype = c_int
        lib.espeak_SetSynthCallback.argtypes = [_SynthCallback]
        lib.espeak_SetSynthCallback.restype = None
        lib.espeak_SetVoiceByName.argtypes = [c_char_p]
        lib.espeak_SetVoiceByName.restype = c_int
        lib.espeak_SetParameter.argtypes = [c_int, c_int, c_int]
        lib.espeak_SetParameter.restype = c_int
        lib.espeak_Synth.argtypes = [c_void_p, c_size_t, c_uint, c_int, c_uint, c_uint, c_void_p, c_void_p]
        lib.espeak_Synth.restype = c_int
        lib.espeak_Synchronize.argtypes = []
        lib.espeak_Synchronize.restype = c_int
    except AttributeError as exc:
        raise SpeechEngineError(f"{lib._name} is not a usable espeak-ng library: {exc}; {INSTALL_HINT}") from exc


def get_library() -> EspeakLibrary:
    """Return the process-wide EspeakLibrary, loading and initialising it on first use.

    Thread-safe. A failed attempt is not cached: the next call tries again.

    Raises:
        SpeechEngineError: espeakng_loader is missing or the library cannot be initialised.
    """
    global _HANDLE
    with _LOCK:
        if _HANDLE is None:
            _HANDLE = EspeakLibrary(*locate())
        return _HANDLE
