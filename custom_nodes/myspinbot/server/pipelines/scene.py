"""The ``scene`` pipeline: a local LLM writes a stage description and a narration (or the client
gives a ``script`` and a ``scene``); a Stable Diffusion checkpoint (optionally with the
character's LoRA) renders the scene, Stable Video Diffusion animates it, F5-TTS (or espeak-ng)
speaks the narration, Wav2Lip synchronises the lips, ESRGAN upscales, and the MP4 is stored.

Extension to the speech length: SVD yields 14 (img2vid) or 25 (img2vid-xt) frames, about a
second at 25 fps. The lip-sync node plays them ping-pong (forward, backward, forward ...) for
as long as the speech lasts. Looping would cut from the last frame back to the first once a
second (a visible jump, since SVD's frames drift away from the first); chaining new SVD
segments from each last frame would multiply the GPU time by the speech length and compound
the drift, so the face Wav2Lip needs degrades clip after clip. Ping-pong costs nothing, never
jumps, and SVD's small ambient motion (hair, light, camera sway) reads naturally in reverse.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from ...paths import API_WORKFLOWS_DIR
from ..api_errors import ApiError
from . import common
from .base import OutputSpec, Param, Pipeline, Stage, Values
from .common import (BUCKET, F5_MODELS, PROFILE, PROMPT, SCRIPT, SCRIPT_WRITER, STORAGE, UPSCALE, VOICE_SAMPLE,
                     VOICE_MODEL, VOICE_TRANSCRIPT, bind_script_writer, check_voice_model, bind_video_output,
                     has_text, prefix_text, require_voice_sample, seed, store_stage)
from .workflow import link, node_inputs

#: Parameter -> {file name ComfyUI's loader sees: manifest name}. A job that names one of these
#: files needs that manifest model (preflight); any other file name is the user's own.
SCENE_MODEL_FILES = {
    "checkpoint": {"v1-5-pruned-emaonly-fp16.safetensors": "sd15_pruned_emaonly_fp16"},
    "svd_checkpoint": {"svd.safetensors": "svd_img2vid", "svd_xt.safetensors": "svd_img2vid_xt"},
    "wav2lip_model": {"wav2lip.pth": "wav2lip", "wav2lip_gan.pth": "wav2lip_gan"},
    "upscale_model": {"RealESRGAN_x4plus.safetensors": "RealESRGAN_x4plus", "RealESRGAN_x2plus.pth": "RealESRGAN_x2plus"},
}
DEFAULT_FILES = {"checkpoint": "v1-5-pruned-emaonly-fp16.safetensors", "svd_checkpoint": "svd_xt.safetensors",
                 "wav2lip_model": "wav2lip_gan.pth", "upscale_model": "RealESRGAN_x4plus.safetensors"}

SCENE_IMAGE = Param("scene_image", "image", "Scene image", "image",
                    "A finished opening picture of the scene (PNG, JPEG, WebP): skips text-to-image.")
# The other pipelines' 'portrait' (the same part schema, so a form tool sees one file part), bound
# to the picture loader: a portrait is the opening picture as is, like 'scene_image'.
PORTRAIT = replace(common.PORTRAIT, node="Scene image")


def _image_given(values: Values) -> bool:
    return "portrait" in values or "scene_image" in values


def check(values: Values) -> None:
    """Exactly one of ``prompt`` / ``script``; at most one of ``portrait`` / ``scene_image``; a
    picture to start from (a given image, a ``scene`` description, or a prompt the LLM describes
    the scene from); with speech=f5 a voice sample and its transcript."""
    has_prompt, has_script = has_text(values, "prompt"), has_text(values, "script")
    if has_prompt == has_script:
        raise ApiError(422, "missing_script" if not has_prompt else "conflicting_inputs",
                       "give either a 'prompt' (the script writer drafts the narration and the scene) or a "
                       "finished 'script'", {"fields": ["prompt", "script"]})
    if "portrait" in values and "scene_image" in values:
        raise ApiError(422, "conflicting_inputs", "give a 'portrait' or a 'scene_image', not both",
                       {"fields": ["portrait", "scene_image"]})
    if has_script and not _image_given(values) and not has_text(values, "scene"):
        raise ApiError(422, "missing_scene", "with a finished 'script', describe the picture in 'scene' "
                       "(or give a 'scene_image' or 'portrait')", {"fields": ["scene", "scene_image", "portrait"]})
    if values.get("speech", "f5") == "f5":
        require_voice_sample(values, "or choose speech=espeak, which needs neither")
    check_voice_model(values)


def rewire(prompt: dict[str, Any], values: Values, pipeline: Pipeline) -> None:
    """Script writer mode, LoRA or not, where the picture comes from, SVD or a still, the speech
    engine, upscaling and the storage node in SaveVideo's place."""
    seed_value = values.get("seed", 0)
    bind_script_writer(prompt, values)
    if "script" not in values:
        node_inputs(prompt, "Script writer")["mode"] = "ollama_scene"
    if not has_text(values, "scene"):
        node_inputs(prompt, "Positive")["text"] = link(prompt, "Script writer", 1)  # the LLM's stage description
    if has_text(values, "trigger_word"):
        prefix_text(prompt, "Positive", "text", values["trigger_word"].strip())
    if has_text(values, "lora"):
        lora = node_inputs(prompt, "LoRA")
        lora["strength_clip"] = lora["strength_model"]
    else:  # no LoRA: the checkpoint's model and CLIP feed the sampler and the encoders directly
        node_inputs(prompt, "Scene sampler")["model"] = link(prompt, "Checkpoint", 0)
        for title in ("Positive", "Negative"):
            node_inputs(prompt, title)["clip"] = link(prompt, "Checkpoint", 1)
    picture = link(prompt, "Scene image") if _image_given(values) else link(prompt, "Scene decode")
    lipsync = node_inputs(prompt, "Lip sync")
    if values.get("motion", "svd") == "svd":
        svd = node_inputs(prompt, "SVD conditioning")
        svd["init_image"] = picture
        size = node_inputs(prompt, "Scene size")
        svd["width"], svd["height"] = size["width"], size["height"]
        node_inputs(prompt, "Motion sampler")["seed"] = seed_value
        lipsync["images"], lipsync["loop"] = link(prompt, "Motion decode"), "ping_pong"
    else:
        lipsync["images"], lipsync["loop"] = picture, "loop"
    node_inputs(prompt, "Voice clone")["seed"] = seed_value
    if values.get("speech", "f5") == "espeak":
        lipsync["audio"] = link(prompt, "Fallback speech")
    bind_video_output(prompt, values, "Lip sync")


