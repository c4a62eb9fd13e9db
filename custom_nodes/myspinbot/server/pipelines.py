"""Pipelines the job API runs: named parameters bound into API-format workflows.

Each pipeline is an API-format workflow in ``workflows/api/<name>.json`` plus the list of
its parameters. A parameter names the node it feeds by the node's title (``_meta.title``),
never by node id, so the workflow can be re-exported from ComfyUI without touching code.
"""

from __future__ import annotations

import copy
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from ..paths import API_WORKFLOWS_DIR
from .api_errors import ApiError

FILE_KINDS = frozenset({"image", "audio"})


@dataclass(frozen=True)
class Param:
    """One named pipeline parameter.

    ``kind``: ``image`` / ``audio`` (an uploaded file, bound as its path relative to ComfyUI's
    input folder), ``text``, ``string``, ``number``, ``integer`` or ``boolean``. ``node`` is the title of the
    node it feeds and ``input`` that node's input name; both are None for a parameter that only
    steers the pipeline's ``rewire`` (e.g. which speech engine). ``choices`` limits a string."""

    name: str
    kind: str
    node: str | None
    input: str | None
    description: str = ""
    default: Any = None
    minimum: float | None = None
    maximum: float | None = None
    choices: tuple[str, ...] | None = None


@dataclass(frozen=True)
class OutputSpec:
    """A file the pipeline yields: ``node`` is the title of the saving node."""

    name: str
    type: str
    node: str


@dataclass(frozen=True)
class Stage:
    """A named phase of a pipeline, reported as ``progress.stage``: it begins when ComfyUI starts
    executing any node whose title is in ``nodes``. ``message`` is the human-readable line shown with it.
    ``weight`` is its usual share of the job's run time, for the weighted ``progress.value``
    (``progress.py``; stages without one share what the others leave). The ``store`` stage has
    no nodes: the service completes it when it records a successful job's outputs."""

    name: str
    nodes: tuple[str, ...]
    message: str
    weight: float | None = None


@dataclass(frozen=True)
class BuiltPrompt:
    prompt: dict[str, Any]
    output_nodes: dict[str, str]  # output name -> node id


@dataclass(frozen=True)
class Pipeline:
    name: str
    description: str
    workflow_file: Path
    params: tuple[Param, ...]
    outputs: tuple[OutputSpec, ...]
    save_prefix_node: str
    check: Callable[[dict[str, Any]], None] = field(default=lambda values: None)
    rewire: Callable[[dict[str, Any], dict[str, Any], "Pipeline"], None] = field(default=lambda prompt, values, p: None)
    stages: tuple[Stage, ...] = ()
    models: Callable[[dict[str, Any]], list[str]] = field(default=lambda values: [])
    """Names (from the model manifest) of the weights a job with these values needs."""
    gpu: bool = False
    """Whether the pipeline runs its models on a GPU (then it accepts longer speech: ``max_audio_s_gpu``)."""

    def param(self, name: str) -> Param | None:
        return next((p for p in self.params if p.name == name), None)

    def node_stages(self, prompt: dict[str, Any]) -> dict[str, Stage]:
        """Node id → the stage it belongs to, for the nodes of a built prompt that have one
        (nodes without a stage leave the job's stage as it was)."""
        by_title = {title: stage for stage in self.stages for title in stage.nodes}
        result = {}
        for node_id, node in prompt.items():
            stage = by_title.get(node.get("_meta", {}).get("title"))
            if stage is not None:
                result[node_id] = stage
        return result

    def file_params(self) -> list[Param]:
        return [p for p in self.params if p.kind in FILE_KINDS]

    def coerce(self, raw: dict[str, Any]) -> dict[str, Any]:
        """Validate raw values (strings from a form, or JSON values) against the parameters.

        Returns typed values with defaults filled in. Raises ``ApiError`` 422
        ``unknown_parameter`` / ``invalid_parameter`` naming the field, or whatever the
        pipeline's own ``check`` raises (missing inputs, conflicts)."""
        values: dict[str, Any] = {}
        for name, value in raw.items():
            param = self.param(name)
            if param is None:
                raise ApiError(422, "unknown_parameter", f"pipeline '{self.name}' has no parameter '{name}'",
                               {"field": name, "parameters": [p.name for p in self.params]})
            values[name] = _coerce_value(param, value)
        for param in self.params:
            if param.name not in values and param.default is not None:
                values[param.name] = param.default
        self.check(values)
        return values

    def build(self, values: dict[str, Any], save_prefix: str) -> BuiltPrompt:
        """Bind typed values into a copy of the API workflow; returns the prompt and the ids of its output nodes."""
        prompt = copy.deepcopy(load_workflow(self.workflow_file))
        for param in self.params:
            if param.name in values and param.node is not None:
                node_id = node_by_title(prompt, param.node)
                prompt[node_id]["inputs"][param.input] = values[param.name]
        prompt[node_by_title(prompt, self.save_prefix_node)]["inputs"]["filename_prefix"] = save_prefix
        self.rewire(prompt, values, self)
        output_nodes = {o.name: node_by_title(prompt, o.node) for o in self.outputs}
        return BuiltPrompt(prune(prompt, set(output_nodes.values())), output_nodes)


