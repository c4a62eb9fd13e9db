"""A profile's voice clips for fine-tuning F5-TTS: their transcripts checked, the clips stored
with a ``metadata.csv`` (``files.store_clips``) and their total length checked against what
``fine_tune_voice`` needs (``train_profile.MIN_CLIP_SECONDS``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ...errors import InvalidInputError
from ..api_errors import ApiError
from ..jobs.assets import off_loop
from ..pipelines.train_profile import MIN_CLIP_SECONDS
from . import files

MAX_VOICE_CLIPS = 200
"""The most voice clips one profile may have."""


def clip_transcripts_for(clips: list, transcripts: Any) -> list[str]:
    """The clips' transcripts (a list of strings, or its JSON text from a form), one per clip,
    whitespace collapsed. Raises ``ApiError`` 422 ``too_many_voice_clips`` or
    ``invalid_parameter`` (not a list of one-line non-empty strings, or not one per clip)."""
    if len(clips) > MAX_VOICE_CLIPS:
        raise ApiError(422, "too_many_voice_clips", f"at most {MAX_VOICE_CLIPS} voice clips", {"field": "voice_clips"})
    if transcripts is None and not clips:
        return []
    if isinstance(transcripts, str):
        try:
            transcripts = json.loads(transcripts)
        except ValueError:
            transcripts = None
    field = {"field": "voice_clip_transcripts"}
    if not isinstance(transcripts, list) or not all(isinstance(t, str) and t.strip() and "\n" not in t.strip()
                                                    for t in transcripts):
        raise ApiError(422, "invalid_parameter", "'voice_clip_transcripts' must be a JSON list of one-line, non-empty "
                       "strings (what each voice clip says, in order)", field)
    if len(transcripts) != len(clips):
        raise ApiError(422, "invalid_parameter", f"{len(clips)} voice clip(s) but {len(transcripts)} transcript(s)",
                       field)
    return [" ".join(t.split()) for t in transcripts]


async def store_voice_clips(input_dir: Path, profile_id: str, clips: list[tuple[Path, str]], copy: bool,
                            fine_tune: bool) -> float:
    """Store ``(file, transcript)`` clips off the event loop; returns their total length, s.
    Raises ``ApiError`` 422 ``invalid_voice_clip`` (not audio, over 30 s), or
    ``voice_clips_too_short`` when ``fine_tune`` and they hold under ``MIN_CLIP_SECONDS``."""
    try:
        seconds = await off_loop(files.store_clips, input_dir, profile_id, clips, copy)
    except InvalidInputError as err:
        raise ApiError(422, "invalid_voice_clip", f"a voice clip cannot be used: {err.message}",
                       {"field": "voice_clips", "reason": err.code, **(err.details or {})}) from None
    if fine_tune and seconds < MIN_CLIP_SECONDS:
        raise ApiError(422, "voice_clips_too_short", f"the voice clips hold {seconds:.1f} s; fine-tuning the voice "
                       f"needs at least {MIN_CLIP_SECONDS:.0f} s (a few minutes is better)",
                       {"field": "voice_clips", "seconds": round(seconds, 2), "minimum_s": MIN_CLIP_SECONDS})
    return seconds
