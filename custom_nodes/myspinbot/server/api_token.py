"""The API token: ``MYSPINBOT_API_TOKEN``, or one generated on the first start into
``<ComfyUI user dir>/myspinbot/api_token`` (mode 0600).

The value is never written to the console or the log: ComfyUI captures both into the buffer its
unauthenticated ``GET /internal/logs`` serves, so printing it would hand it to anyone who can
reach the port. The log says where the token file is instead.
"""

from __future__ import annotations

import hashlib
import logging
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger("myspinbot.auth")

TOKEN_ENV = "MYSPINBOT_API_TOKEN"
TOKEN_FILE = ("myspinbot", "api_token")
MIN_TOKEN_CHARS = 16


@dataclass(frozen=True, repr=False)
class ApiToken:
    value: str
    source: str  # "env", "file", "generated" or "given"
    path: Path | None = None  # the token file (None when it came from the environment)

    def __repr__(self) -> str:  # never show the value, not even in a traceback or debugger
        return f"ApiToken(source={self.source!r}, path={self.path!r})"

    __str__ = __repr__


def token_path(user_dir: Path) -> Path:
    return Path(user_dir).joinpath(*TOKEN_FILE)


def load_token(user_dir: Path, configured: str | None = None) -> ApiToken:
    """The API token: ``configured`` (``Settings.api_token``) if set, else the token file, else a
    new token (``secrets.token_urlsafe(32)``) written to the token file with mode 0600.

    Only the token file's path is logged, never the value."""
    configured = (configured or "").strip()
    if configured:
        if len(configured) < MIN_TOKEN_CHARS:
            log.warning("myspinbot: %s is shorter than %d characters; use a long random token",
                        TOKEN_ENV, MIN_TOKEN_CHARS)
        return ApiToken(configured, "env")
    path = token_path(user_dir)
    existing = _read_token_file(path)
    if existing:
        return ApiToken(existing, "file", path)
    value = secrets.token_urlsafe(32)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = _create_private(path)
    except FileExistsError:  # an empty or unreadable file, or another process was first
        existing = _read_token_file(path)
        if existing:
            return ApiToken(existing, "file", path)
        path.unlink(missing_ok=True)
        fd = _create_private(path)
    with os.fdopen(fd, "w", encoding="ascii") as out:
        _chmod_owner_only(path)
        out.write(value + "\n")
    log.warning("myspinbot: generated an API token in %s (readable by its owner only); read it from that file "
                "or set %s to choose your own", path, TOKEN_ENV)
    return ApiToken(value, "generated", path)


def _create_private(path: Path) -> int:
    return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o600)


def _read_token_file(path: Path) -> str | None:
    try:
        value = path.read_text(encoding="ascii").strip()
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as exc:
        log.warning("myspinbot: cannot read the API token file %s (%s); writing a new one", path, type(exc).__name__)
        return None
    if not value:
        return None
    if os.name == "posix" and path.stat().st_mode & 0o077:
        log.warning("myspinbot: %s was readable by others; restricting it to its owner (0600)", path)
        _chmod_owner_only(path)
    return value


def _chmod_owner_only(path: Path) -> None:
    try:
        os.chmod(path, 0o600)
    except OSError:  # e.g. a file system without POSIX modes
        pass


def digest(value: str) -> bytes:
    """SHA-256 of a presented or configured token, so comparisons leak neither content nor length."""
    return hashlib.sha256(value.encode("utf-8", "surrogateescape")).digest()
