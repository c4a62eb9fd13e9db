"""A profile's files in object storage (when ``MYSPINBOT_S3_*`` is configured): the LoRA under
``loras/<profile id>/``, the voice clip and a fine-tuned voice's checkpoint under
``voices/<profile id>/``, in the configured
bucket (default ``myspinbot``); ``GET /profiles/{id}`` carries fresh presigned links.

Blocking (network): call off the event loop. Never raises: storage that is off or failing leaves
the profile as it was (logged).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from ..repos.profiles import Profile
from . import files

log = logging.getLogger("myspinbot.profiles")

LORAS, VOICES = "loras", "voices"
DEFAULT_BUCKET = "myspinbot"
PRESIGN_S = 3600


def _settings(user_dir: Path):
    from ...storage import comfy_settings_path, load_settings

    settings = load_settings(settings_file=comfy_settings_path(user_dir))
    return settings if settings.configured else None


def upload_profile(user_dir: Path, input_dir: Path, profile: Profile) -> dict[str, Any] | None:
    """Upload the profile's LoRA and fine-tuned voice (where ComfyUI's models folders are known) and
    voice clip; returns ``{"lora" | "voice" | "voice_model": {"bucket", "key"}}`` of what is stored,
    None when storage is off or nothing could be stored."""
    from ...errors import MySpinBotError
    from ...storage import upload_file

    try:
        settings = _settings(user_dir)
    except MySpinBotError:
        log.warning("myspinbot: object storage settings do not parse; profile %s stays local", profile.id)
        return None
    if settings is None:
        return None
    bucket = settings.bucket or DEFAULT_BUCKET
    stored: dict[str, Any] = dict(profile.storage or {})
    lora = files.lora_file(profile.lora_name)
    voice = Path(input_dir) / profile.voice_path if profile.voice_path else None
    tuned = files.voice_model_file(profile.voice_model)
    for part, prefix, path in (("lora", LORAS, lora), ("voice", VOICES, voice), ("voice_model", VOICES, tuned)):
        if path is None or not path.is_file():
            continue
        try:
            obj = upload_file(settings, path, bucket, f"{prefix}/{profile.id}/{path.name}", create_bucket=True,
                              presign_expiry_s=0)
        except MySpinBotError as err:
            log.warning("myspinbot: could not store the %s of profile %s: %s", part, profile.id, err)
            continue
        previous = stored.get(part)
        stored[part] = {"bucket": obj.bucket, "key": obj.key}
        if previous and previous != stored[part]:  # a replaced file: its old object goes
            remove_objects(user_dir, {part: previous})
    return stored or None


def remove_objects(user_dir: Path, storage: dict[str, Any] | None) -> None:
    """Delete the stored objects (a deleted profile's); failures are logged."""
    if not storage:
        return
    from ...errors import MySpinBotError
    from ...storage import remove

    try:
        settings = _settings(user_dir)
    except MySpinBotError:
        settings = None
    for where in storage.values():
        try:
            if settings is None:
                raise MySpinBotError("object storage is not configured")
            remove(settings, where["bucket"], where["key"])
        except MySpinBotError as err:
            log.warning("myspinbot: could not remove s3://%s/%s: %s", where["bucket"], where["key"], err)


def presigned_links(user_dir: Path, storage: dict[str, Any] | None) -> dict[str, Any] | None:
    """``{"lora" | "voice": {"uri", "presigned_url"}}`` for the stored parts (a link that cannot be
    made is null); None when nothing is stored."""
    if not storage:
        return None
    from ...errors import MySpinBotError
    from ...storage import presign

    try:
        settings = _settings(user_dir)
    except MySpinBotError:
        settings = None
    links = {}
    for part, where in storage.items():
        url = None
        if settings is not None:
            try:
                url = presign(settings, where["bucket"], where["key"], PRESIGN_S)
            except MySpinBotError as err:
                log.warning("myspinbot: could not presign %s: %s", where["key"], err)
        links[part] = {"uri": f"s3://{where['bucket']}/{where['key']}", "presigned_url": url}
    return links
