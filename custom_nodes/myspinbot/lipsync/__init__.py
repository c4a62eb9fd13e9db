"""Lip-sync engine: the Wav2Lip generator (Prajwal et al., ACM MM 2020), its strict checkpoint
loader, the mel-spectrogram front end it was trained on, and a streaming file-to-file
inference loop (:func:`lip_sync`); and the lip-sync score: SyncNet (Chung & Zisserman, ACCV
2016 workshops), its strict loader, its MFCC front end and the offset / LSE-D / LSE-C
evaluation (:func:`score_lipsync`).

Imports no ComfyUI module.
"""

from .boxes import BoxSettings
from .engine import LipSyncResult, LipSyncSettings, lip_sync
from .errors import InvalidModelError
from .loader import check_state_dict, load_wav2lip, read_state_dict
from .mel import WAV2LIP_MEL, WINDOW_FRAMES, MelConfig, mel_windows, melspectrogram, window_starts
from .mfcc import SYNCNET_MFCC, MfccConfig, mfcc
from .sync_stats import SyncStats, offset_distances, sync_stats
from .syncnet import SyncNet, SyncNetConfig
from .syncnet_loader import load_syncnet
from .syncnet_score import ScoreSettings, SyncScore, score_lipsync
from .wav2lip import Wav2Lip, Wav2LipConfig

__all__ = [
    "BoxSettings",
    "LipSyncResult",
    "LipSyncSettings",
    "InvalidModelError",
    "MelConfig",
    "MfccConfig",
    "SYNCNET_MFCC",
    "ScoreSettings",
    "SyncNet",
    "SyncNetConfig",
    "SyncScore",
    "SyncStats",
    "WAV2LIP_MEL",
    "WINDOW_FRAMES",
    "Wav2Lip",
    "Wav2LipConfig",
    "check_state_dict",
    "lip_sync",
    "load_syncnet",
    "load_wav2lip",
    "mel_windows",
    "melspectrogram",
    "mfcc",
    "offset_distances",
    "score_lipsync",
    "sync_stats",
    "read_state_dict",
    "window_starts",
]