def models(values: Values) -> list[str]:
    """The manifest models a job needs: the files it names that the manifest lists (the
    checkpoint only for text-to-image, SVD only for motion=svd, the upscaler only with
    upscale=true), plus F5-TTS's weights with speech=f5."""
    used = {"wav2lip_model"}
    if not _image_given(values):
        used.add("checkpoint")
    if values.get("motion", "svd") == "svd":
        used.add("svd_checkpoint")
    if values.get("upscale", True):
        used.add("upscale_model")
    needed = []
    for param, files in SCENE_MODEL_FILES.items():
        name = files.get(values.get(param, DEFAULT_FILES[param])) if param in used else None
        if name is not None:
            needed.append(name)
    if values.get("speech", "f5") == "f5":
        needed.extend(F5_MODELS)
    return needed


def _picture_params() -> tuple[Param, ...]:
    """The text-to-image and motion parameters."""
    return (
        Param("scene", "text", "Positive", "text", "What the opening picture shows (the text-to-image prompt); "
              "default: the stage description the LLM writes from 'prompt'."),
        Param("negative_prompt", "text", "Negative", "text", "What the picture should avoid."),
        PORTRAIT, SCENE_IMAGE,
        Param("checkpoint", "string", "Checkpoint", "ckpt_name", "An SD1.5 or SDXL checkpoint in models/checkpoints.",
              default=DEFAULT_FILES["checkpoint"]),
        Param("lora", "string", "LoRA", "lora_name", "The character's LoRA in models/loras (none: no LoRA)."),
        Param("trigger_word", "string", None, None, "Words put before the picture description (the LoRA's "
              "trigger word; a profile sets its own)."),
        Param("lora_strength", "number", "LoRA", "strength_model", "Strength of the LoRA on the model and the text "
              "encoder.", default=1.0, minimum=-4, maximum=4),
        Param("width", "integer", "Scene size", "width", "Picture width (multiple of 8) before upscaling.",
              default=768, minimum=64, maximum=2048),
        Param("height", "integer", "Scene size", "height", "Picture height (multiple of 8) before upscaling.",
              default=448, minimum=64, maximum=2048),
        Param("steps", "integer", "Scene sampler", "steps", "Text-to-image sampling steps.", default=25,
              minimum=1, maximum=150),
        Param("cfg", "number", "Scene sampler", "cfg", "Text-to-image guidance.", default=7.0, minimum=0, maximum=30),
        Param("motion", "string", None, None, "svd: animate the picture with Stable Video Diffusion (played "
              "ping-pong to the speech length); none: the still picture, lip-synced.", default="svd",
              choices=("svd", "none")),
        Param("svd_checkpoint", "string", "SVD model", "ckpt_name", "SVD img2vid (14 frames) or img2vid-xt "
              "(25 frames) checkpoint in models/checkpoints.", default=DEFAULT_FILES["svd_checkpoint"]),
        Param("motion_frames", "integer", "SVD conditioning", "video_frames", "Frames SVD makes (14 for img2vid, "
              "25 for img2vid-xt).", default=25, minimum=1, maximum=64),
        Param("motion_bucket_id", "integer", "SVD conditioning", "motion_bucket_id", "SVD's amount of motion "
              "(lower: calmer).", default=127, minimum=1, maximum=1023),
        Param("augmentation_level", "number", "SVD conditioning", "augmentation_level", "Noise added to the "
              "picture SVD starts from (more: more motion, less likeness).", default=0.0, minimum=0, maximum=10),
        Param("motion_steps", "integer", "Motion sampler", "steps", "SVD sampling steps.", default=20,
              minimum=1, maximum=100),
    )


