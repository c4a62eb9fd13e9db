"""The ``infinitetalk`` pipeline: Wan2.1 I2V + InfiniteTalk lip sync on a cloned voice (or a
speech recording), upscaled (faces optionally restored) and stored in S3-compatible storage."""

from __future__ import annotations

from typing import Any

from ...paths import API_WORKFLOWS_DIR
from .base import OutputSpec, Param, Pipeline, Stage, Values
from .common import (BUCKET, F5_MODELS, FACE_RESTORE, FACE_RESTORE_STRENGTH, PORTRAIT, PROFILE, PROMPT, SCRIPT,
                     SCRIPT_WRITER, STORAGE, UPSCALE, UPSCALE_FACTOR, VOICE_MODEL, VOICE_SAMPLE, VOICE_TRANSCRIPT,
                     bind_script_writer, bind_video_output, check_upscaled_speech_inputs, check_voice_model,
                     require_portrait, require_voice_sample, seed, store_stage)
from .workflow import link, node_inputs

#: Manifest name -> (pipeline parameter naming its file, the file name ComfyUI's loader sees).
INFINITETALK_MODELS = {
    "wan2.1_i2v_480p_14B_fp8": ("wan_model", "wan2.1_i2v_480p_14B_fp8_e4m3fn.safetensors"),
    "infinitetalk_single": ("infinitetalk_patch", "wan2.1_infiniteTalk_single_fp16.safetensors"),
    "wan_2.1_vae": ("vae", "wan_2.1_vae.safetensors"),
    "umt5_xxl_fp8": ("text_encoder", "umt5_xxl_fp8_e4m3fn_scaled.safetensors"),
    "clip_vision_h": ("clip_vision", "clip_vision_h.safetensors"),
    "wav2vec2_chinese_base": ("audio_encoder", "wav2vec2-chinese-base_fp16.safetensors"),
}
#: Manifest name -> (parameter, default file) of the upscaler and the optional face restorer.
INFINITETALK_UPSCALE_MODELS = {
    "RealESRGAN_x4plus": ("upscale_model", "RealESRGAN_x4plus.safetensors"),
    "GFPGANv1.4": ("face_restore_model", "GFPGANv1.4.pth"),
}


def check(values: Values) -> None:
    """A portrait; face_restore only with upscale; either a ``speech_recording`` or exactly one of
    ``prompt`` / ``script`` with a voice sample and its transcript."""
    require_portrait(values)
    if check_upscaled_speech_inputs(values):
        require_voice_sample(values, "or give a 'speech_recording'")
    check_voice_model(values)


def rewire(prompt: dict[str, Any], values: Values, pipeline: Pipeline) -> None:
    """Speech source, optional conditionings and upscaling, and the storage node in SaveVideo's place."""
    talk = node_inputs(prompt, "InfiniteTalk")
    bind_script_writer(prompt, values)
    node_inputs(prompt, "Voice clone")["seed"] = values.get("seed", 0)
    if "speech_recording" in values:
        talk["audio"] = link(prompt, "Speech recording")
    if not values.get("clip_vision_enabled", True):
        talk.pop("clip_vision_output", None)
    if values.get("text_conditioning", "encoder") == "none":
        # No text encoder: the node makes zero conditioning itself (pruning drops the encoder nodes).
        talk.pop("positive", None)
        talk.pop("negative", None)
    if not values.get("face_restore", False):
        node_inputs(prompt, "Upscale").pop("face_restore_model", None)  # pruning drops the loader
    bind_video_output(prompt, values, "InfiniteTalk")


def models(values: Values) -> list[str]:
    """The manifest models a job needs: those whose file parameter still names the default file
    (and only for the parts the job uses), plus F5-TTS's unless a speech recording is given."""
    needed = []
    for name, (param, default_file) in INFINITETALK_MODELS.items():
        if param == "clip_vision" and not values.get("clip_vision_enabled", True):
            continue
        if param == "text_encoder" and values.get("text_conditioning", "encoder") == "none":
            continue
        if values.get(param, default_file) == default_file:
            needed.append(name)
    for name, (param, default_file) in INFINITETALK_UPSCALE_MODELS.items():
        wanted = values.get("upscale", True) and (param == "upscale_model" or values.get("face_restore", False))
        if wanted and values.get(param, default_file) == default_file:
            needed.append(name)
    if "speech_recording" not in values:
        needed.extend(F5_MODELS)
    return needed


