"""``ProfileService``: creating, reading, editing and deleting character profiles.

Creating one stores its photos and cleaned voice clip under ``<input>/myspinbot/profiles/<id>/``
(``files.py``), records it (``repos.profiles``) and submits an ordinary ``train_profile`` job
through the job service (progress, cancel, webhooks as for any job); the profile is ``training``
until ``training.TrainingObserver`` sees that job end. All methods run on the event loop's
thread; decoding and file work run in the default executor.
"""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path
from typing import Any, Callable

from ...errors import InvalidInputError
from ..api_errors import ApiError
from ..input_limits import audio_limit, check_audio_length
from ..jobs.assets import off_loop
from ..model import CANCELING, QUEUED, RUNNING, Job
from ..pipelines.coercion import coerce_value
from ..pipelines.common import ProfileInputs
from ..pipelines.train_profile import MIN_CLIP_SECONDS, TRAINING_OPTIONS
from ..repos.profiles import READY, TRAINING, Profile
from ..uploads import accept_image
from ..webhook_request import with_webhook
from . import files, storage
from .voice_clips import clip_transcripts_for, store_voice_clips

MAX_PHOTOS = 40
"""The most photos one profile may have."""
MAX_NAME = 100
DEFAULT_TRIGGER = "zxq person"
ACTIVE = (QUEUED, RUNNING, CANCELING)

Upload = tuple[Path, str]
"""(a staged or stored file, the client's file name)."""


