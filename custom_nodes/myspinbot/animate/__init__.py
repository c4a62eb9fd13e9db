"""Classical (weightless) talking-portrait animator.

A still portrait is animated to speech without neural weights: Haar-cascade face
finding, an audio-loudness mouth drive, a remap-based jaw drop with a painted mouth
interior, seeded eye blinks and a tiny head drift; frames stream into an MP4 with the
audio. Imports no ComfyUI module.
"""

from .animator import AnimationResult, animate_portrait, iter_frames
from .drive import MouthDrive, frame_count_for, mouth_drive
from .face import Box, FaceDetection, FaceLayout, detect_faces, face_layout, locate_face
from .inputs import fit_portrait, to_audio_channels_first, to_rgb_uint8
from .motion import blink_closure, head_drift
from .portrait import FrameControls, PortraitRenderer

__all__ = [
    "AnimationResult",
    "Box",
    "FaceDetection",
    "FaceLayout",
    "FrameControls",
    "MouthDrive",
    "PortraitRenderer",
    "animate_portrait",
    "blink_closure",
    "detect_faces",
    "face_layout",
    "fit_portrait",
    "frame_count_for",
    "head_drift",
    "iter_frames",
    "locate_face",
    "mouth_drive",
    "to_audio_channels_first",
    "to_rgb_uint8",
]