def _coerce_value(param: Param, value: Any) -> Any:
    def bad(why: str) -> ApiError:
        return ApiError(422, "invalid_parameter", f"parameter '{param.name}' {why}", {"field": param.name})

    if param.kind == "boolean":
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in _BOOL_TEXT:
            return _BOOL_TEXT[value.strip().lower()]
        raise bad("must be true or false")
    if param.kind in FILE_KINDS or param.kind in ("text", "string"):
        if not isinstance(value, str):
            raise bad("must be a string")
        if param.choices is not None and value not in param.choices:
            raise bad(f"must be one of {', '.join(param.choices)}")
        return value
    try:
        number = int(value) if param.kind == "integer" else float(value)
    except (TypeError, ValueError, OverflowError):  # OverflowError: int(inf)
        raise bad(f"must be {'an integer' if param.kind == 'integer' else 'a number'}") from None
    if isinstance(value, bool):
        raise bad("must be a number")
    if isinstance(number, float) and not math.isfinite(number):  # "NaN", "inf", "1e309"
        raise bad("must be a finite number")
    if param.minimum is not None and number < param.minimum or param.maximum is not None and number > param.maximum:
        raise bad(f"must be between {param.minimum} and {param.maximum}")
    return number


_BOOL_TEXT = {"true": True, "1": True, "on": True, "yes": True, "false": False, "0": False, "off": False, "no": False}


def load_workflow(path: Path) -> dict[str, Any]:
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def node_by_title(prompt: dict[str, Any], title: str) -> str:
    """The id of the one node whose ``_meta.title`` is ``title``; a workflow without it is a packaging bug."""
    ids = [nid for nid, node in prompt.items() if node.get("_meta", {}).get("title") == title]
    if len(ids) != 1:
        raise RuntimeError(f"workflow must have exactly one node titled '{title}', found {len(ids)}")
    return ids[0]


def prune(prompt: dict[str, Any], keep_outputs: set[str]) -> dict[str, Any]:
    """Drop every node the output nodes do not depend on."""
    needed: set[str] = set()
    stack = list(keep_outputs)
    while stack:
        nid = stack.pop()
        if nid in needed:
            continue
        needed.add(nid)
        for value in prompt[nid]["inputs"].values():
            if isinstance(value, list) and len(value) == 2 and isinstance(value[0], str):
                stack.append(value[0])
    return {nid: node for nid, node in prompt.items() if nid in needed}


# --- the lite pipeline -------------------------------------------------------------------

def _lite_check(values: dict[str, Any]) -> None:
    if "portrait" not in values:
        raise ApiError(422, "missing_portrait", "a portrait image is required (file field 'portrait')", {"field": "portrait"})
    has_audio = "audio" in values
    has_script = bool(str(values.get("script", "")).strip())
    if not has_audio and not has_script:
        raise ApiError(422, "missing_speech", "give either a speech recording (file field 'audio') or a 'script' to speak",
                       {"fields": ["audio", "script"]})
    if has_audio and has_script:
        raise ApiError(422, "conflicting_inputs", "give either 'audio' or 'script', not both", {"fields": ["audio", "script"]})


def _lite_rewire(prompt: dict[str, Any], values: dict[str, Any], pipeline: Pipeline) -> None:
    """With a script, the animator takes its speech from espeak-ng instead of the recording."""
    if "script" in values:
        animate = node_by_title(prompt, "Animate portrait")
        prompt[animate]["inputs"]["audio"] = [node_by_title(prompt, "Script speech"), 0]


