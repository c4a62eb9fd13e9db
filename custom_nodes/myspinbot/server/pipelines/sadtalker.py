"""The ``sadtalker`` pipeline: a prompt (drafted by a local LLM via Ollama) or a finished script,
spoken in a cloned voice (F5-TTS) or by espeak-ng (or a speech recording as is), animated from
one portrait by SadTalker (head motion and expression from the audio), optionally upscaled
(faces optionally restored) and stored in S3-compatible storage."""

from __future__ import annotations

from typing import Any

from ...paths import API_WORKFLOWS_DIR
from ..api_errors import ApiError
from .base import OutputSpec, Param, Pipeline, Stage, Values
from .common import (BUCKET, F5_MODELS, FACE_RESTORE, FACE_RESTORE_STRENGTH, PORTRAIT, PROFILE, PROMPT, SCRIPT,
                     SCRIPT_WRITER, STORAGE, UPSCALE, UPSCALE_FACTOR, VOICE_MODEL, VOICE_SAMPLE, VOICE_TRANSCRIPT,
                     bind_script_writer, bind_video_output, check_upscaled_speech_inputs, check_voice_model,
                     require_portrait, require_voice_sample, store_stage)
from .workflow import link, node_inputs

SIZES = (256, 512)
NODE_SEED_MAX = 2 ** 31 - 1  # the SadTalker node's own limit (below common.SEED_MAX)
CHECKPOINT_FILES = {256: "SadTalker_V0.0.2_256.safetensors", 512: "SadTalker_V0.0.2_512.safetensors"}
MAPPING_FILES = {"crop": "mapping_00229-model.pth.tar", "resize": "mapping_00229-model.pth.tar",
                 "full": "mapping_00109-model.pth.tar"}
#: File name ComfyUI's loader sees -> manifest name. A job naming one of these files needs that
#: manifest model (preflight); any other file name is the user's own.
SADTALKER_MODEL_FILES = {
    "SadTalker_V0.0.2_256.safetensors": "sadtalker_256",
    "SadTalker_V0.0.2_512.safetensors": "sadtalker_512",
    "mapping_00229-model.pth.tar": "sadtalker_mapping",
    "mapping_00109-model.pth.tar": "sadtalker_mapping",
    "RealESRGAN_x4plus.safetensors": "RealESRGAN_x4plus",
    "RealESRGAN_x2plus.pth": "RealESRGAN_x2plus",
    "GFPGANv1.4.pth": "GFPGANv1.4",
}
DEFAULT_UPSCALE = "RealESRGAN_x4plus.safetensors"
DEFAULT_FACE_RESTORE = "GFPGANv1.4.pth"


def check(values: Values) -> None:
    """A portrait; size 256 or 512; face_restore only with upscale; either a ``speech_recording``
    or exactly one of ``prompt`` / ``script`` (with speech=f5 a voice sample and its transcript)."""
    require_portrait(values)
    if values.get("size", 256) not in SIZES:
        raise ApiError(422, "invalid_parameter", "parameter 'size' must be 256 or 512", {"field": "size"})
    if check_upscaled_speech_inputs(values) and values.get("speech", "f5") == "f5":
        require_voice_sample(values, "or choose speech=espeak, which needs neither, or give a 'speech_recording'")
    check_voice_model(values)


def _files(values: Values) -> tuple[str, str]:
    """The checkpoint and mapping files a job loads (by default: the size's and the mode's)."""
    checkpoint = values.get("checkpoint") or CHECKPOINT_FILES[values.get("size", 256)]
    mapping = values.get("mapping") or MAPPING_FILES[values.get("preprocess", "crop")]
    return checkpoint, mapping


def rewire(prompt: dict[str, Any], values: Values, pipeline: Pipeline) -> None:
    """One seed for writer, voice and animation; the speech source; the model files; upscaling
    (and face restoration) or not; the storage node in SaveVideo's place."""
    seed_value = values.get("seed", 0)
    bind_script_writer(prompt, values)
    node_inputs(prompt, "Voice clone")["seed"] = seed_value
    talk = node_inputs(prompt, "SadTalker")
    talk["size"] = str(values.get("size", 256))
    if "speech_recording" in values:
        talk["audio"] = link(prompt, "Speech recording")
    elif values.get("speech", "f5") == "espeak":
        talk["audio"] = link(prompt, "Fallback speech")
    loader = node_inputs(prompt, "SadTalker model")
    loader["checkpoint"], loader["mapping"] = _files(values)
    if not values.get("face_restore", False):
        node_inputs(prompt, "Upscale").pop("face_restore_model", None)  # pruning drops the loader
    bind_video_output(prompt, values, "SadTalker")


def models(values: Values) -> list[str]:
    """The manifest models a job needs: those of the files it loads that the manifest lists
    (SadTalker's checkpoint and mapping; the upscaler and face restorer only when used), plus
    F5-TTS's with speech=f5 (unless a speech recording is given)."""
    files = list(_files(values))
    if values.get("upscale", True):
        files.append(values.get("upscale_model", DEFAULT_UPSCALE))
        if values.get("face_restore", False):
            files.append(values.get("face_restore_model", DEFAULT_FACE_RESTORE))
    needed: list[str] = []
    for file in files:
        name = SADTALKER_MODEL_FILES.get(file)
        if name is not None and name not in needed:
            needed.append(name)
    if "speech_recording" not in values and values.get("speech", "f5") == "f5":
        needed.extend(F5_MODELS)
    return needed


