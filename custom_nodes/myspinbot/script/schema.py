"""The script a writer produces, as a pydantic model, and the JSON Schema sent to Ollama."""

from __future__ import annotations

import copy
import json
from functools import lru_cache
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

FIELDS = ("title", "narration", "stage_description", "mood")


class Script(BaseModel):
    """A short talking-head script: what is said, and how it looks and feels."""

    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True)

    title: str = Field(description="A short title for the video, at most about eight words.")
    narration: str = Field(
        description="Only the words the speaker says aloud: no stage directions, no brackets, "
        "no speaker labels, no markdown, no emoji."
    )
    stage_description: str = Field(
        description="One or two sentences describing the speaker, their look, setting, framing and gestures."
    )
    mood: str = Field(description="The tone of the delivery in one to three words, e.g. 'calm', 'excited'.")

    def to_json(self) -> str:
        """The script as pretty-printed JSON (UTF-8 text kept as is), keys in schema order."""
        return json.dumps(self.model_dump(), ensure_ascii=False, indent=2)


@lru_cache(maxsize=1)
def _schema() -> dict[str, Any]:
    schema = Script.model_json_schema()
    schema["additionalProperties"] = False
    schema["required"] = list(FIELDS)
    return schema


def json_schema() -> dict[str, Any]:
    """The JSON Schema of :class:`Script` for Ollama's ``format`` (a fresh copy each call):
    an object with the four string fields, all required, no others."""
    return copy.deepcopy(_schema())