def builtin_pipelines() -> dict[str, Pipeline]:
    lite = Pipeline(
        name="lite",
        description="Weightless talking head: portrait + speech recording (or a script spoken by espeak-ng) "
        "→ classical portrait animation → MP4. Runs on a bare CPU with no model weights.",
        workflow_file=API_WORKFLOWS_DIR / "lite.json",
        params=(
            Param("portrait", "image", "Portrait", "image", "Portrait photo (PNG, JPEG, WebP)."),
            Param("audio", "audio", "Speech recording", "audio", "Speech recording (wav, mp3, flac, m4a)."),
            Param("script", "text", "Script speech", "text", "Text to speak with espeak-ng instead of a recording."),
            Param("voice", "string", "Script speech", "voice", "espeak-ng voice for the script.", default="en"),
            Param("fps", "number", "Animate portrait", "fps", "Frame rate.", default=25.0, minimum=1, maximum=60),
            Param("seed", "integer", "Animate portrait", "seed", "Seed for blinks and head motion.", default=0,
                  minimum=0, maximum=0xFFFFFFFF),
        ),
        outputs=(OutputSpec("video", "video", "Save video"),),
        save_prefix_node="Save video",
        check=_lite_check,
        rewire=_lite_rewire,
        stages=(
            Stage("speech", ("Speech recording", "Script speech"), "preparing the speech", weight=0.1),
            Stage("animate", ("Animate portrait",), "animating the portrait", weight=0.75),
            Stage("encode", ("Save video",), "encoding the video", weight=0.1),
            Stage("store", (), "storing the outputs", weight=0.05),
        ),
    )
    return {lite.name: lite, "f5": _f5_pipeline(), "infinitetalk": _infinitetalk_pipeline()}


# --- the f5 pipeline: a script (Ollama or verbatim) spoken in a cloned voice ---------------

F5_MODELS = ["F5TTS_v1_Base", "vocos_mel_24khz"]


def _f5_check(values: dict[str, Any]) -> None:
    if "portrait" not in values:
        raise ApiError(422, "missing_portrait", "a portrait image is required (file field 'portrait')", {"field": "portrait"})
    has_prompt = bool(str(values.get("prompt", "")).strip())
    has_script = bool(str(values.get("script", "")).strip())
    if has_prompt == has_script:
        raise ApiError(422, "missing_script" if not has_prompt else "conflicting_inputs",
                       "give either a 'prompt' (the script writer drafts the narration) or a finished 'script'",
                       {"fields": ["prompt", "script"]})
    if values.get("speech") == "f5":
        for field_name in ("voice_sample", "voice_transcript"):
            if not str(values.get(field_name, "")).strip():
                raise ApiError(422, "missing_voice_sample",
                               "voice cloning needs a 'voice_sample' recording and its 'voice_transcript' "
                               "(or choose speech=espeak, which needs neither)", {"field": field_name})


def _f5_rewire(prompt: dict[str, Any], values: dict[str, Any], pipeline: Pipeline) -> None:
    writer = node_by_title(prompt, "Script writer")
    if "script" in values:
        prompt[writer]["inputs"]["mode"] = "verbatim"
        prompt[writer]["inputs"]["prompt"] = values["script"]
    seed = values.get("seed", 0)
    prompt[writer]["inputs"]["seed"] = seed
    prompt[node_by_title(prompt, "Animate portrait")]["inputs"]["seed"] = seed
    if values.get("speech") == "espeak":
        prompt[node_by_title(prompt, "Animate portrait")]["inputs"]["audio"] = [node_by_title(prompt, "Fallback speech"), 0]


def _f5_pipeline() -> Pipeline:
    return Pipeline(
        name="f5",
        description="A prompt (drafted into a narration by a local LLM via Ollama) or a finished script, "
        "spoken in the voice of a short sample with F5-TTS (weights CC-BY-NC-4.0: non-commercial), "
        "animated with the classical portrait animator. speech=espeak swaps F5-TTS for the weightless voice.",
        workflow_file=API_WORKFLOWS_DIR / "f5.json",
        params=(
            Param("portrait", "image", "Portrait", "image", "Portrait photo (PNG, JPEG, WebP)."),
            Param("prompt", "text", "Script writer", "prompt", "What the narration should be about (Ollama writes it)."),
            Param("script", "text", None, None, "A finished script, spoken as written (no LLM)."),
            Param("voice_sample", "audio", "Voice sample", "audio", "3-12 s recording of the voice to clone."),
            Param("voice_transcript", "text", "Voice clone", "ref_text", "Exactly what is said in the voice sample."),
            Param("speech", "string", None, None, "Speech engine: f5 (cloned voice) or espeak (no weights).",
                  default="f5", choices=("f5", "espeak")),
            Param("length", "number", "Script writer", "target_seconds", "Target length of the narration, seconds.",
                  default=30.0, minimum=3, maximum=600),
            Param("language", "string", "Script writer", "language", "Language of the narration.", default="English"),
            Param("llm_model", "string", "Script writer", "model", "Ollama model that writes the script.", default="llama3.2"),
            Param("voice", "string", "Fallback speech", "voice", "espeak-ng voice when speech=espeak.", default="en"),
            Param("fps", "number", "Animate portrait", "fps", "Frame rate.", default=25.0, minimum=1, maximum=60),
            Param("seed", "integer", "Voice clone", "seed", "Seed for the script, the voice and the animation.",
                  default=0, minimum=0, maximum=0xFFFFFFFF),
        ),
        outputs=(OutputSpec("video", "video", "Save video"),),
        save_prefix_node="Save video",
        check=_f5_check,
        rewire=_f5_rewire,
        stages=(
            Stage("script", ("Script writer",), "writing the script", weight=0.1),
            Stage("speech", ("Voice sample", "Voice clone", "Fallback speech"), "speaking the script", weight=0.35),
            Stage("animate", ("Animate portrait",), "animating the portrait", weight=0.45),
            Stage("encode", ("Save video",), "encoding the video", weight=0.05),
            Stage("store", (), "storing the outputs", weight=0.05),
        ),
        models=lambda values: list(F5_MODELS) if values.get("speech", "f5") == "f5" else [],
    )


