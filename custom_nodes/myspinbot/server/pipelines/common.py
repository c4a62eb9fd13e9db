"""Parameters, checks and rewiring shared by several pipelines.

The titles used here (``Portrait``, ``Script writer``, ``Voice sample``, ``Voice clone``,
``Animate portrait``) are the node titles every workflow that has such a node uses.
"""

from __future__ import annotations

import re

from dataclasses import dataclass
from typing import Any

from ..api_errors import ApiError
from .base import Param, Pipeline, Stage, Values
from .workflow import link, node_by_title, node_inputs

SEED_MAX = 0xFFFFFFFF

F5_MODELS = ["F5TTS_v1_Base", "vocos_mel_24khz"]
"""Manifest names of the weights F5-TTS voice cloning needs."""

# --- parameters ---------------------------------------------------------------------------

PORTRAIT = Param("portrait", "image", "Portrait", "image", "Portrait photo (PNG, JPEG, WebP).")
FPS = Param("fps", "number", "Animate portrait", "fps", "Frame rate.", default=25.0, minimum=1, maximum=60)

# A narration drafted by the script writer from a prompt, or a finished script spoken as written.
PROMPT = Param("prompt", "text", "Script writer", "prompt", "What the narration should be about (Ollama writes it).")
SCRIPT = Param("script", "text", None, None, "A finished script, spoken as written (no LLM).")
SCRIPT_WRITER = (
    Param("length", "number", "Script writer", "target_seconds", "Target length of the narration, seconds.",
          default=30.0, minimum=3, maximum=600),
    Param("language", "string", "Script writer", "language", "Language of the narration.", default="English"),
    Param("llm_model", "string", "Script writer", "model", "Ollama model that writes the script.", default="llama3.2"),
)
"""How the script writer drafts: length, language and Ollama model."""

# The voice F5-TTS clones.
VOICE_SAMPLE = Param("voice_sample", "audio", "Voice sample", "audio", "3-12 s recording of the voice to clone.")
VOICE_TRANSCRIPT = Param("voice_transcript", "text", "Voice clone", "ref_text", "Exactly what is said in the voice sample.")
VOICE_MODEL = Param("voice_model", "string", "Voice clone", "model", "The F5-TTS model: F5TTS_v1_Base (the default) "
                    "or a fine-tuned voice, myspinbot/<name> (a profile with a fine-tuned voice sets it).")
VOICE_MODEL_NAME = re.compile(r"F5TTS_v1_Base|myspinbot/[A-Za-z0-9_-][A-Za-z0-9._-]{0,79}")

# A ready character profile (POST /myspinbot/profiles) in place of the portrait and the voice.
PROFILE = Param("profile", "string", None, None, "A ready character profile's id: its voice clip and transcript "
                "replace voice_sample + voice_transcript, and its reference photo the portrait (scene: its LoRA and "
                "trigger word drive text-to-image).")


# Parameters of the pipelines that upscale and store their video.
UPSCALE = Param("upscale", "boolean", None, None, "Upscale the video with the upscale model.", default=True)
UPSCALE_FACTOR = Param("upscale_factor", "number", "Upscale", "output_scale",
                       "Size of the upscaled video relative to the animated one (the x4 model's output is resized to it); 0 = the model's own scale.",
                       default=2.0, minimum=0, maximum=8)
FACE_RESTORE = Param("face_restore", "boolean", None, None, "Restore the face with the face restoration model while "
                     "upscaling (GFPGAN v1.4; needs upscale=true).", default=False)
FACE_RESTORE_STRENGTH = Param("face_restore_strength", "number", "Upscale", "face_restore_strength",
                              "Blend of the restored face over the upscaled face (1 = restored only, 0 = off).",
                              default=1.0, minimum=0, maximum=1)
STORAGE = Param("storage", "boolean", None, None, "Upload the video to S3-compatible storage.", default=True)
BUCKET = Param("bucket", "string", "Store", "bucket", "Bucket for storage=true (empty: MYSPINBOT_S3_BUCKET).")


def seed(node: str, description: str) -> Param:
    """The ``seed`` parameter (0..2³²-1, default 0), bound to ``node``'s ``seed`` input."""
    return Param("seed", "integer", node, "seed", description, default=0, minimum=0, maximum=SEED_MAX)


def store_stage(weight: float) -> Stage:
    """The service's own last stage (recording the outputs), ``weight`` of the job's run time."""
    return Stage("store", (), "storing the outputs", weight=weight)


# --- checks (raise ApiError 422) -------------------------------------------------------------

def has_text(values: Values, name: str) -> bool:
    """Whether ``values[name]`` holds more than whitespace."""
    return bool(str(values.get(name, "")).strip())


def require_portrait(values: Values) -> None:
    """Raises ``missing_portrait`` when no portrait was given."""
    if "portrait" not in values:
        raise ApiError(422, "missing_portrait", "a portrait image is required (file field 'portrait')", {"field": "portrait"})


def require_voice_sample(values: Values, instead: str) -> None:
    """Raises ``missing_voice_sample`` naming the first of ``voice_sample`` / ``voice_transcript``
    left empty; ``instead`` ends the message with what the client may give instead."""
    for field_name in ("voice_sample", "voice_transcript"):
        if not has_text(values, field_name):
            raise ApiError(422, "missing_voice_sample",
                           f"voice cloning needs a 'voice_sample' recording and its 'voice_transcript' ({instead})",
                           {"field": field_name})