def _animation_params() -> tuple[Param, ...]:
    """SadTalker's own settings and model files."""
    return (
        Param("seed", "integer", "SadTalker", "seed", "Seed for the script, the voice and the animation "
              "(blinks, head motion): same seed, same video.", default=0, minimum=0, maximum=NODE_SEED_MAX),
        Param("size", "integer", None, None, "Face resolution: 256 or 512 (the checkpoint of that size).",
              default=256, minimum=256, maximum=512),
        Param("preprocess", "string", "SadTalker", "preprocess", "crop: the face square; resize: the whole "
              "portrait; full: the animated face pasted back into the portrait.", default="crop",
              choices=("crop", "resize", "full")),
        Param("still", "boolean", "SadTalker", "still", "Keep the portrait's head pose (presenters).", default=False),
        Param("pose_style", "integer", "SadTalker", "pose_style", "Head-motion style (0..45).", default=0,
              minimum=0, maximum=45),
        Param("expression_scale", "number", "SadTalker", "expression_scale", "Strength of the expressions.",
              default=1.0, minimum=0.1, maximum=3.0),
        Param("batch_size", "integer", "SadTalker", "batch_size", "Frames per renderer call.", default=2,
              minimum=1, maximum=64),
        Param("max_frames", "integer", "SadTalker", "max_frames", "Animate at most this many frames (25 fps) of "
              "the speech, which is cut to match (0: the whole speech).", default=0, minimum=0, maximum=100000),
        Param("checkpoint", "string", None, None, "SadTalker checkpoint in models/sadtalker (empty: "
              "SadTalker_V0.0.2_<size>.safetensors)."),
        Param("mapping", "string", None, None, "Mapping checkpoint in models/sadtalker (empty: "
              "mapping_00229-model.pth.tar for crop/resize, mapping_00109-model.pth.tar for full)."),
    )


def _output_params() -> tuple[Param, ...]:
    """Upscaling, face restoration and storage."""
    return (
        UPSCALE,
        Param("upscale_model", "string", "Upscale model", "model_name", "Upscaler in models/upscale_models.",
              default=DEFAULT_UPSCALE),
        UPSCALE_FACTOR,
        FACE_RESTORE,
        Param("face_restore_model", "string", "Face restore model", "model_name",
              "Face restoration model in models/upscale_models (for face_restore=true).",
              default=DEFAULT_FACE_RESTORE),
        FACE_RESTORE_STRENGTH,
        STORAGE,
        BUCKET,
    )


def pipeline() -> Pipeline:
    return Pipeline(
        name="sadtalker",
        description="Portrait -> talking head with SadTalker (Zhang et al., CVPR 2023; Apache-2.0 code and "
        "weights): a prompt (drafted by a local LLM via Ollama) or a finished script, spoken in a cloned voice "
        "(F5-TTS, CC-BY-NC-4.0 weights) or by espeak-ng, or a speech recording as is; head motion and "
        "expression predicted from the audio (pose style, still mode, expression scale), rendered at 256 or "
        "512 px (crop, resize or pasted back into the full portrait); optionally upscaled with RealESRGAN "
        "(faces optionally restored with GFPGAN) and stored in S3-compatible storage (MYSPINBOT_S3_*).",
        workflow_file=API_WORKFLOWS_DIR / "sadtalker.json",
        params=(
            PORTRAIT, PROMPT, SCRIPT,
            Param("speech_recording", "audio", "Speech recording", "audio",
                  "A finished speech recording to animate as is (no script, no voice cloning)."),
            VOICE_SAMPLE, VOICE_TRANSCRIPT, VOICE_MODEL, PROFILE,
            Param("speech", "string", None, None, "Speech engine: f5 (cloned voice) or espeak (no weights).",
                  default="f5", choices=("f5", "espeak")),
            Param("voice", "string", "Fallback speech", "voice", "espeak-ng voice when speech=espeak.", default="en"),
            *SCRIPT_WRITER,
            *_animation_params(),
            *_output_params(),
        ),
        outputs=(OutputSpec("video", "video", "Save video"),),
        save_prefix_node="Save video",
        check=check,
        rewire=rewire,
        stages=(
            Stage("script", ("Script writer",), "writing the script", weight=0.02),
            Stage("speech", ("Voice sample", "Voice clone", "Fallback speech", "Speech recording"),
                  "speaking the script", weight=0.1),
            Stage("load", ("SadTalker model",), "loading the models", weight=0.03),
            Stage("animate", ("SadTalker",), "animating the portrait", weight=0.7),
            Stage("upscale", ("Upscale model", "Face restore model", "Upscale"), "upscaling the video", weight=0.1),
            Stage("encode", ("Save video",), "saving and uploading the video", weight=0.03),
            store_stage(0.02),
        ),
        models=models,
        profile_uses=("voice", "portrait"),
        gpu=True,
    )
