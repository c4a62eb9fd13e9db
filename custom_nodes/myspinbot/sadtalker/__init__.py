"""SadTalker engine: audio-driven talking head from one portrait.

Zhang et al., "SadTalker: Learning Realistic 3D Motion Coefficients for Stylized Audio-Driven
Single Image Talking Face Animation" (CVPR 2023); our own implementation of the authors'
inference networks (OpenTalker/SadTalker, Apache-2.0), loading the official checkpoints
strictly: the face-vid2vid renderer (keypoint detector, dense motion network, occlusion-aware
SPADE generator), the mapping network, ExpNet, the PoseVAE decoder and the 3DMM coefficient
regressor; the audio -> coefficient stage (:func:`audio_to_coeffs`) and the renderer loop
(:func:`render_frames`); end to end, streaming to an MP4 (:func:`talking_head`). Imports no
ComfyUI module.
"""

from .audio_coeffs import MotionResult, audio_to_coeffs, frame_count, sadtalker_mel_windows

from .align import LM3D_STD, crop_box, recon_input, semantic_coeffs
from .dense_motion import DenseMotionConfig, DenseMotionNetwork
from .engine import SadTalkerResult, SadTalkerSettings, talking_head
from .expnet import ExpNet
from .face_recon import FaceReconNet
from .generator import GeneratorConfig, OcclusionAwareSpadeGenerator
from .keypoints import KeypointConfig, KeypointDetector
from .loader import (
    OFFICIAL_KEY_COUNTS,
    PARTS,
    SadTalkerNets,
    build_networks,
    load_mapping,
    load_sadtalker,
    split_checkpoint,
)
from .landmarks import five_points
from .mapping import MappingConfig, MappingNet, bins_to_degrees, rotation_matrix, transform_keypoints
from .posevae import Audio2Pose, PoseDecoder, PoseVaeConfig
from .render import driving_coeffs, render_frames, semantic_windows
from .spade import SpadeDecoder, SpectralNormConv2d

__all__ = [
    "Audio2Pose",
    "DenseMotionConfig",
    "DenseMotionNetwork",
    "ExpNet",
    "FaceReconNet",
    "GeneratorConfig",
    "KeypointConfig",
    "KeypointDetector",
    "LM3D_STD",
    "MappingConfig",
    "MappingNet",
    "MotionResult",
    "OFFICIAL_KEY_COUNTS",
    "OcclusionAwareSpadeGenerator",
    "PARTS",
    "PoseDecoder",
    "PoseVaeConfig",
    "SadTalkerNets",
    "SadTalkerResult",
    "SadTalkerSettings",
    "SpadeDecoder",
    "SpectralNormConv2d",
    "audio_to_coeffs",
    "bins_to_degrees",
    "build_networks",
    "crop_box",
    "driving_coeffs",
    "five_points",
    "frame_count",
    "load_mapping",
    "load_sadtalker",
    "recon_input",
    "render_frames",
    "rotation_matrix",
    "sadtalker_mel_windows",
    "semantic_coeffs",
    "semantic_windows",
    "split_checkpoint",
    "talking_head",
    "transform_keypoints",
]
