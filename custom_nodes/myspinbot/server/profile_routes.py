"""aiohttp handlers of the character profiles (``/myspinbot/profiles``), registered against
``contract/endpoints_profiles.py``. Uploads reuse the job API's multipart reader and limits
(``uploads.read_multipart``); a JSON body names assets uploaded with ``POST /assets``."""

from __future__ import annotations

import re
import shutil
import uuid
from pathlib import Path
from typing import Any

from aiohttp import web

from .api_errors import ApiError
from .contract import endpoints_profiles as api
from .contract.base import dump
from .contract.profiles import Profile as ProfileView, ProfilesListResponse
from .jobs.layout import JOB_ID
from .json_body import check_json_depth, read_json
from .model import iso
from .profiles import MAX_PHOTOS, ProfileService
from .profiles.voice_clips import MAX_VOICE_CLIPS
from .registry import RouteRegistry
from .repos.profiles import Profile
from .route_helpers import api_base, json_errors
from .uploads import FormLimits, read_multipart
from .webhook_request import webhook_from_request

_IMAGE_FIELD = re.compile(r"^image_([1-9][0-9]?)$")
CREATE_FIELDS = frozenset({"name", "images", "voice_sample", "voice_transcript", "voice_clips", "voice_clip_transcripts",
                           "trigger_word", "options", "webhook"})
UPDATE_FIELDS = frozenset({"name", "voice_sample", "voice_transcript"})
_PHOTO_FIELDS = frozenset(f"image_{i}" for i in range(1, MAX_PHOTOS + 1))
_CLIP_FIELD = re.compile(r"^voice_clip_([1-9][0-9]{0,2})$")
_CLIP_FIELDS = frozenset(f"voice_clip_{i}" for i in range(1, MAX_VOICE_CLIPS + 1))


def profile_json(profile: Profile, base: str, **extra: Any) -> dict[str, Any]:
    """The public profile (``contract.profiles.Profile``); ``extra``: ``storage`` (the single-profile view)."""
    view = ProfileView(
        id=profile.id, name=profile.name, status=profile.status, trigger_word=profile.trigger_word,
        lora_name=profile.lora_name, voice_model=profile.voice_model,
        voice={"transcript": profile.voice_transcript} if profile.voice_path else None,
        has_reference_photo=profile.reference_photo is not None,
        photos=[{"name": p.get("name", p["file"])} for p in profile.photos], options=profile.options,
        training_job_id=profile.training_job_id, error=profile.error,
        created_at=iso(profile.created_at), updated_at=iso(profile.updated_at),
        urls={"self": f"{base}/profiles/{profile.id}",
              "training_job": f"{base}/jobs/{profile.training_job_id}" if profile.training_job_id else None},
        **extra)
    return dump(view)