# --- the infinitetalk pipeline: Wan2.1 I2V + InfiniteTalk, upscaled, stored -----------------

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


def _infinitetalk_check(values: dict[str, Any]) -> None:
    if "portrait" not in values:
        raise ApiError(422, "missing_portrait", "a portrait image is required (file field 'portrait')", {"field": "portrait"})
    if values.get("face_restore", False) and not values.get("upscale", True):
        raise ApiError(422, "conflicting_inputs", "face_restore runs in the upscale step: it needs upscale=true",
                       {"fields": ["face_restore", "upscale"]})
    given = [n for n in ("prompt", "script") if str(values.get(n, "")).strip()]
    if "speech_recording" in values:
        if given:
            raise ApiError(422, "conflicting_inputs", "give a 'speech_recording' or a 'prompt'/'script', not both",
                           {"fields": ["speech_recording", *given]})
        return
    if len(given) != 1:
        raise ApiError(422, "missing_script" if not given else "conflicting_inputs",
                       "give either a 'prompt' (the script writer drafts the narration), a finished 'script', "
                       "or a 'speech_recording'", {"fields": ["prompt", "script", "speech_recording"]})
    for field_name in ("voice_sample", "voice_transcript"):
        if not str(values.get(field_name, "")).strip():
            raise ApiError(422, "missing_voice_sample", "voice cloning needs a 'voice_sample' recording and its "
                           "'voice_transcript' (or give a 'speech_recording')", {"field": field_name})


def _infinitetalk_rewire(prompt: dict[str, Any], values: dict[str, Any], pipeline: Pipeline) -> None:
    talk = node_by_title(prompt, "InfiniteTalk")
    seed = values.get("seed", 0)
    writer = node_by_title(prompt, "Script writer")
    prompt[writer]["inputs"]["seed"] = seed
    prompt[node_by_title(prompt, "Voice clone")]["inputs"]["seed"] = seed
    if "script" in values:
        prompt[writer]["inputs"]["mode"] = "verbatim"
        prompt[writer]["inputs"]["prompt"] = values["script"]
    if "speech_recording" in values:
        prompt[talk]["inputs"]["audio"] = [node_by_title(prompt, "Speech recording"), 0]
    if not values.get("clip_vision_enabled", True):
        prompt[talk]["inputs"].pop("clip_vision_output", None)
    if values.get("text_conditioning", "encoder") == "none":
        # No text encoder: the node makes zero conditioning itself (pruning drops the encoder nodes).
        prompt[talk]["inputs"].pop("positive", None)
        prompt[talk]["inputs"].pop("negative", None)
    if not values.get("face_restore", False):
        prompt[node_by_title(prompt, "Upscale")]["inputs"].pop("face_restore_model", None)  # pruning drops the loader
    save = node_by_title(prompt, "Save video")
    video = [node_by_title(prompt, "Upscale"), 0] if values.get("upscale", True) else [talk, 0]
    prompt[save]["inputs"]["video"] = video
    store = node_by_title(prompt, "Store")
    if values.get("storage", True):
        # The storage node writes the output file itself (into the job's output folder) and uploads
        # exactly those bytes: it takes SaveVideo's place (and title) as the 'video' output.
        prompt[store]["inputs"]["video"] = video
        prompt[store]["inputs"]["filename_prefix"] = prompt[save]["inputs"]["filename_prefix"]
        del prompt[save]
        prompt[store]["_meta"]["title"] = "Save video"
    else:
        del prompt[store]


