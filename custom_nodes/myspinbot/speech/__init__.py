"""Weightless speech: espeak-ng text to speech and audio file input/output.

No ComfyUI imports; nothing is loaded at import time (the espeak-ng library and PyAV
are loaded on first use).
"""

from .audio_io import load_audio, probe_audio, resample, to_mono, write_wav
from .espeak import available_backend, list_voices, synthesize
from .result import Speech

__all__ = [
    "Speech",
    "available_backend",
    "list_voices",
    "load_audio",
    "probe_audio",
    "resample",
    "synthesize",
    "to_mono",
    "write_wav",
]