def _output_params() -> tuple[Param, ...]:
    """Lip sync, upscaling and storage."""
    return (
        Param("fps", "number", "Lip sync", "fps", "Frame rate of the video.", default=25.0, minimum=1, maximum=60),
        Param("wav2lip_model", "string", "Wav2Lip model", "model_name", "Wav2Lip checkpoint in models/wav2lip "
              "(wav2lip_gan.pth: sharper mouths; wav2lip.pth: most accurate sync; non-commercial research licence).",
              default=DEFAULT_FILES["wav2lip_model"]),
        Param("require_face", "boolean", "Lip sync", "require_face", "A picture without a detectable face fails "
              "the job (no_face_detected); false: it is narrated as a voice-over, unchanged.", default=True),
        UPSCALE,
        Param("upscale_model", "string", "Upscale model", "model_name", "Upscaler in models/upscale_models.",
              default=DEFAULT_FILES["upscale_model"]),
        Param("upscale_factor", "number", "Upscale", "output_scale", "Size of the upscaled video relative to the "
              "lip-synced one; 0 = the model's own scale.", default=2.0, minimum=0, maximum=8),
        STORAGE,
        BUCKET,
    )


def pipeline() -> Pipeline:
    return Pipeline(
        name="scene",
        description="Scene -> video -> speech -> lip sync: a local LLM (Ollama) writes a stage description and a "
        "narration from a prompt (or give a script and a scene); a Stable Diffusion 1.5 or SDXL checkpoint "
        "(SD1.5 default: CreativeML Open RAIL-M), optionally with the character's LoRA, renders the scene; Stable Video "
        "Diffusion (Stability AI Community License) animates it and the frames are played ping-pong to the "
        "speech length (no jump, no extra GPU time; motion=none keeps the still); F5-TTS (CC-BY-NC-4.0 "
        "weights) or espeak-ng speaks; Wav2Lip (non-commercial research licence) synchronises the lips; "
        "RealESRGAN upscales; the MP4 is stored in S3-compatible storage. Needs a GPU for real use.",
        workflow_file=API_WORKFLOWS_DIR / "scene.json",
        params=(
            PROMPT, SCRIPT, VOICE_SAMPLE, VOICE_TRANSCRIPT, VOICE_MODEL, PROFILE,
            Param("speech", "string", None, None, "Speech engine: f5 (cloned voice) or espeak (no weights).",
                  default="f5", choices=("f5", "espeak")),
            Param("voice", "string", "Fallback speech", "voice", "espeak-ng voice when speech=espeak.", default="en"),
            *SCRIPT_WRITER,
            seed("Scene sampler", "Seed for the script, the picture, the motion and the voice."),
            *_picture_params(),
            *_output_params(),
        ),
        outputs=(OutputSpec("video", "video", "Save video"),),
        save_prefix_node="Save video",
        check=check,
        rewire=rewire,
        stages=(
            Stage("script", ("Script writer",), "writing the script and the scene", weight=0.02),
            Stage("scene", ("Checkpoint", "LoRA", "Positive", "Negative", "Scene size", "Scene sampler",
                            "Scene decode", "Scene image"), "rendering the scene", weight=0.1),
            Stage("motion", ("SVD model", "SVD conditioning", "SVD guidance", "Motion sampler", "Motion decode"),
                  "animating the scene", weight=0.3),
            Stage("speech", ("Voice sample", "Voice clone", "Fallback speech"), "speaking the script", weight=0.1),
            Stage("lipsync", ("Wav2Lip model", "Lip sync"), "synchronising the lips", weight=0.25),
            Stage("upscale", ("Upscale model", "Upscale"), "upscaling the video", weight=0.18),
            Stage("encode", ("Save video",), "saving and uploading the video", weight=0.03),
            store_stage(0.02),
        ),
        models=models,
        gpu=True,
        profile_uses=("voice", "lora"),
    )
