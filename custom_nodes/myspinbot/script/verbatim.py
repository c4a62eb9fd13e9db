"""Verbatim scripts: a user's own text, cleaned of what should not be spoken.

Removed: stage directions in brackets or parentheses (``[laughs]``, ``(pause)``), actions
between single asterisks (``*smiles*``), speaker labels at the start of a line
(``NARRATOR:``, ``Host (V.O.):``, ``**Speaker 2:**``) and markdown heading / bullet
markers. Kept: every spoken word, in order, with the paragraph breaks. Bold markdown
(``**word**``) keeps its word. The removed directions are returned so that they can serve as
the stage description.
"""

from __future__ import annotations

import re

from ..errors import ScriptWriterError
from .schema import Script

# Speaker roles written in ordinary case that still count as a label ("Narrator: ...").
# ALL-CAPS labels ("JOHN:", "NARRATOR (V.O.):") are labels whatever the word.
KNOWN_ROLES = frozenset({
    "narrator", "host", "co-host", "speaker", "presenter", "announcer", "voice", "voiceover",
    "voice-over", "voice over", "vo", "v.o.", "interviewer", "interviewee", "guest", "anchor",
    "reporter", "moderator", "teacher", "student", "character", "actor",
})

_LINE_MARKER = re.compile(r"^[ \t]*(?:#{1,6}|[-•]|\*(?=[ \t]))[ \t]+")
_BOLD = re.compile(r"\*\*(?=\S)(.+?)(?<=\S)\*\*|__(?=\S)(.+?)(?<=\S)__")
_LABEL = re.compile(
    r"^[ \t]*(?P<label>[^\W\d_][\w'’.\- ]{0,29}?)[ \t]*(?P<paren>\([^()\n]*\))?[ \t]*:(?:[ \t]+|$)"
)
# innermost [..] or (..), or an *action* between single asterisks
_DIRECTION = re.compile(
    r"\[([^\[\]]*)\]|\(([^()]*)\)|(?<![\*\w])\*(?![\s*])([^*\n]+?)(?<![\s*])\*(?![\*\w])"
)
_SPACES = re.compile(r"[ \t\u00a0]+")
_SPACE_BEFORE_PUNCT = re.compile(r"\s+([,.;:!?…])")
_LEADING_PUNCT = re.compile(r"^[,.;:…\s]+")
_REPEATED_PUNCT = re.compile(r"([,;:])(?:\s*[,;:])+")
_ROLE_SUFFIX = re.compile(r"\s+(?:\d+|[A-Za-z])$")


def _is_label(label: str) -> bool:
    label = label.strip()
    if not label:
        return False
    if label.isupper():
        return True
    return _ROLE_SUFFIX.sub("", label).lower() in KNOWN_ROLES


def _strip_label(line: str) -> str:
    match = _LABEL.match(line)
    if match and _is_label(match.group("label")):
        return line[match.end():]
    return line


def _remove(pattern: re.Pattern[str], text: str, found: list[str]) -> str:
    def drop(match: re.Match[str]) -> str:
        inner = " ".join(next(g for g in match.groups() if g is not None).split())
        if inner:
            found.append(inner)
        return " "

    while True:
        new = pattern.sub(drop, text)
        if new == text:
            return new
        text = new


def _tidy(line: str) -> str:
    line = _SPACES.sub(" ", line)
    line = _SPACE_BEFORE_PUNCT.sub(r"\1", line)
    line = _REPEATED_PUNCT.sub(r"\1", line)
    line = _LEADING_PUNCT.sub("", line)
    return line.strip()


def split_directions(text: str) -> tuple[str, list[str]]:
    """Return ``(spoken_text, directions)``: the text with stage directions, actions,
    speaker labels and markdown markers removed, and the removed directions in order
    (without duplicates)."""
    text = (text or "").replace("\r\n", "\n").replace("\r", "\n")
    lines = []
    for line in text.split("\n"):
        line = _LINE_MARKER.sub("", line)
        line = _BOLD.sub(lambda m: m.group(1) or m.group(2), line)
        lines.append(_strip_label(line))
    found: list[str] = []
    body = _remove(_DIRECTION, "\n".join(lines), found)

    original = text.split("\n")
    cleaned = body.split("\n")
    out: list[str] = []
    for before, after in zip(original, cleaned):
        after = _tidy(after)
        if after:
            out.append(after)
        elif not before.strip() and out and out[-1] != "":
            out.append("")  # a paragraph break of the original
    while out and out[-1] == "":
        out.pop()
    directions = list(dict.fromkeys(found))
    return "\n".join(out), directions


def clean_script(text: str) -> str:
    """The spoken words of ``text`` (see :func:`split_directions`)."""
    return split_directions(text)[0]


def verbatim_script(text: str) -> Script:
    """A :class:`Script` from the user's own text: narration = the cleaned text, stage
    description = the removed directions joined with ``"; "``, empty title and mood.

    Raises ``ScriptWriterError`` ``script_empty`` when nothing speakable is left."""
    narration, directions = split_directions(text)
    if not narration:
        what = "is empty" if not (text or "").strip() else "holds only stage directions or speaker labels"
        raise ScriptWriterError(
            f"the verbatim script {what}, so there is nothing to speak; "
            "fix: type the words to be spoken into the prompt, or switch mode to 'ollama'",
            code="script_empty",
        )
    return Script(title="", narration=narration, stage_description="; ".join(directions), mood="")
