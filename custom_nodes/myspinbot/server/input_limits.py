"""The size limits on a job's inputs (``settings.Settings``), each checked before the step it guards.

- images: width, height and frame count are read from the header, before anything is decoded
  (413 ``image_too_large``);
- audio: seconds are counted while decoding and decoding stops as soon as the limit is passed
  (413 ``audio_too_long``); GPU pipelines get ``max_audio_s_gpu``, the others ``max_audio_s``;
- text parameters (a script, a prompt, a transcript): characters (413 ``script_too_long``);
- file parts: only those a pipeline takes (``file_fields_of``, for ``uploads.read_multipart``).

Every refusal is an ``ApiError`` whose ``details.limit`` names the ``MYSPINBOT_*`` variable.
The image and audio checks block (they read and decode files): run them off the event loop.
"""

from __future__ import annotations

import asyncio
import functools
from pathlib import Path
from typing import Any, Callable

from .api_errors import ApiError
from .pipelines import Pipeline
from .settings import Settings, limit_details


def check_image_header(img: Any, settings: Settings, field: str) -> None:
    """Refuse an opened (not yet decoded) Pillow image that is too large to decode.

    ``img`` is what ``PIL.Image.open`` returned: it has read the header only. The pixel count is
    width x height x frames (ComfyUI's image loader decodes every frame). Raises ``ApiError``
    413 ``image_too_large`` naming ``MYSPINBOT_MAX_IMAGE_SIDE`` or ``MYSPINBOT_MAX_IMAGE_PIXELS``."""
    width, height = img.size
    side = max(width, height)
    if side > settings.max_image_side:
        raise ApiError(413, "image_too_large",
                       f"'{field}' is {width}x{height} pixels; the longest side may be {settings.max_image_side}",
                       limit_details("max_image_side", settings.max_image_side, side, field=field))
    frames = int(getattr(img, "n_frames", 1) or 1)  # from the header for PNG/WebP; GIF/TIFF skim frame headers
    pixels = width * height * frames
    if pixels > settings.max_image_pixels:
        shape = f"{width}x{height}" + (f" x {frames} frames" if frames > 1 else "")
        raise ApiError(413, "image_too_large",
                       f"'{field}' has {pixels} pixels ({shape}); at most {settings.max_image_pixels} are accepted",
                       limit_details("max_image_pixels", settings.max_image_pixels, pixels, field=field))


def image_bomb_error(settings: Settings, field: str) -> ApiError:
    """The refusal of an image Pillow itself calls a decompression bomb (over twice
    ``PIL.Image.MAX_IMAGE_PIXELS``, refused while reading the header)."""
    return ApiError(413, "image_too_large", f"'{field}' has too many pixels to decode",
                    limit_details("max_image_pixels", settings.max_image_pixels, field=field))


def audio_limit(settings: Settings, pipeline: Pipeline | None) -> tuple[str, float]:
    """(setting name, seconds) of speech ``pipeline`` accepts; None (an asset upload, used later
    by any pipeline) gets the larger of the two limits."""
    if pipeline is None:
        return max((("max_audio_s", settings.max_audio_s), ("max_audio_s_gpu", settings.max_audio_s_gpu)),
                   key=lambda item: item[1])
    return ("max_audio_s_gpu", settings.max_audio_s_gpu) if pipeline.gpu else ("max_audio_s", settings.max_audio_s)


def check_audio_length(path: Path, setting: str, limit_s: float, field: str) -> float:
    """Seconds of audio in ``path``, counted by decoding; decoding stops once past ``limit_s``.

    Raises ``ApiError`` 413 ``audio_too_long`` (``details.limit`` names ``setting``), or
    ``InvalidInputError`` when the file does not decode (the caller words that error)."""
    from ..speech.audio_io import count_audio_seconds

    seconds = count_audio_seconds(path, stop_after_s=limit_s)
    if seconds > limit_s:
        raise ApiError(413, "audio_too_long",
                       f"'{field}' is longer than {limit_s:g} s (the limit of this pipeline)",
                       limit_details(setting, limit_s, None, field=field, actual_at_least=round(seconds, 3)))
    return seconds


async def check_asset_audio(pipeline: Pipeline, raw: dict[str, Any], values: dict[str, Any], input_dir: Path,
                            settings: Settings) -> None:
    """Audio given as an asset id (``values`` holds its path under ``input_dir``): its length
    against this pipeline's limit (uploads are checked only against the larger one). Decodes up
    to the limit in an executor. Raises ``ApiError`` 413 ``audio_too_long``."""
    for name in raw:
        param = pipeline.param(name)
        if param is not None and param.kind == "audio" and isinstance(values.get(name), str):
            check = functools.partial(check_audio_length, input_dir / values[name], *audio_limit(settings, pipeline), name)
            await asyncio.get_running_loop().run_in_executor(None, check)


def check_text_inputs(pipeline: Pipeline, raw: dict[str, Any], settings: Settings) -> None:
    """Refuse a text parameter (kind ``text``: script, prompt, transcript) longer than
    ``max_script_chars`` characters: 413 ``script_too_long``. Other values are left to ``coerce``."""
    for name, value in raw.items():
        param = pipeline.param(name)
        if param is not None and param.kind == "text" and isinstance(value, str) and len(value) > settings.max_script_chars:
            raise ApiError(413, "script_too_long",
                           f"'{name}' has {len(value)} characters; at most {settings.max_script_chars} are accepted",
                           limit_details("max_script_chars", settings.max_script_chars, len(value), field=name))


def file_fields_of(pipelines: dict[str, Pipeline]) -> Callable[[dict[str, str]], set[str]]:
    """For ``uploads.read_multipart``: the file parts a job form may hold, given its text parts so
    far: those of its pipeline, or of any pipeline while no known 'pipeline' part has come."""

    def allowed(fields: dict[str, str]) -> set[str]:
        chosen = pipelines.get(fields.get("pipeline", ""))
        return {p.name for pipeline in ([chosen] if chosen else pipelines.values()) for p in pipeline.file_params()}

    return allowed