def _infinitetalk_models(values: dict[str, Any]) -> list[str]:
    """The manifest models a job needs: those whose file parameter still names the default file."""
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


def _infinitetalk_pipeline() -> Pipeline:
    files = {param: default for param, default in (*INFINITETALK_MODELS.values(), *INFINITETALK_UPSCALE_MODELS.values())}
    return Pipeline(
        name="infinitetalk",
        description="Lip-synced talking head with InfiniteTalk on Wan2.1 I2V (Apache-2.0 weights): a prompt "
        "(drafted by a local LLM via Ollama) or a finished script spoken in a cloned voice (F5-TTS, "
        "CC-BY-NC-4.0 weights), or a speech recording as is; upscaled with RealESRGAN (faces optionally "
        "restored with GFPGAN) and stored in "
        "S3-compatible storage (MYSPINBOT_S3_*). Needs a GPU for real use.",
        workflow_file=API_WORKFLOWS_DIR / "infinitetalk.json",
        params=(
            Param("portrait", "image", "Portrait", "image", "Portrait photo (PNG, JPEG, WebP)."),
            Param("prompt", "text", "Script writer", "prompt", "What the narration should be about (Ollama writes it)."),
            Param("script", "text", None, None, "A finished script, spoken as written (no LLM)."),
            Param("speech_recording", "audio", "Speech recording", "audio",
                  "A finished speech recording to animate as is (no script, no voice cloning)."),
            Param("voice_sample", "audio", "Voice sample", "audio", "3-12 s recording of the voice to clone."),
            Param("voice_transcript", "text", "Voice clone", "ref_text", "Exactly what is said in the voice sample."),
            Param("length", "number", "Script writer", "target_seconds", "Target length of the narration, seconds.",
                  default=30.0, minimum=3, maximum=600),
            Param("language", "string", "Script writer", "language", "Language of the narration.", default="English"),
            Param("llm_model", "string", "Script writer", "model", "Ollama model that writes the script.", default="llama3.2"),
            Param("seed", "integer", "InfiniteTalk", "seed", "Seed for the script, the voice and the video.",
                  default=0, minimum=0, maximum=0xFFFFFFFF),
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
            Param("upscale", "boolean", None, None, "Upscale the video with the upscale model.", default=True),
            Param("upscale_factor", "number", "Upscale", "output_scale", "Size of the upscaled video relative to the "
                  "animated one (the x4 model's output is resized to it); 0 = the model's own scale.",
                  default=2.0, minimum=0, maximum=8),
            Param("face_restore", "boolean", None, None, "Restore the face with the face restoration model while "
                  "upscaling (GFPGAN v1.4; needs upscale=true).", default=False),
            Param("face_restore_strength", "number", "Upscale", "face_restore_strength",
                  "Blend of the restored face over the upscaled face (1 = restored only, 0 = off).",
                  default=1.0, minimum=0, maximum=1),
            Param("storage", "boolean", None, None, "Upload the video to S3-compatible storage.", default=True),
            Param("text_conditioning", "string", None, None, "Text conditioning: encoder (umt5 via the text "
                  "encoder and the prompts) or none (zero conditioning, no text encoder needed).",
                  default="encoder", choices=("encoder", "none")),
            Param("bucket", "string", "Store", "bucket", "Bucket for storage=true (empty: MYSPINBOT_S3_BUCKET)."),
            Param("clip_vision_enabled", "boolean", None, None, "Condition on a CLIP vision encoding of the portrait.",
                  default=True),
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
        ),
        outputs=(OutputSpec("video", "video", "Save video"),),
        save_prefix_node="Save video",
        check=_infinitetalk_check,
        rewire=_infinitetalk_rewire,
        stages=(
            Stage("script", ("Script writer",), "writing the script", weight=0.02),
            Stage("speech", ("Voice sample", "Voice clone", "Speech recording"), "speaking the script", weight=0.08),
            Stage("load", ("Wan model", "InfiniteTalk patch", "Wan VAE", "Text encoder", "Positive", "Negative",
                           "Clip vision model", "Clip vision", "Audio encoder"), "loading the models", weight=0.05),
            Stage("animate", ("InfiniteTalk",), "animating the portrait", weight=0.65),
            Stage("upscale", ("Upscale model", "Face restore model", "Upscale"), "upscaling the video", weight=0.15),
            Stage("encode", ("Save video",), "saving and uploading the video", weight=0.03),
            Stage("store", (), "storing the outputs", weight=0.02),
        ),
        models=_infinitetalk_models,
        gpu=True,
    )
