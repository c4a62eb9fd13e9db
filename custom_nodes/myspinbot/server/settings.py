"""The job service's settings: one object, read from ``MYSPINBOT_*`` environment variables once
when the API is attached (``plugin.attach``) and passed down; tests construct it directly.

Every limit is checked before the expensive step it guards and refused with a 4xx JSON envelope
that names the setting (``details.limit``), so a user knows which variable to raise.
"""

from __future__ import annotations

import logging
import os
from typing import TYPE_CHECKING, Annotated, Mapping

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

if TYPE_CHECKING:
    from ..storage import S3Settings

log = logging.getLogger("myspinbot.settings")

PREFIX = "MYSPINBOT_"
S3_PREFIX = "MYSPINBOT_S3_"
MIB = 1 << 20
CsvList = Annotated[tuple[str, ...], NoDecode]
DEFAULT_RETENTION_DAYS = 30.0
DEFAULT_RETENTION_SWEEP_S = 3600.0
_FOREVER = ("off", "never", "none", "forever")


class Settings(BaseSettings):
    """``MYSPINBOT_<FIELD>`` (case-insensitive) sets each field (``Settings.from_env``); lists are
    comma-separated. ``Settings(field=value)`` ignores the environment."""

    model_config = SettingsConfigDict(env_prefix=PREFIX, extra="ignore", frozen=True)

    # --- access (auth.py) -----------------------------------------------------------------
    api_token: str | None = Field(None, repr=False, description="the bearer token; generated into the user dir when unset")
    protect_comfyui: bool = Field(False, description="put the token in front of ComfyUI's own routes too")

    # --- database (store.py, pg_db.py) -------------------------------------------------------
    database_url: str | None = Field(None, repr=False, description="postgresql://user:password@host:5432/db: keep the "
                                     "jobs in PostgreSQL, shared by every server given the same URL; unset: SQLite "
                                     "in ComfyUI's user directory")
    server_id: str | None = Field(None, description="this server's name in a shared queue (unique among them); "
                                  "default: host name and process id")
    lease_s: float = Field(30.0, gt=0, allow_inf_nan=False, description="how long a server's claim on a job holds "
                           "without a heartbeat; after it another server takes the job over")
    claim_poll_s: float = Field(2.0, gt=0, allow_inf_nan=False, description="how often a server of a shared queue "
                                "renews its claims, reclaims expired ones and, when idle, claims a job")
    max_attempts: int = Field(3, ge=1, description="claims a job of a shared queue may get before it fails lost_worker")
    s3_env: dict[str, str] = Field(default_factory=dict, repr=False, description="the MYSPINBOT_S3_* variables "
                                   "(object storage: storage/config.py reads them through ``object_storage``)")

    # --- queue (jobs/service.py, reconcile.py) ------------------------------------------
    max_queued: int = Field(100, ge=1, description="jobs waiting in ComfyUI's queue at most (429 queue_full beyond)")
    reconcile_interval_s: float = Field(30.0, gt=0, description="how often queued jobs are checked against ComfyUI's queue")

    # --- lip-sync scores (jobs/quality.py) ---------------------------------------------------
    lipsync_score: bool = Field(True, description="score every job's video outputs with SyncNet (LSE-D/LSE-C) "
                                "while its model is installed; false: never (saves the scoring pass)")

    # --- retention (retention.py) -----------------------------------------------------------
    job_retention_days: float | None = Field(DEFAULT_RETENTION_DAYS, description="days after which a finished job "
                                             "expires (its files are removed); 0, a negative number, 'off' or 'never': keep forever")
    job_retention_sweep_s: float = Field(DEFAULT_RETENTION_SWEEP_S, gt=0, allow_inf_nan=False,
                                         description="how often finished jobs are checked for expiry")

    # --- request limits (uploads.py, routes.py, pipelines.py) -------------------------------
    max_upload_bytes: int = Field(512 * MIB, ge=1, description="bytes of one uploaded file")
    max_request_bytes: int = Field(1024 * MIB, ge=1, description="bytes one request may write to staging in all")
    max_form_parts: int = Field(128, ge=1, description="parts of one multipart request (the pipelines together have about 70 "
                                "parameters; a client may send the union)")
    max_text_bytes: int = Field(256 * 1024, ge=1, description="bytes of all text fields of one request together")
    max_json_bytes: int = Field(1 * MIB, ge=1, description="bytes of a JSON request body")
    max_json_depth: int = Field(32, ge=2, description="nesting depth of a JSON request body")
    max_image_pixels: int = Field(40_000_000, ge=256, description="width x height of an uploaded image")
    max_image_side: int = Field(8192, ge=16, description="longest side of an uploaded image, pixels")
    max_script_chars: int = Field(10_000, ge=1, description="characters of a script or prompt")
    max_audio_s: float = Field(300.0, gt=0, description="seconds of uploaded speech for CPU pipelines (lite, f5)")
    max_audio_s_gpu: float = Field(1800.0, gt=0, description="seconds of uploaded speech for GPU pipelines")

    # --- webhooks (webhooks.py) -------------------------------------------------------------
    webhook_allow: CsvList = Field((), description="hosts or CIDR ranges webhooks may reach although they are "
                                                   "loopback, private, link-local or reserved (e.g. '10.0.0.0/8,hooks.lan')")
    webhook_connect_timeout_s: float = Field(3.0, gt=0)
    webhook_timeout_s: float = Field(10.0, gt=0)
    webhook_concurrency: int = Field(16, ge=1, description="deliveries in flight at once")
    webhook_per_host: int = Field(2, ge=1, description="deliveries in flight to one host at once")

    @classmethod
    def settings_customise_sources(cls, settings_cls, init_settings, env_settings, dotenv_settings,
                                   file_secret_settings):
        # The environment is read in one place, ``from_env``; ``Settings(...)`` is the defaults plus its arguments.
        return (init_settings,)

    @field_validator("job_retention_days", mode="before")
    @classmethod
    def _forever(cls, value: object) -> object:
        if value is None or (isinstance(value, str) and value.strip().lower() in _FOREVER):
            return None
        return value

    @field_validator("job_retention_days")
    @classmethod
    def _positive_days(cls, value: float | None) -> float | None:
        if value is not None and (value != value or value == float("inf")):
            raise ValueError("a finite number of days, or 'off'")
        return value if value is not None and value > 0 else None

    @field_validator("database_url", mode="before")
    @classmethod
    def _postgres_url(cls, value: object) -> object:
        if isinstance(value, str):
            value = value.strip() or None
        if isinstance(value, str) and not value.startswith(("postgresql://", "postgres://")):
            raise ValueError("a postgresql:// URL")
        return value

    @field_validator("webhook_allow", mode="before")
    @classmethod
    def _split_csv(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(p.strip() for p in value.split(",") if p.strip())
        return value

    def audio_limit_s(self, gpu: bool) -> float:
        """Seconds of speech a pipeline accepts: ``max_audio_s_gpu`` for GPU pipelines, else ``max_audio_s``."""
        return self.max_audio_s_gpu if gpu else self.max_audio_s

    @classmethod
    def from_env(cls, env: "Mapping[str, str] | None" = None) -> "Settings":
        """Read the environment (``os.environ`` unless ``env`` is given). A variable that does not
        parse is logged and ignored (its default applies), so a typo never stops ComfyUI."""
        source = os.environ if env is None else env
        values: dict = {k[len(PREFIX):].lower(): v for k, v in source.items()
                        if k.upper().startswith(PREFIX) and k[len(PREFIX):].lower() in cls.model_fields}
        values["s3_env"] = {k.upper(): v for k, v in source.items() if k.upper().startswith(S3_PREFIX)}
        try:
            return cls.model_validate(values)
        except ValidationError as err:
            bad = {str(e["loc"][0]) for e in err.errors() if e.get("loc")}
            for name in sorted(bad):
                shown = values.get(name) if cls.model_fields[name].repr else "<hidden>"  # a token, a password
                log.warning("myspinbot: ignoring %s%s=%r (%s); using the default", PREFIX, name.upper(),
                            shown, next(e["msg"] for e in err.errors() if e.get("loc") and e["loc"][0] == name))
            return cls.model_validate({k: v for k, v in values.items() if k not in bad})

    def object_storage(self, user_dir: "str | os.PathLike") -> "S3Settings":
        """The object storage settings (``storage.S3Settings``): ``s3_env``, then ComfyUI's settings
        file in ``user_dir`` (``MySpinBot.S3.*``). Raises ``InvalidInputError`` on a value that does not parse."""
        from ..storage import comfy_settings_path, load_settings

        return load_settings(env=dict(self.s3_env), settings_file=comfy_settings_path(user_dir))

    @classmethod
    def defaults(cls) -> "Settings":
        """The built-in defaults (the environment is ignored)."""
        return cls()


def limit_details(setting: str, limit: float | int, actual: float | int | None = None, **extra: object) -> dict:
    """``details`` of a refusal by a limit: the setting's environment variable, the limit, what was seen."""
    details: dict = {"limit": f"MYSPINBOT_{setting.upper()}", "max": limit}
    if actual is not None:
        details["actual"] = actual
    details.update(extra)
    return details
