"""Script writing: a short talking-head script from a prompt with a local LLM (Ollama), or
the user's own text passed through verbatim (cleaned of stage directions).

No ComfyUI imports; the ``ollama`` package is imported only when a script is written, so
this package imports (and the pack loads) without it.
"""

from .prompting import DEFAULT_LANGUAGE, DEFAULT_STYLE, build_messages, language_name, length_budget
from .schema import Script, json_schema
from .verbatim import clean_script, split_directions, verbatim_script
from .writer import (
    DEFAULT_HOST,
    DEFAULT_MODEL,
    DEFAULT_TIMEOUT_S,
    MAX_ATTEMPTS,
    ScriptSettings,
    chat_request,
    ollama_client,
    parse_keep_alive,
    parse_reply,
    resolve_host,
    write_script,
)

__all__ = [
    "DEFAULT_HOST",
    "DEFAULT_LANGUAGE",
    "DEFAULT_MODEL",
    "DEFAULT_STYLE",
    "DEFAULT_TIMEOUT_S",
    "MAX_ATTEMPTS",
    "Script",
    "ScriptSettings",
    "build_messages",
    "chat_request",
    "clean_script",
    "json_schema",
    "language_name",
    "length_budget",
    "ollama_client",
    "parse_keep_alive",
    "parse_reply",
    "resolve_host",
    "split_directions",
    "verbatim_script",
    "write_script",
]