def _model_params() -> tuple[Param, ...]:
    """The parameters naming each model file (defaults: the manifest's files)."""
    files = {param: default for param, default in (*INFINITETALK_MODELS.values(), *INFINITETALK_UPSCALE_MODELS.values())}
    return (
        Param("wan_model", "string", "Wan model", "unet_name", "Wan2.1 I2V file in models/diffusion_models.",
              default=files["wan_model"]),
        Param("infinitetalk_patch", "string", "InfiniteTalk patch", "name", "InfiniteTalk patch in models/model_patches.",
              default=files["infinitetalk_patch"]),
        Param("vae", "string", "Wan VAE", "vae_name", "Wan2.1 VAE in models/vae.", default=files["vae"]),
        Param("text_encoder", "string", "Text encoder", "clip_name", "umt5-xxl in models/text_encoders.",
              default=files["text_encoder"]),
        Param("clip_vision", "string", "Clip vision model", "clip_name", "CLIP vision H in models/clip_vision.",
              default=files["clip_vision"]),
        Param("audio_encoder", "string", "Audio encoder", "audio_encoder_name", "wav2vec2 in models/audio_encoders.",
              default=files["audio_encoder"]),
        Param("upscale_model", "string", "Upscale model", "model_name", "Upscaler in models/upscale_models.",
              default=files["upscale_model"]),
        Param("face_restore_model", "string", "Face restore model", "model_name",
              "Face restoration model in models/upscale_models (for face_restore=true).",
              default=files["face_restore_model"]),
    )


def _video_params() -> tuple[Param, ...]:
    """Sampling, size, upscaling, storage and conditioning switches."""
    return (
        Param("positive_prompt", "text", "Positive", "text", "What the video shows (text conditioning)."),
        Param("negative_prompt", "text", "Negative", "text", "What the video should avoid."),
        Param("width", "integer", "InfiniteTalk", "width", "Video width (multiple of 16) before upscaling.",
              default=832, minimum=16, maximum=4096),
        Param("height", "integer", "InfiniteTalk", "height", "Video height (multiple of 16) before upscaling.",
              default=480, minimum=16, maximum=4096),
        Param("steps", "integer", "InfiniteTalk", "steps", "Sampling steps per window.", default=20, minimum=1, maximum=200),
        Param("cfg", "number", "InfiniteTalk", "cfg", "Text guidance.", default=5.0, minimum=0, maximum=30),
        Param("audio_cfg", "number", "InfiniteTalk", "audio_cfg", "Audio guidance (lip sync strength).",
              default=4.0, minimum=0, maximum=30),
        UPSCALE,
        UPSCALE_FACTOR,
        FACE_RESTORE,
        FACE_RESTORE_STRENGTH,
        STORAGE,
        Param("text_conditioning", "string", None, None, "Text conditioning: encoder (umt5 via the text "
              "encoder and the prompts) or none (zero conditioning, no text encoder needed).",
              default="encoder", choices=("encoder", "none")),
        BUCKET,
        Param("clip_vision_enabled", "boolean", None, None, "Condition on a CLIP vision encoding of the portrait.",
              default=True),
    )


def pipeline() -> Pipeline:
    return Pipeline(
        name="infinitetalk",
        description="Lip-synced talking head with InfiniteTalk on Wan2.1 I2V (Apache-2.0 weights): a prompt "
        "(drafted by a local LLM via Ollama) or a finished script spoken in a cloned voice (F5-TTS, "
        "CC-BY-NC-4.0 weights), or a speech recording as is; upscaled with RealESRGAN (faces optionally "
        "restored with GFPGAN) and stored in "
        "S3-compatible storage (MYSPINBOT_S3_*). Needs a GPU for real use.",
        workflow_file=API_WORKFLOWS_DIR / "infinitetalk.json",
        params=(
            PORTRAIT, PROMPT, SCRIPT,
            Param("speech_recording", "audio", "Speech recording", "audio",
                  "A finished speech recording to animate as is (no script, no voice cloning)."),
            VOICE_SAMPLE, VOICE_TRANSCRIPT, VOICE_MODEL, PROFILE, *SCRIPT_WRITER,
            seed("InfiniteTalk", "Seed for the script, the voice and the video."),
            *_video_params(),
            *_model_params(),
        ),
        outputs=(OutputSpec("video", "video", "Save video"),),
        save_prefix_node="Save video",
        check=check,
        rewire=rewire,
        stages=(
            Stage("script", ("Script writer",), "writing the script", weight=0.02),
            Stage("speech", ("Voice sample", "Voice clone", "Speech recording"), "speaking the script", weight=0.08),
            Stage("load", ("Wan model", "InfiniteTalk patch", "Wan VAE", "Text encoder", "Positive", "Negative",
                           "Clip vision model", "Clip vision", "Audio encoder"), "loading the models", weight=0.05),
            Stage("animate", ("InfiniteTalk",), "animating the portrait", weight=0.65),
            Stage("upscale", ("Upscale model", "Face restore model", "Upscale"), "upscaling the video", weight=0.15),
            Stage("encode", ("Save video",), "saving and uploading the video", weight=0.03),
            store_stage(0.02),
        ),
        models=models,
        gpu=True,
        profile_uses=("voice", "portrait"),
    )