def add_profile_routes(registry: RouteRegistry, profiles: ProfileService, webhooks: Any = None) -> None:
    """Register the profile routes through ``registry``."""
    service = profiles.jobs
    settings = service.settings

    def limits() -> FormLimits:
        return FormLimits.from_settings(settings, service.max_upload_bytes)

    @registry.route(api.CREATE_PROFILE)
    @json_errors
    async def create_profile(request: web.Request) -> web.Response:
        kind = _body_kind(request)
        service.check_capacity()  # before reading (and staging) anything
        staging = service.staging_dir(str(uuid.uuid4()))
        try:
            if kind == "json":
                body = await read_json(request, settings)
                fields = _object(body, CREATE_FIELDS)
                photos = [_asset(service, value, "image", "images") for value in _list(fields.get("images"), "images")]
                voice = _asset(service, fields["voice_sample"], "audio", "voice_sample") \
                    if fields.get("voice_sample") is not None else None
                clips = [_asset(service, value, "audio", "voice_clips")
                         for value in _list(fields.get("voice_clips"), "voice_clips")]
                options = fields.get("options") or {}
                if not isinstance(options, dict):
                    raise ApiError(422, "invalid_parameter", "'options' must be an object", {"field": "options"})
                webhook = webhook_from_request(webhooks, fields.get("webhook"))
                stored = True
            else:
                form = await read_multipart(request, staging, limits(),
                                            lambda f: _PHOTO_FIELDS | _CLIP_FIELDS | {"voice_sample"})
                fields = dict(form.fields)
                if "webhook" in fields:
                    check_json_depth(fields["webhook"], settings.max_json_depth, "webhook")
                webhook = webhook_from_request(webhooks, fields.pop("webhook", None), form=True)
                numbered = sorted((int(m[1]), name) for name in form.files if (m := _IMAGE_FIELD.match(name)))
                photos = [form.files[name] for _, name in numbered]
                voice = form.files.get("voice_sample")
                numbered_clips = sorted((int(m[1]), name) for name in form.files if (m := _CLIP_FIELD.match(name)))
                clips = [form.files[name] for _, name in numbered_clips]
                options = {k: v for k, v in fields.items() if k not in CREATE_FIELDS}
                stored = False
            profile = await profiles.create(fields.get("name"), photos, voice, fields.get("voice_transcript"), options,
                                            trigger_word=fields.get("trigger_word"), stored=stored, webhook=webhook,
                                            voice_clips=clips, clip_transcripts=fields.get("voice_clip_transcripts"))
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        body = profile_json(profile, api_base(request))
        return web.json_response(body, status=202, headers={"Location": body["urls"]["self"]})

    @registry.route(api.LIST_PROFILES)
    @json_errors
    async def list_profiles(request: web.Request) -> web.Response:
        base = api_base(request)
        return web.json_response(dump(ProfilesListResponse(profiles=[profile_json(p, base) for p in profiles.all()])))

    @registry.route(api.GET_PROFILE)
    @json_errors
    async def get_profile(request: web.Request) -> web.Response:
        profile = profiles.require(_profile_id(request))
        return web.json_response(profile_json(profile, api_base(request), storage=await profiles.links(profile)))

    @registry.route(api.UPDATE_PROFILE)
    @json_errors
    async def update_profile(request: web.Request) -> web.Response:
        profile_id = profiles.require(_profile_id(request)).id
        kind = _body_kind(request)
        staging = service.staging_dir(str(uuid.uuid4()))
        try:
            if kind == "json":
                fields = _object(await read_json(request, settings), UPDATE_FIELDS)
                voice = _asset(service, fields["voice_sample"], "audio", "voice_sample") \
                    if fields.get("voice_sample") is not None else None
            else:
                form = await read_multipart(request, staging, limits(), lambda f: {"voice_sample"})
                fields = _object(form.fields, UPDATE_FIELDS - {"voice_sample"})
                voice = form.files.get("voice_sample")
            for name in ("name", "voice_transcript"):
                if fields.get(name) is not None and not isinstance(fields[name], str):
                    raise ApiError(422, "invalid_parameter", f"'{name}' must be a string", {"field": name})
            profile = await profiles.update(profile_id, name=fields.get("name"), voice=voice,
                                            transcript=fields.get("voice_transcript"))
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        return web.json_response(profile_json(profile, api_base(request)))

    @registry.route(api.TRAIN_PROFILE)
    @json_errors
    async def train_profile(request: web.Request) -> web.Response:
        profile_id = profiles.require(_profile_id(request)).id
        fields: dict[str, Any] = {}
        if request.can_read_body:
            if _body_kind(request) != "json":
                raise ApiError(415, "unsupported_media_type", "send application/json (or no body)",
                               {"content_type": request.content_type})
            fields = _object(await read_json(request, settings), frozenset({"options", "webhook"}))
        options = fields.get("options") or {}
        if not isinstance(options, dict):
            raise ApiError(422, "invalid_parameter", "'options' must be an object", {"field": "options"})
        webhook = webhook_from_request(webhooks, fields.get("webhook"))
        service.check_capacity()
        profile = await profiles.retrain(profile_id, options, webhook=webhook)
        body = profile_json(profile, api_base(request))
        return web.json_response(body, status=202, headers={"Location": body["urls"]["self"]})

    @registry.route(api.DELETE_PROFILE)
    @json_errors
    async def delete_profile(request: web.Request) -> web.Response:
        await profiles.delete(_profile_id(request))
        return web.Response(status=204)


def _profile_id(request: web.Request) -> str:
    profile_id = request.match_info["profile_id"]
    if not JOB_ID.match(profile_id):  # profile ids are UUIDs, like job ids
        raise ApiError(404, "profile_not_found", f"no profile with id '{profile_id}'")
    return profile_id


def _body_kind(request: web.Request) -> str:
    if request.content_type == "application/json" or request.content_type.endswith("+json"):
        return "json"
    if request.content_type.startswith("multipart/"):
        return "multipart"
    raise ApiError(415, "unsupported_media_type", "send application/json or multipart/form-data",
                   {"content_type": request.content_type})


def _object(body: Any, allowed: frozenset[str]) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise ApiError(400, "malformed_body", "the body must be a JSON object")
    unknown = sorted(set(body) - allowed)
    if unknown:
        raise ApiError(422, "unknown_field", f"unknown field '{unknown[0]}'", {"field": unknown[0], "fields": sorted(allowed)})
    return body


def _list(value: Any, field: str) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise ApiError(422, "invalid_parameter", f"'{field}' must be a list of asset ids", {"field": field})
    return value


def _asset(service: Any, value: Any, kind: str, field: str) -> tuple[Path, str]:
    """An asset id → (its file, the id); 422 ``invalid_asset_id`` / ``asset_not_found`` / ``asset_kind_mismatch``."""
    if not isinstance(value, str):
        raise ApiError(422, "invalid_asset_id", f"'{field}' must hold asset ids (sha256 hex)", {"field": field})
    asset = service.asset(value)
    if asset is None:
        raise ApiError(422, "asset_not_found", f"no asset '{value}'", {"field": field})
    if asset.kind != kind:
        raise ApiError(422, "asset_kind_mismatch", f"asset '{value}' is {asset.kind}, not {kind}", {"field": field})
    return Path(service.host.input_dir) / asset.path, value
