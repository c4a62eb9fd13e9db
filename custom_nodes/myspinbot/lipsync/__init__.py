"""Lip-sync engine: the Wav2Lip generator (Prajwal et al., ACM MM 2020), its strict checkpoint
loader, the mel-spectrogram front end it was trained on, and a streaming file-to-file
inference loop (:func:`lip_sync`).

Imports no ComfyUI module.
"""

from .boxes import BoxSettings
from .engine import LipSyncResult, LipSyncSettings, lip_sync
from .errors import InvalidModelError
from .loader import check_state_dict, load_wav2lip, read_state_dict
from .mel import WAV2LIP_MEL, WINDOW_FRAMES, MelConfig, mel_windows, melspectrogram, window_starts
from .wav2lip import Wav2Lip, Wav2LipConfig

__all__ = [
    "BoxSettings",
    "LipSyncResult",
    "LipSyncSettings",
    "InvalidModelError",
    "MelConfig",
    "WAV2LIP_MEL",
    "WINDOW_FRAMES",
    "Wav2Lip",
    "Wav2LipConfig",
    "check_state_dict",
    "lip_sync",
    "load_wav2lip",
    "mel_windows",
    "melspectrogram",
    "read_state_dict",
    "window_starts",
]
