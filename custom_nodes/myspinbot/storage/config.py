"""Where the object storage is and how to reach it: :class:`S3Settings`.

Credentials come only from the environment or from ComfyUI's user settings file
(``<user dir>/default/comfy.settings.json``, keys ``MySpinBot.S3.*``); never from a node
input, so they never end up in a workflow, a job or a log. For each field the environment
wins over the ComfyUI setting, which wins over the default.

Environment variables (and the matching ComfyUI setting ids):

==============================  ===========================  ==========================================
``MYSPINBOT_S3_ENDPOINT``       ``MySpinBot.S3.Endpoint``    ``host:port`` or ``http(s)://host:port``
``MYSPINBOT_S3_ACCESS_KEY``     ``MySpinBot.S3.AccessKey``   access key id
``MYSPINBOT_S3_SECRET_KEY``     ``MySpinBot.S3.SecretKey``   secret key
``MYSPINBOT_S3_SESSION_TOKEN``  ``MySpinBot.S3.SessionToken`` optional (temporary credentials)
``MYSPINBOT_S3_REGION``         ``MySpinBot.S3.Region``      e.g. ``us-east-1``; R2: ``auto``
``MYSPINBOT_S3_SECURE``         ``MySpinBot.S3.Secure``      HTTPS (default: on, or the URL's scheme)
``MYSPINBOT_S3_BUCKET``         ``MySpinBot.S3.Bucket``      default bucket when a node leaves it empty
``MYSPINBOT_S3_RETRIES``        ``MySpinBot.S3.Retries``     attempts per upload (default 4)
``MYSPINBOT_S3_BACKOFF_S``      ``MySpinBot.S3.BackoffS``    first wait between attempts, doubled each time (1.0)
``MYSPINBOT_S3_PART_SIZE_MB``   ``MySpinBot.S3.PartSizeMB``  multipart part size and threshold, MiB, >= 5 (16)
``MYSPINBOT_S3_PARALLEL``       ``MySpinBot.S3.Parallel``    parts uploaded at once (3)
``MYSPINBOT_S3_TIMEOUT_S``      ``MySpinBot.S3.TimeoutS``    connect / read timeout per request (30)
==============================  ===========================  ==========================================
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Mapping
from urllib.parse import urlsplit

from ..errors import InvalidInputError, StorageError

ENV_PREFIX = "MYSPINBOT_S3_"
SETTING_PREFIX = "MySpinBot.S3."
SETTINGS_FILE = "comfy.settings.json"
MIN_PART_SIZE_MB = 5  # S3's rule for every part but the last
_MASK = "***"

# field name -> (env suffix, ComfyUI setting suffix)
_SOURCES: dict[str, tuple[str, str]] = {
    "endpoint": ("ENDPOINT", "Endpoint"),
    "access_key": ("ACCESS_KEY", "AccessKey"),
    "secret_key": ("SECRET_KEY", "SecretKey"),
    "session_token": ("SESSION_TOKEN", "SessionToken"),
    "region": ("REGION", "Region"),
    "secure": ("SECURE", "Secure"),
    "bucket": ("BUCKET", "Bucket"),
    "retries": ("RETRIES", "Retries"),
    "backoff_s": ("BACKOFF_S", "BackoffS"),
    "part_size_mb": ("PART_SIZE_MB", "PartSizeMB"),
    "parallel_uploads": ("PARALLEL", "Parallel"),
    "timeout_s": ("TIMEOUT_S", "TimeoutS"),
}
_SECRET_FIELDS = ("access_key", "secret_key", "session_token")


@dataclass(frozen=True)
class S3Settings:
    """Connection settings for one S3-compatible server. ``repr``/``str`` mask the credentials;
    :meth:`public` is the only dict form and holds none."""

    endpoint: str = ""
    access_key: str = field(default="", repr=False)
    secret_key: str = field(default="", repr=False)
    session_token: str = field(default="", repr=False)
    region: str | None = None
    secure: bool | None = None  # None: the endpoint URL's scheme decides, else HTTPS
    bucket: str = ""
    retries: int = 4
    backoff_s: float = 1.0
    part_size_mb: int = 16
    parallel_uploads: int = 3
    timeout_s: float = 30.0

    def __post_init__(self) -> None:
        endpoint, secure = _split_endpoint(self.endpoint, self.secure)
        object.__setattr__(self, "endpoint", endpoint)
        object.__setattr__(self, "secure", secure)
        object.__setattr__(self, "region", self.region or None)
        if self.retries < 1:
            raise InvalidInputError(f"S3 retries must be at least 1, got {self.retries}")
        if self.backoff_s < 0:
            raise InvalidInputError(f"S3 backoff must not be negative, got {self.backoff_s}")
        if self.part_size_mb < MIN_PART_SIZE_MB:
            raise InvalidInputError(f"S3 part size must be at least {MIN_PART_SIZE_MB} MiB, got {self.part_size_mb}")
        if self.parallel_uploads < 1:
            raise InvalidInputError(f"S3 parallel uploads must be at least 1, got {self.parallel_uploads}")
        if self.timeout_s <= 0:
            raise InvalidInputError(f"S3 timeout must be positive, got {self.timeout_s}")

    # --- masking -------------------------------------------------------------------------
    def __repr__(self) -> str:
        parts = []
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name in _SECRET_FIELDS:
                value = _MASK if value else ""
            parts.append(f"{f.name}={value!r}")
        return f"S3Settings({', '.join(parts)})"

    __str__ = __repr__

    def public(self) -> dict[str, Any]:
        """The settings as a dict with each credential replaced by whether it is set."""
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            out[f.name if f.name not in _SECRET_FIELDS else f"{f.name}_set"] = bool(value) if f.name in _SECRET_FIELDS else value
        return out

    def scrub(self, text: str) -> str:
        """``text`` with every credential replaced by ``***`` (for error messages and logs)."""
        for name in _SECRET_FIELDS:
            value = getattr(self, name)
            if value:
                text = text.replace(value, _MASK)
        return text

    # --- derived -------------------------------------------------------------------------
    @property
    def configured(self) -> bool:
        return bool(self.endpoint and self.access_key and self.secret_key)

    @property
    def part_size(self) -> int:
        return int(self.part_size_mb) * 1024 * 1024

    def require(self) -> None:
        """Raise ``StorageError(storage_not_configured)`` unless endpoint and both keys are set."""
        missing = [name for name in ("endpoint", "access_key", "secret_key") if not getattr(self, name)]
        if missing:
            envs = ", ".join(ENV_PREFIX + _SOURCES[name][0] for name in missing)
            raise StorageError(
                f"object storage is not configured: set {envs} in ComfyUI's environment "
                f"(or the ComfyUI settings {', '.join(SETTING_PREFIX + _SOURCES[n][1] for n in missing)})",
                code="storage_not_configured",
                details={"missing": missing},
            )

    def with_overrides(self, **changes: Any) -> "S3Settings":
        return replace(self, **changes)


def load_settings(
    *,
    env: Mapping[str, str] | None = None,
    comfy_settings: Mapping[str, Any] | None = None,
    settings_file: str | os.PathLike | None = None,
) -> S3Settings:
    """Build :class:`S3Settings` from the environment (``os.environ`` unless ``env`` is given),
    then ComfyUI settings (``comfy_settings``, the parsed ``comfy.settings.json``, or
    ``settings_file`` read here), then defaults. Raises ``InvalidInputError`` on a value that
    does not parse (the message names the variable, never its value)."""
    env = os.environ if env is None else env
    if comfy_settings is None and settings_file is not None:
        comfy_settings = read_comfy_settings(settings_file)
    comfy_settings = comfy_settings or {}
    defaults = S3Settings()
    values: dict[str, Any] = {}
    for name, (env_suffix, setting_suffix) in _SOURCES.items():
        env_name, setting_name = ENV_PREFIX + env_suffix, SETTING_PREFIX + setting_suffix
        raw: Any = env.get(env_name)
        source = env_name
        if raw is None or (isinstance(raw, str) and raw.strip() == ""):
            raw, source = comfy_settings.get(setting_name), setting_name
        if raw is None or (isinstance(raw, str) and raw.strip() == ""):
            continue
        values[name] = _parse(name, raw, getattr(defaults, name), source)
    return S3Settings(**values)


def read_comfy_settings(path: str | os.PathLike) -> dict[str, Any]:
    """The ``MySpinBot.S3.*`` entries of a ComfyUI ``comfy.settings.json`` (empty if the file is
    missing or unreadable: storage is then simply not configured from there)."""
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict):
        return {}
    return {k: v for k, v in data.items() if isinstance(k, str) and k.startswith(SETTING_PREFIX)}


def comfy_settings_path(user_dir: str | os.PathLike, user: str = "default") -> Path:
    """Where ComfyUI keeps a user's settings: ``<user dir>/<user>/comfy.settings.json``."""
    return Path(user_dir) / user / SETTINGS_FILE


