"""The ``f5`` pipeline: a prompt (drafted into a narration by a local LLM via Ollama) or a
finished script, spoken in a voice cloned by F5-TTS (or by espeak-ng), animated by the
classical portrait animator → MP4."""

from __future__ import annotations

from typing import Any

from ...paths import API_WORKFLOWS_DIR
from ..api_errors import ApiError
from .base import OutputSpec, Param, Pipeline, Stage, Values
from .common import (F5_MODELS, FPS, PORTRAIT, PROFILE, PROMPT, SCRIPT, SCRIPT_WRITER, VOICE_MODEL, VOICE_SAMPLE,
                     VOICE_TRANSCRIPT, bind_script_writer, check_voice_model, has_text, require_portrait,
                     require_voice_sample, seed, store_stage)
from .workflow import link, node_inputs


def check(values: Values) -> None:
    """A portrait; exactly one of ``prompt`` / ``script``; with speech=f5 a voice sample and its transcript."""
    require_portrait(values)
    has_prompt, has_script = has_text(values, "prompt"), has_text(values, "script")
    if has_prompt == has_script:
        raise ApiError(422, "missing_script" if not has_prompt else "conflicting_inputs",
                       "give either a 'prompt' (the script writer drafts the narration) or a finished 'script'",
                       {"fields": ["prompt", "script"]})
    if values.get("speech") == "f5":
        require_voice_sample(values, "or choose speech=espeak, which needs neither")
    check_voice_model(values)


def rewire(prompt: dict[str, Any], values: Values, pipeline: Pipeline) -> None:
    """One seed for writer, voice and animator; speech=espeak feeds the animator espeak-ng's speech."""
    bind_script_writer(prompt, values)
    animate = node_inputs(prompt, "Animate portrait")
    animate["seed"] = values.get("seed", 0)
    if values.get("speech") == "espeak":
        animate["audio"] = link(prompt, "Fallback speech")


def models(values: Values) -> list[str]:
    """F5-TTS's weights, unless speech=espeak."""
    return list(F5_MODELS) if values.get("speech", "f5") == "f5" else []


def pipeline() -> Pipeline:
    return Pipeline(
        name="f5",
        description="A prompt (drafted into a narration by a local LLM via Ollama) or a finished script, "
        "spoken in the voice of a short sample with F5-TTS (weights CC-BY-NC-4.0: non-commercial), "
        "animated with the classical portrait animator. speech=espeak swaps F5-TTS for the weightless voice.",
        workflow_file=API_WORKFLOWS_DIR / "f5.json",
        params=(
            PORTRAIT, PROMPT, SCRIPT, VOICE_SAMPLE, VOICE_TRANSCRIPT, PROFILE,
            Param("speech", "string", None, None, "Speech engine: f5 (cloned voice) or espeak (no weights).",
                  default="f5", choices=("f5", "espeak")),
            *SCRIPT_WRITER,
            Param("voice", "string", "Fallback speech", "voice", "espeak-ng voice when speech=espeak.", default="en"),
            VOICE_MODEL,
            FPS,
            seed("Voice clone", "Seed for the script, the voice and the animation."),
        ),
        outputs=(OutputSpec("video", "video", "Save video"),),
        save_prefix_node="Save video",
        check=check,
        rewire=rewire,
        stages=(
            Stage("script", ("Script writer",), "writing the script", weight=0.1),
            Stage("speech", ("Voice sample", "Voice clone", "Fallback speech"), "speaking the script", weight=0.35),
            Stage("animate", ("Animate portrait",), "animating the portrait", weight=0.45),
            Stage("encode", ("Save video",), "encoding the video", weight=0.05),
            store_stage(0.05),
        ),
        models=models,
        profile_uses=("voice", "portrait"),
    )
