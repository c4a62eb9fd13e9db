"""Typing one raw parameter value (a form string or a JSON value) by its parameter's kind."""

from __future__ import annotations

import math
from typing import Any

from ..api_errors import ApiError

FILE_KINDS = frozenset({"image", "audio"})
"""Parameter kinds bound to an uploaded file (its path relative to ComfyUI's input folder)."""

TEXT_KINDS = frozenset({"text", "string"})

_BOOL_TEXT = {"true": True, "1": True, "on": True, "yes": True, "false": False, "0": False, "off": False, "no": False}


def coerce_value(param: Any, value: Any) -> Any:
    """``value`` typed for ``param`` (a :class:`~.base.Param`): ``bool`` for ``boolean`` (also from "true"/"1"/"on"/"yes" and
    their opposites), ``str`` for files and text (within ``choices`` when set), ``int`` for
    ``integer``, ``float`` for ``number`` (finite, within ``minimum``..``maximum``).

    Raises ``ApiError`` 422 ``invalid_parameter`` with ``details.field`` = the parameter's name."""

    def bad(why: str) -> ApiError:
        return ApiError(422, "invalid_parameter", f"parameter '{param.name}' {why}", {"field": param.name})

    if param.kind == "boolean":
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in _BOOL_TEXT:
            return _BOOL_TEXT[value.strip().lower()]
        raise bad("must be true or false")
    if param.kind in FILE_KINDS or param.kind in TEXT_KINDS:
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