def _parse(name: str, raw: Any, default: Any, source: str) -> Any:
    try:
        if name == "secure":
            if isinstance(raw, bool):
                return raw
            text = str(raw).strip().lower()
            if text in ("1", "true", "yes", "on"):
                return True
            if text in ("0", "false", "no", "off"):
                return False
            raise ValueError
        if isinstance(default, bool):
            raise ValueError
        if isinstance(default, int):
            return int(str(raw).strip())
        if isinstance(default, float):
            return float(str(raw).strip())
        return str(raw).strip()
    except (TypeError, ValueError):
        raise InvalidInputError(f"{source} has a value that does not parse as the {name} setting") from None


def _split_endpoint(endpoint: str, secure: bool | None) -> tuple[str, bool]:
    """``http(s)://host:port`` or ``host:port`` → (``host:port``, secure). An explicit
    ``secure`` wins over the URL's scheme; with neither, HTTPS."""
    endpoint = (endpoint or "").strip()
    if "://" in endpoint:
        parts = urlsplit(endpoint)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise InvalidInputError("the S3 endpoint must be host:port or an http(s):// URL")
        if parts.path not in ("", "/") or parts.query or parts.fragment or "@" in parts.netloc:
            raise InvalidInputError("the S3 endpoint must not hold a path, query or user info")
        if secure is None:
            secure = parts.scheme == "https"
        endpoint = parts.netloc
    elif "/" in endpoint or "@" in endpoint:
        raise InvalidInputError("the S3 endpoint must be host:port or an http(s):// URL")
    return endpoint, True if secure is None else bool(secure)
