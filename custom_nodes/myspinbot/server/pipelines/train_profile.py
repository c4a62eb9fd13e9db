"""The ``train_profile`` pipeline: a character profile's photos → a LoRA (node "MySpinBot Train
Character LoRA" on a checkpoint from core's ``CheckpointLoaderSimple``) and the dataset's face
crops, the largest first (saved: the profile's reference photo). With ``fine_tune_voice`` the
same job also fine-tunes F5-TTS on the profile's voice clips (node "MySpinBot Fine-tune F5-TTS
Voice") into ``models/f5_tts/myspinbot/<voice_name>/``.

``POST /myspinbot/profiles`` submits it with the profile's folder, trigger word and LoRA name
(``profiles/service.py``); its end makes the profile ``ready`` or ``failed``.
"""

from __future__ import annotations

from typing import Any

from ...paths import API_WORKFLOWS_DIR
from ..api_errors import ApiError
from .base import OutputSpec, Param, Pipeline, Stage, Values
from .common import F5_MODELS, SEED_MAX, has_text, store_stage
from .workflow import node_by_title, node_inputs

CHECKPOINT_MODELS = {"v1-5-pruned-emaonly-fp16.safetensors": "sd15_pruned_emaonly_fp16"}
"""Checkpoint file name → manifest name (preflight); any other file is the user's own."""
DEFAULT_CHECKPOINT = "v1-5-pruned-emaonly-fp16.safetensors"
MIN_CLIP_SECONDS = 30.0
"""The least speech (total length of the voice clips, s) a profile's voice is fine-tuned on."""

TRAINING_OPTIONS = (
    Param("steps", "integer", "Train LoRA", "steps", "Training steps.", default=500, minimum=1, maximum=100000),
    Param("rank", "integer", "Train LoRA", "rank", "LoRA rank.", default=16, minimum=1, maximum=128),
    Param("learning_rate", "number", "Train LoRA", "learning_rate", "AdamW learning rate.", default=0.0005,
          minimum=0.0000001, maximum=1.0),
    Param("resolution", "integer", "Train LoRA", "resolution", "Side of the square training crops, px (multiple "
          "of 8; SD1.5: 512, SDXL: 1024).", default=512, minimum=64, maximum=2048),
    Param("checkpoint", "string", "Checkpoint", "ckpt_name", "The SD1.5 or SDXL base checkpoint in "
          "models/checkpoints.", default=DEFAULT_CHECKPOINT),
    Param("training_dtype", "string", "Train LoRA", "training_dtype", "Compute dtype (fp32 on CPUs without "
          "fast bf16).", default="bf16", choices=("bf16", "fp32")),
    Param("flip", "boolean", "Train LoRA", "flip", "Add a mirrored copy of every photo.", default=True),
    Param("seed", "integer", "Train LoRA", "seed", "Training seed.", default=0, minimum=0, maximum=SEED_MAX),
    Param("fine_tune_voice", "boolean", None, None, "Also fine-tune F5-TTS on the profile's voice clips (at least "
          f"{MIN_CLIP_SECONDS:.0f} s of clips with transcripts; a GPU); f5 jobs with the profile then use it.",
          default=False),
    Param("voice_steps", "integer", "Fine-tune voice", "steps", "F5-TTS fine-tuning steps.", default=2000,
          minimum=1, maximum=1000000),
    Param("voice_learning_rate", "number", "Fine-tune voice", "learning_rate", "F5-TTS fine-tuning learning rate.",
          default=0.00001, minimum=0.0000001, maximum=0.01),
)
"""What ``POST /profiles`` accepts as training options (the names of its form fields)."""


def check(values: Values) -> None:
    """A photo folder, a trigger word and a LoRA name; the resolution a multiple of 8."""
    for name in ("folder", "trigger_word", "lora_name"):
        if not has_text(values, name):
            raise ApiError(422, f"missing_{name}", f"'{name}' is required (POST /profiles sets it)",
                           {"field": name})
    if values.get("fine_tune_voice") and not (has_text(values, "voice_folder") and has_text(values, "voice_name")):
        raise ApiError(422, "missing_voice_clips", "fine_tune_voice needs the profile's voice clips "
                       "(voice_clips with voice_clip_transcripts)", {"field": "voice_clips"})
    if int(values.get("resolution", 512)) % 8:
        raise ApiError(422, "invalid_parameter", "'resolution' must be a multiple of 8", {"field": "resolution"})


def rewire(prompt: dict[str, Any], values: Values, pipeline: Pipeline) -> None:
    """The LoRA is saved once, at the end (a retrained profile starts again from step 0); the voice
    fine-tune runs only with ``fine_tune_voice`` (and starts again from the base model)."""
    node_inputs(prompt, "Train LoRA")["save_every"] = 0
    if values.get("fine_tune_voice"):
        node_inputs(prompt, "Fine-tune voice")["resume"] = False
    else:
        del prompt[node_by_title(prompt, "Fine-tune voice")]


def models(values: Values) -> list[str]:
    """The default SD1.5 checkpoint's manifest entry when the job trains on it; F5-TTS's with ``fine_tune_voice``."""
    name = CHECKPOINT_MODELS.get(values.get("checkpoint", DEFAULT_CHECKPOINT))
    return ([name] if name else []) + (list(F5_MODELS) if values.get("fine_tune_voice") else [])


def pipeline() -> Pipeline:
    return Pipeline(
        name="train_profile",
        description="Trains a character profile's LoRA from its photos (faces found and cropped, photos without a "
        "face reported) on an SD1.5/SDXL checkpoint; saves the face crops, the largest first (the profile's "
        "reference photo); with fine_tune_voice also fine-tunes F5-TTS on its voice clips. Submitted by POST /profiles.",
        workflow_file=API_WORKFLOWS_DIR / "train_profile.json",
        params=(
            Param("folder", "string", "Train LoRA", "folder", "The photos' folder under ComfyUI's input folder."),
            Param("trigger_word", "string", "Train LoRA", "trigger_word", "The word that calls up the character."),
            Param("lora_name", "string", "Train LoRA", "lora_name", "File name under models/loras/myspinbot/."),
            Param("voice_folder", "string", "Fine-tune voice", "folder", "The voice clips' folder (with "
                  "metadata.csv) under ComfyUI's input folder."),
            Param("voice_name", "string", "Fine-tune voice", "output_name", "Folder name under "
                  "models/f5_tts/myspinbot/."),
            *TRAINING_OPTIONS,
        ),
        outputs=(OutputSpec("reference", "image", "Save reference"),),
        save_prefix_node="Save reference",
        check=check,
        rewire=rewire,
        stages=(
            Stage("load", ("Checkpoint",), "loading the base model", weight=0.05),
            Stage("train", ("Train LoRA",), "training the LoRA", weight=0.6),
            Stage("voice", ("Fine-tune voice",), "fine-tuning the voice", weight=0.3),
            Stage("reference", ("Save reference",), "saving the reference photo", weight=0.02),
            store_stage(0.03),
        ),
        models=models,
        side_nodes=("Fine-tune voice",),
    )