class ProfileService:
    """Profiles over the job service ``jobs`` (its store, host, settings and ``submit``);
    ``webhooks``: the webhook service, for a training job's subscription (None: none)."""

    def __init__(self, jobs: Any, webhooks: Any = None):
        self.jobs = jobs
        self.store = jobs.store
        self.input_dir = Path(jobs.host.input_dir)
        self.webhooks = webhooks
        self.clock: Callable[[], float] = jobs.clock
        self.user_dir = Path(jobs.host.user_dir)
        self.uploads: set[asyncio.Task] = set()  # files on their way to object storage

    # --- object storage ------------------------------------------------------------------
    def store_files_later(self, profile_id: str) -> None:
        """Upload the profile's LoRA and voice to object storage in the background (on the event loop's thread)."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # settled before the server runs (recovery at start): stays local
            return
        task = loop.create_task(self.store_files(profile_id))
        self.uploads.add(task)
        task.add_done_callback(self.uploads.discard)

    async def store_files(self, profile_id: str) -> None:
        """Upload (off the loop) and record where the files went; a profile deleted meanwhile is left alone."""
        profile = self.store.profiles.get(profile_id)
        if profile is None:
            return
        stored = await off_loop(storage.upload_profile, self.user_dir, self.input_dir, profile)
        profile = self.store.profiles.get(profile_id)
        if stored and profile is not None:
            profile.storage = stored
            self.store.profiles.save(profile)

    async def links(self, profile: Profile) -> dict[str, Any] | None:
        """Presigned links to the profile's stored files (``storage.presigned_links``), off the loop."""
        if not profile.storage:
            return None
        return await off_loop(storage.presigned_links, self.user_dir, profile.storage)

    # --- reading -------------------------------------------------------------------------
    def all(self) -> list[Profile]:
        return self.store.profiles.all()

    def require(self, profile_id: str) -> Profile:
        """The profile; 404 ``profile_not_found``."""
        profile = self.store.profiles.get(profile_id) if isinstance(profile_id, str) else None
        if profile is None:
            raise ApiError(404, "profile_not_found", f"no profile with id '{profile_id}'")
        return profile

    def jobs_using(self, profile: Profile) -> list[Job]:
        """The queued, running or canceling jobs that use ``profile`` (its training included)."""
        return [job for job in self.store.with_status(*ACTIVE)
                if job.id == profile.training_job_id or job.params.get("profile") == profile.id]

    def inputs_for(self, profile_id: Any) -> ProfileInputs:
        """What a generation job takes from a ready profile (``pipelines.common.apply_profile``).
        Raises 422 ``profile_not_found``, 409 ``profile_not_ready``."""
        profile = self.store.profiles.get(profile_id) if isinstance(profile_id, str) else None
        if profile is None:
            raise ApiError(422, "profile_not_found", f"no profile with id '{profile_id}'", {"field": "profile"})
        if profile.status != READY:
            raise ApiError(409, "profile_not_ready", f"profile '{profile.name}' is {profile.status}, not ready",
                           {"field": "profile", "status": profile.status})
        return ProfileInputs(profile.id, profile.voice_path, profile.voice_transcript, profile.reference_photo,
                             profile.lora_name, profile.trigger_word, profile.voice_model)

    # --- creating ------------------------------------------------------------------------
    async def create(self, name: Any, photos: list[Upload], voice: Upload | None, transcript: Any,
                     options: dict[str, Any], *, trigger_word: Any = None, stored: bool = False,
                     webhook: Any = None, voice_clips: list[Upload] = (), clip_transcripts: Any = None) -> Profile:
        """Store the photos (accepted as images; ``stored``: they are assets, copied not moved),
        the cleaned voice and the voice clips for fine-tuning (``voice_clips`` with
        ``clip_transcripts``, a list of strings in the same order), record the profile and submit
        its training job. Raises ``ApiError`` 422 (``missing_*``, ``invalid_parameter``,
        ``unknown_parameter``, ``too_many_photos``, ``too_many_voice_clips``, ``invalid_voice_sample``,
        ``invalid_voice_clip``, ``voice_clips_too_short``: fine_tune_voice with under 30 s of
        clips), 400 ``invalid_image``, and whatever ``JobService.submit`` raises (409
        ``models_missing``, 429 ``queue_full``); on error nothing is kept."""
        name = _check_name(name)
        trigger = str(trigger_word).strip() if trigger_word not in (None, "") else DEFAULT_TRIGGER
        if "\n" in trigger or len(trigger) > 100:
            raise ApiError(422, "invalid_parameter", "'trigger_word' must be one line", {"field": "trigger_word"})
        if not photos:
            raise ApiError(422, "missing_images", "send the character's photos (image_1, image_2, ...)",
                           {"field": "images"})
        if len(photos) > MAX_PHOTOS:
            raise ApiError(422, "too_many_photos", f"at most {MAX_PHOTOS} photos", {"field": "images"})
        training = _training_options(options)
        clip_texts = clip_transcripts_for(voice_clips, clip_transcripts)
        if training.get("fine_tune_voice") and not voice_clips:
            raise ApiError(422, "missing_voice_clips", "fine_tune_voice needs voice_clips with voice_clip_transcripts "
                           f"(at least {MIN_CLIP_SECONDS:.0f} s of speech)", {"field": "voice_clips"})
        if (voice is None) != (transcript is None or not str(transcript).strip()):
            field = "voice_transcript" if voice is not None else "voice_sample"
            raise ApiError(422, f"missing_{field}", "a voice sample needs its transcript and a transcript its sample",
                           {"field": field})
        profile_id, job_id = str(uuid.uuid4()), str(uuid.uuid4())
        now = self.clock()
        profile = Profile(id=profile_id, name=name, trigger_word=trigger, options=training, created_at=now,
                          updated_at=now)
        try:
            for index, (path, client_name) in enumerate(photos, start=1):
                accepted = path if stored else await off_loop(accept_image, path, self.jobs.settings, f"image_{index}")
                stored_name = await off_loop(files.store_photo, self.input_dir, profile_id, index, accepted, stored)
                profile.photos.append({"file": stored_name, "name": client_name or stored_name})
            if voice is not None:
                profile.voice_path = await self._clean_voice(profile_id, voice[0])
                profile.voice_transcript = str(transcript).strip()
            if voice_clips:
                await store_voice_clips(self.input_dir, profile.id, list(zip((c[0] for c in voice_clips), clip_texts)),
                                        stored, bool(training.get("fine_tune_voice")))
            await self._train(profile, job_id, webhook)
        except BaseException:
            self.store.profiles.delete(profile_id)
            files.remove(self.input_dir, profile_id, None)
            raise
        return profile

    async def retrain(self, profile_id: str, options: dict[str, Any], *, webhook: Any = None) -> Profile:
        """Train the profile again (after a failure, or with other ``options``, merged over the
        previous ones) in a new ``train_profile`` job; its previous LoRA is removed first. 409
        ``profile_in_use`` while a queued or running job uses it."""
        profile = self.require(profile_id)
        self._refuse_in_use(profile, "it cannot be trained again")
        before = Profile(**{**profile.__dict__})
        profile.options = {**profile.options, **_training_options(options)}
        if profile.options.get("fine_tune_voice") and not files.has_clips(self.input_dir, profile.id):
            raise ApiError(422, "missing_voice_clips", "the profile has no voice clips to fine-tune on",
                           {"field": "voice_clips"})
        if profile.options.get("fine_tune_voice"):
            profile.voice_model = None  # set again when the new fine-tune succeeds
        profile.error, profile.lora_name = None, None
        await off_loop(files.remove_lora, before.lora_name or f"myspinbot/{lora_stem(profile.id)}.safetensors")
        try:
            await self._train(profile, str(uuid.uuid4()), webhook)
        except BaseException:
            self.store.profiles.save(before)
            raise
        return profile

    async def _train(self, profile: Profile, job_id: str, webhook: Any) -> None:
        """Record the profile ``training`` with ``job_id``, then submit that job."""
        profile.status, profile.training_job_id, profile.updated_at = TRAINING, job_id, self.clock()
        self.store.profiles.save(profile)  # before the job exists: its end always finds the profile
        values = {"folder": files.photos_folder(profile.id), "trigger_word": profile.trigger_word,
                  "lora_name": lora_stem(profile.id), **profile.options}
        if files.has_clips(self.input_dir, profile.id):
            values.update(voice_folder=files.clips_folder(profile.id), voice_name=lora_stem(profile.id))
        pipeline = self.jobs.pipeline("train_profile")

        async def submit() -> Job:
            return await self.jobs.submit(job_id, pipeline, values)

        await with_webhook(self.webhooks, webhook, job_id, submit)()

    async def _clean_voice(self, profile_id: str, source: Path) -> str:
        """Check the recording's length (413 ``audio_too_long``: ``max_audio_s``), then clean it in."""
        try:
            await off_loop(check_audio_length, source, *audio_limit(self.jobs.settings, None), "voice_sample")
            path, _ = await off_loop(files.store_voice, self.input_dir, profile_id, source, uuid.uuid4().hex[:8])
        except InvalidInputError as err:
            raise ApiError(422, "invalid_voice_sample", f"the voice sample cannot be used: {err.message}",
                           {"field": "voice_sample", "reason": err.code, **(err.details or {})}) from None
        return path

    # --- editing and deleting ------------------------------------------------------------
    async def update(self, profile_id: str, *, name: Any = None, voice: Upload | None = None,
                     transcript: Any = None) -> Profile:
        """Rename and/or replace the voice (a new clip needs its transcript; a transcript alone
        corrects the current clip's). 409 ``profile_in_use`` when replacing the voice of a
        profile a queued or running job uses."""
        profile = self.require(profile_id)
        if name is not None:
            profile.name = _check_name(name)
        if voice is not None or transcript is not None:
            if voice is not None and (transcript is None or not str(transcript).strip()):
                raise ApiError(422, "missing_voice_transcript", "a new voice sample needs its transcript",
                               {"field": "voice_transcript"})
            if transcript is not None and not str(transcript).strip():
                raise ApiError(422, "invalid_parameter", "'voice_transcript' is empty", {"field": "voice_transcript"})
            if voice is None and profile.voice_path is None:
                raise ApiError(422, "missing_voice_sample", "the profile has no voice sample yet",
                               {"field": "voice_sample"})
            self._refuse_in_use(profile, "its voice cannot be replaced")
            if voice is not None:
                old, profile.voice_path = profile.voice_path, await self._clean_voice(profile.id, voice[0])
                files.remove_file(self.input_dir, old)
            profile.voice_transcript = str(transcript).strip()
        profile.updated_at = self.clock()
        self.store.profiles.save(profile)
        if voice is not None and profile.status == READY:
            self.store_files_later(profile.id)
        return profile

    async def delete(self, profile_id: str) -> None:
        """Remove the profile, its files and LoRA (and their copies in object storage). 409 ``profile_in_use`` while a queued or
        running job (its training included) uses it."""
        profile = self.require(profile_id)
        self._refuse_in_use(profile, "it cannot be deleted")
        self.store.profiles.delete(profile.id)
        await off_loop(files.remove, self.input_dir, profile.id, profile.lora_name, profile.voice_model)
        await off_loop(storage.remove_objects, self.user_dir, profile.storage)

    def _refuse_in_use(self, profile: Profile, what: str) -> None:
        using = self.jobs_using(profile)
        if using:
            raise ApiError(409, "profile_in_use", f"jobs still use profile '{profile.name}': {what} until they end",
                           {"jobs": [job.id for job in using]})


def lora_stem(profile_id: str) -> str:
    """The LoRA's file stem: ``profile_<profile id>`` (under ``models/loras/myspinbot/``)."""
    return f"profile_{profile_id}"


def _check_name(name: Any) -> str:
    text = str(name).strip() if isinstance(name, str) else ""
    if not text:
        raise ApiError(422, "missing_name", "the profile needs a 'name'", {"field": "name"})
    if len(text) > MAX_NAME or "\n" in text:
        raise ApiError(422, "invalid_parameter", f"'name' must be one line of at most {MAX_NAME} characters",
                       {"field": "name"})
    return text


def _training_options(raw: dict[str, Any]) -> dict[str, Any]:
    """Typed training options (``train_profile.TRAINING_OPTIONS``); 422 for an unknown or bad one."""
    params = {p.name: p for p in TRAINING_OPTIONS}
    options = {}
    for name, value in raw.items():
        if name not in params:
            raise ApiError(422, "unknown_parameter", f"unknown training option '{name}'",
                           {"field": name, "parameters": sorted(params)})
        options[name] = coerce_value(params[name], value)
    return options
