"""Reading Ollama's replies: fields of response objects or dicts, and a reply's text as a
validated :class:`~.schema.Script`."""

from __future__ import annotations

import json
import re
from typing import Any, Mapping

from pydantic import ValidationError

from ..errors import ScriptWriterError
from .schema import Script
from .verbatim import clean_script

_FENCE = re.compile(r"^```[a-zA-Z]*\s*\n?(.*?)\n?```$", re.DOTALL)


def field(obj: Any, name: str) -> Any:
    """``obj[name]`` for a mapping, else ``obj.name``; ``None`` when absent (the ``ollama``
    client returns pydantic objects, stand-ins and older versions return dicts)."""
    if obj is None:
        return None
    if isinstance(obj, Mapping):
        return obj.get(name)
    return getattr(obj, name, None)


class BadReply(Exception):
    """A reply that is not a usable script: ``kind`` ``"empty"`` or ``"invalid"``; ``problem``
    says what is wrong (it is sent back to the model in the correction message)."""

    def __init__(self, kind: str, problem: str):
        super().__init__(problem)
        self.kind = kind
        self.problem = problem


def read_script(content: str, clean: bool) -> Script:
    """Validate one reply's text as a :class:`Script` (a markdown code fence around the JSON is
    tolerated); with ``clean`` the narration loses stage directions. Raises :class:`BadReply`."""
    text = (content or "").strip()
    if not text:
        raise BadReply("empty", "the reply was empty")
    fenced = _FENCE.match(text)
    if fenced:
        text = fenced.group(1).strip()
    try:
        data = json.loads(text)
    except json.JSONDecodeError as err:
        raise BadReply("invalid", f"not valid JSON ({err.msg} at line {err.lineno} column {err.colno})") from None
    if not isinstance(data, dict):
        raise BadReply("invalid", f"a JSON {type(data).__name__} instead of an object")
    try:
        script = Script.model_validate(data)
    except ValidationError as err:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'object'}: {e['msg']}" for e in err.errors()
        )
        raise BadReply("invalid", f"the JSON does not match the script schema ({problems})") from None
    if clean:
        script = script.model_copy(update={"narration": clean_script(script.narration)})
    if not script.narration:
        raise BadReply("empty", "the narration was empty")
    return script


def parse_reply(content: str, *, clean: bool = True) -> Script:
    """Validate one reply's text as a :class:`Script` (a markdown code fence around the JSON
    is tolerated). Raises ``ScriptWriterError`` ``script_empty`` / ``script_invalid_output``."""
    try:
        return read_script(content, clean)
    except BadReply as bad:
        code = "script_empty" if bad.kind == "empty" else "script_invalid_output"
        raise ScriptWriterError(bad.problem, code=code) from None
