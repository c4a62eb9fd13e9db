"""The chat messages sent to the LLM, and the length budget derived from seconds of speech."""

from __future__ import annotations

import math
from dataclasses import dataclass

WORDS_PER_SECOND = 2.5  # ordinary narration pace, about 150 words per minute
# Languages written without spaces between words: the budget is counted in characters.
CHARS_PER_SECOND = {"chinese": 4.0, "japanese": 6.0, "thai": 7.0}
DEFAULT_LANGUAGE = "English"
DEFAULT_STYLE = "Warm, clear and concise, like a friendly presenter talking straight to the camera."
KINDS = ("talking_head", "scene")
"""What the stage description is for: ``talking_head`` (the speaker, in words) or ``scene`` (a
text-to-image prompt for the whole first frame of the scene pipeline)."""

_STAGE = {
    "talking_head": '- "stage_description": one or two sentences in English describing the speaker, their look, '
                    "setting, framing and gestures;\n",
    "scene": '- "stage_description": a text-to-image prompt in English for the opening picture of the video, '
             "at most 60 words of comma-separated visual phrases: the setting, the speaker seen from the front "
             "and facing the camera with the whole face visible (head and shoulders, mouth closed), the light, "
             "the camera and the style; no speech, no names, no text in the picture;\n",
}

_LANGUAGE_NAMES = {
    "ar": "Arabic", "bn": "Bengali", "cs": "Czech", "da": "Danish", "de": "German", "el": "Greek",
    "en": "English", "es": "Spanish", "fa": "Persian", "fi": "Finnish", "fr": "French",
    "he": "Hebrew", "hi": "Hindi", "hu": "Hungarian", "id": "Indonesian", "it": "Italian",
    "ja": "Japanese", "ko": "Korean", "nl": "Dutch", "no": "Norwegian", "nb": "Norwegian",
    "pl": "Polish", "pt": "Portuguese", "ro": "Romanian", "ru": "Russian", "sk": "Slovak",
    "sv": "Swedish", "th": "Thai", "tr": "Turkish", "uk": "Ukrainian", "vi": "Vietnamese",
    "zh": "Chinese", "yue": "Cantonese",
}
_CHARS_LANGUAGES = {"cantonese": "chinese", "mandarin": "chinese"}


def language_name(language: str | None) -> str:
    """A language name for the prompt: ISO codes (``de``, ``pt-BR``, ``zh_CN``) become English
    names; anything else is used as written; empty means English."""
    text = (language or "").strip()
    if not text:
        return DEFAULT_LANGUAGE
    code = text.replace("_", "-").split("-")[0].lower()
    return _LANGUAGE_NAMES.get(code, text)


@dataclass(frozen=True)
class LengthBudget:
    """How long the narration should be: ``count`` ``unit`` (``words`` or ``characters``)."""

    count: int
    unit: str
    seconds: float

    def describe(self) -> str:
        return f"about {self.count} {self.unit} (roughly {self.seconds:g} seconds when spoken)"


def length_budget(target_seconds: float, language: str | None = None) -> LengthBudget:
    """The narration length for ``target_seconds`` of speech: ≈ 2.5 words per second, or
    characters for Chinese / Japanese / Thai. At least 5 words."""
    seconds = max(float(target_seconds), 1.0)
    name = language_name(language).lower()
    name = _CHARS_LANGUAGES.get(name, name)
    if name in CHARS_PER_SECOND:
        return LengthBudget(max(10, round(seconds * CHARS_PER_SECOND[name])), "characters", seconds)
    return LengthBudget(max(5, round(seconds * WORDS_PER_SECOND)), "words", seconds)


def default_num_predict(budget: LengthBudget) -> int:
    """A token limit that leaves room for the narration (a word can take 2 tokens, a
    character 1.5) plus title, stage description, mood and the JSON around them."""
    per_unit = 2.0 if budget.unit == "words" else 1.5
    return int(math.ceil(budget.count * per_unit)) + 400


def check_kind(kind: str) -> str:
    """``kind`` if it is one of :data:`KINDS`; raises ``ValueError`` otherwise."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {', '.join(KINDS)}, got {kind!r}")
    return kind


def system_message(style: str | None, language: str | None, budget: LengthBudget, kind: str = "talking_head") -> str:
    """The system prompt; ``kind`` (see :data:`KINDS`) decides what the stage description is."""
    lang = language_name(language)
    style = (style or "").strip() or DEFAULT_STYLE
    return (
        "You write scripts for short talking-head videos: one person speaks straight to the camera.\n"
        f"Style: {style}\n"
        "Reply with one JSON object and nothing else, with exactly these keys:\n"
        '- "title": a short title, at most eight words;\n'
        f'- "narration": only the words the speaker says aloud, in {lang}, {budget.describe()}; '
        "no stage directions, no brackets, no speaker labels, no markdown, no emoji, no lists;\n"
        f"{_STAGE[check_kind(kind)]}"
        '- "mood": the tone of the delivery in one to three English words.'
    )


def user_message(prompt: str, language: str | None, budget: LengthBudget) -> str:
    return (
        f"{prompt.strip()}\n\n"
        f"Length of the narration: {budget.describe()}. Language of the narration: {language_name(language)}."
    )


def build_messages(prompt: str, style: str | None, language: str | None, budget: LengthBudget,
                   kind: str = "talking_head") -> list[dict[str, str]]:
    """The ``system`` and ``user`` chat messages for one script (``kind``: see :data:`KINDS`)."""
    return [
        {"role": "system", "content": system_message(style, language, budget, kind)},
        {"role": "user", "content": user_message(prompt, language, budget)},
    ]


def correction_messages(bad_reply: str, problem: str) -> list[dict[str, str]]:
    """Messages appended for the one retry: the invalid reply, and what was wrong with it."""
    return [
        {"role": "assistant", "content": bad_reply},
        {
            "role": "user",
            "content": f"That reply was not usable: {problem}. Reply again with only the JSON object "
            'with the keys "title", "narration", "stage_description" and "mood", all strings, '
            "and a narration that is not empty.",
        },
    ]