def check_voice_model(values: Values) -> None:
    """Raises ``invalid_parameter`` unless ``voice_model`` (when given) names the base model or a
    fine-tuned voice ``myspinbot/<name>``."""
    model = values.get("voice_model")
    if model is not None and not VOICE_MODEL_NAME.fullmatch(str(model)):
        raise ApiError(422, "invalid_parameter", "'voice_model' must be F5TTS_v1_Base or myspinbot/<name> "
                       "(letters, digits, '.', '-', '_')", {"field": "voice_model"})


# --- rewiring ----------------------------------------------------------------------------------

def bind_script_writer(prompt: dict[str, Any], values: Values) -> None:
    """Seed the script writer; with a finished ``script`` it runs in ``verbatim`` mode on that text."""
    writer = node_inputs(prompt, "Script writer")
    writer["seed"] = values.get("seed", 0)
    if "script" in values:
        writer["mode"] = "verbatim"
        writer["prompt"] = values["script"]


# --- profiles ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class ProfileInputs:
    """What a ready profile gives a job: paths relative to ComfyUI's input folder, the LoRA as
    core's LoraLoader lists it; None for a part the profile lacks."""

    id: str
    voice_sample: str | None
    voice_transcript: str | None
    reference_photo: str | None
    lora: str | None
    trigger_word: str | None
    voice_model: str | None = None
    """The profile's fine-tuned F5-TTS voice (``myspinbot/<name>``), None for zero-shot cloning."""


_PROFILE_PARTS = {"voice": ("voice_sample", "voice_transcript"), "portrait": ("portrait",),
                  "lora": ("lora", "trigger_word")}


def apply_profile(pipeline: Pipeline, raw: dict[str, Any], profile: ProfileInputs) -> dict[str, Any]:
    """``raw`` with the profile's parts filled in for what ``pipeline.profile_uses`` names.

    A part the profile lacks (no voice clip) is left to the client. A fine-tuned voice goes to a
    pipeline's ``voice_model`` (unless the client set one). Raises ``ApiError`` 422
    ``conflicting_inputs`` when the client also gave a field the profile fills."""
    values = dict(raw)
    given = {"voice_sample": profile.voice_sample, "voice_transcript": profile.voice_transcript,
             "portrait": profile.reference_photo, "lora": profile.lora, "trigger_word": profile.trigger_word}
    for part in pipeline.profile_uses:
        fields = _PROFILE_PARTS[part]
        if any(given[name] is None for name in fields):
            continue
        for name in fields:
            if name in raw:
                raise ApiError(422, "conflicting_inputs", f"'{name}' given with a 'profile', which provides it",
                               {"field": name})
            values[name] = given[name]
    if "voice" in pipeline.profile_uses and profile.voice_model and pipeline.param("voice_model") is not None \
            and "voice_model" not in raw:  # a client's own choice of model wins
        values["voice_model"] = profile.voice_model
    return values


def prefix_text(prompt: dict[str, Any], title: str, input_name: str, words: str) -> None:
    """Put ``words`` and a comma before the text input ``input_name`` of the node titled ``title``
    (a literal or a link: core's StringConcatenate joins them in the workflow)."""
    target = prompt[node_by_title(prompt, title)]["inputs"]
    node_id = str(max((int(k) for k in prompt if k.isdigit()), default=0) + 1)
    prompt[node_id] = {"class_type": "StringConcatenate",
                       "inputs": {"string_a": words, "string_b": target[input_name], "delimiter": ", "},
                       "_meta": {"title": f"{title} trigger word"}}
    target[input_name] = [node_id, 0]


def bind_video_output(prompt: dict[str, Any], values: Values, source: str) -> None:
    """Feed the ``video`` output from the node titled ``source``, or from "Upscale" when
    ``upscale`` is on (the default). With ``storage`` on, the storage node ("Store") takes
    SaveVideo's place and title: it writes the output file itself and uploads exactly those
    bytes; otherwise it is dropped."""
    video = link(prompt, "Upscale") if values.get("upscale", True) else link(prompt, source)
    save = node_by_title(prompt, "Save video")
    prompt[save]["inputs"]["video"] = video
    store = node_by_title(prompt, "Store")
    if values.get("storage", True):
        prompt[store]["inputs"]["video"] = video
        prompt[store]["inputs"]["filename_prefix"] = prompt[save]["inputs"]["filename_prefix"]
        del prompt[save]
        prompt[store]["_meta"]["title"] = "Save video"
    else:
        del prompt[store]


def check_upscaled_speech_inputs(values: Values) -> bool:
    """Checks the upscaling talking-head pipelines share: face_restore only with upscale, and
    either a ``speech_recording`` or exactly one of ``prompt`` / ``script``. Returns whether the
    job speaks a script (so its voice inputs still need checking). Raises ``ApiError`` 422."""
    if values.get("face_restore", False) and not values.get("upscale", True):
        raise ApiError(422, "conflicting_inputs", "face_restore runs in the upscale step: it needs upscale=true",
                       {"fields": ["face_restore", "upscale"]})
    given = [n for n in ("prompt", "script") if has_text(values, n)]
    if "speech_recording" in values:
        if given:
            raise ApiError(422, "conflicting_inputs", "give a 'speech_recording' or a 'prompt'/'script', not both",
                           {"fields": ["speech_recording", *given]})
        return False
    if len(given) != 1:
        raise ApiError(422, "missing_script" if not given else "conflicting_inputs",
                       "give either a 'prompt' (the script writer drafts the narration), a finished 'script', "
                       "or a 'speech_recording'", {"fields": ["prompt", "script", "speech_recording"]})
    return True
