"""The ``lite`` pipeline: portrait + speech recording (or a script spoken by espeak-ng) → the
classical portrait animator → MP4. No model weights; runs on a bare CPU."""

from __future__ import annotations

from typing import Any

from ...paths import API_WORKFLOWS_DIR
from ..api_errors import ApiError
from .base import OutputSpec, Param, Pipeline, Stage, Values
from .common import FPS, PORTRAIT, has_text, require_portrait, seed, store_stage
from .workflow import link, node_inputs


def check(values: Values) -> None:
    """A portrait and exactly one of ``audio`` / ``script`` (``missing_speech``, ``conflicting_inputs``)."""
    require_portrait(values)
    has_audio = "audio" in values
    has_script = has_text(values, "script")
    if not has_audio and not has_script:
        raise ApiError(422, "missing_speech", "give either a speech recording (file field 'audio') or a 'script' to speak",
                       {"fields": ["audio", "script"]})
    if has_audio and has_script:
        raise ApiError(422, "conflicting_inputs", "give either 'audio' or 'script', not both", {"fields": ["audio", "script"]})


def rewire(prompt: dict[str, Any], values: Values, pipeline: Pipeline) -> None:
    """With a script, the animator takes its speech from espeak-ng instead of the recording."""
    if "script" in values:
        node_inputs(prompt, "Animate portrait")["audio"] = link(prompt, "Script speech")


def pipeline() -> Pipeline:
    return Pipeline(
        name="lite",
        description="Weightless talking head: portrait + speech recording (or a script spoken by espeak-ng) "
        "→ classical portrait animation → MP4. Runs on a bare CPU with no model weights.",
        workflow_file=API_WORKFLOWS_DIR / "lite.json",
        params=(
            PORTRAIT,
            Param("audio", "audio", "Speech recording", "audio", "Speech recording (wav, mp3, flac, m4a)."),
            Param("script", "text", "Script speech", "text", "Text to speak with espeak-ng instead of a recording."),
            Param("voice", "string", "Script speech", "voice", "espeak-ng voice for the script.", default="en"),
            FPS,
            seed("Animate portrait", "Seed for blinks and head motion."),
        ),
        outputs=(OutputSpec("video", "video", "Save video"),),
        save_prefix_node="Save video",
        check=check,
        rewire=rewire,
        stages=(
            Stage("speech", ("Speech recording", "Script speech"), "preparing the speech", weight=0.1),
            Stage("animate", ("Animate portrait",), "animating the portrait", weight=0.75),
            Stage("encode", ("Save video",), "encoding the video", weight=0.1),
            store_stage(0.05),
        ),
    )
