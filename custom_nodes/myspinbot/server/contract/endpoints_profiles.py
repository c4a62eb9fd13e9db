"""The endpoints of character profiles."""

from __future__ import annotations

from .base import JSON, PREFIX
from .profiles import (Profile, ProfilesListResponse, ProfileSubmission, ProfileSubmissionForm, ProfileTraining,
                       ProfileUpdate, ProfileUpdateForm)
from .spec import Endpoint, RequestBody, Response, Shared, error, path_param

PROFILE_ID = path_param("profile_id", {"type": "string", "format": "uuid"})
NOT_FOUND = error("", "profile_not_found")
IN_USE = error("a queued or running job (its training included) uses the profile; details.jobs names them.",
               "profile_in_use")
LOCATION = {"Location": {"$ref": "#/components/headers/Location"}}

CREATE_PROFILE = Endpoint(
    "POST", f"{PREFIX}/profiles", "createProfile", tag="profile",
    summary="Create a character profile from photos (+ a voice sample and its transcript) and start training its "
            "LoRA: an ordinary train_profile job (urls.training_job) with progress, cancel and webhooks; the profile "
            "becomes ready when it succeeds, failed (with a per-photo report) when it does not.",
    request=RequestBody({JSON: ProfileSubmission, "multipart/form-data": ProfileSubmissionForm}),
    responses={
        202: Response("Created; training is queued.", Profile, headers=LOCATION),
        400: Shared("BadRequest"),
        413: Shared("PayloadTooLarge"),
        415: Shared("UnsupportedMediaType"),
        422: error("details.field names the field.", "missing_*", "unknown_parameter", "unknown_field",
                   "invalid_parameter", "too_many_photos", "invalid_voice_sample", "asset_not_found",
                   "asset_kind_mismatch", "invalid_asset_id", "duplicate_field", "invalid_webhook",
                   "webhooks_disabled", "webhook_address_refused"),
        409: error("the base checkpoint is missing (details name the model).", "models_missing"),
        429: Shared("QueueFull"),
    })

LIST_PROFILES = Endpoint(
    "GET", f"{PREFIX}/profiles", "listProfiles", tag="profile", summary="Character profiles, newest first.",
    responses={200: Response("The profiles.", ProfilesListResponse)})

GET_PROFILE = Endpoint(
    "GET", f"{PREFIX}/profiles/{{profile_id}}", "getProfile", tag="profile",
    summary="A profile: status, trigger word, LoRA, voice transcript, training job, error report.",
    parameters=(PROFILE_ID,), responses={200: Response("The profile.", Profile), 404: NOT_FOUND})

UPDATE_PROFILE = Endpoint(
    "PATCH", f"{PREFIX}/profiles/{{profile_id}}", "updateProfile", tag="profile",
    summary="Rename a profile and/or replace its voice (a new sample with its transcript, or a corrected "
            "transcript); JSON with an asset id, or multipart with the file.",
    parameters=(PROFILE_ID,),
    request=RequestBody({JSON: ProfileUpdate, "multipart/form-data": ProfileUpdateForm}),
    responses={200: Response("The profile.", Profile), 400: Shared("BadRequest"), 404: NOT_FOUND, 409: IN_USE,
               413: Shared("PayloadTooLarge"), 415: Shared("UnsupportedMediaType"),
               422: error("details.field names the field.", "missing_*", "unknown_field", "invalid_parameter",
                          "invalid_voice_sample", "asset_not_found", "asset_kind_mismatch", "invalid_asset_id",
                          "unknown_parameter", "duplicate_field")})

DELETE_PROFILE = Endpoint(
    "DELETE", f"{PREFIX}/profiles/{{profile_id}}", "deleteProfile", tag="profile",
    summary="Delete a profile with its photos, voice clip, reference photo and LoRA; refused while a job uses it.",
    parameters=(PROFILE_ID,), responses={204: Response("Deleted."), 404: NOT_FOUND, 409: IN_USE})

TRAIN_PROFILE = Endpoint(
    "POST", f"{PREFIX}/profiles/{{profile_id}}/train", "trainProfile", tag="profile",
    summary="Train a profile again (after a failed or canceled training, or with other options): a new "
            "train_profile job; the previous LoRA is removed.",
    parameters=(PROFILE_ID,),
    request=RequestBody({JSON: ProfileTraining}, required=False),
    responses={202: Response("Training is queued.", Profile, headers=LOCATION), 400: Shared("BadRequest"),
               404: NOT_FOUND,
               409: error("a queued or running job uses the profile, or the base checkpoint is missing.",
                          "profile_in_use", "models_missing"),
               413: Shared("PayloadTooLarge"), 415: Shared("UnsupportedMediaType"),
               422: error("details.field names the field.", "unknown_field", "unknown_parameter",
                          "invalid_parameter", "invalid_webhook", "webhooks_disabled", "webhook_address_refused"),
               429: Shared("QueueFull")})

ENDPOINTS = (CREATE_PROFILE, LIST_PROFILES, GET_PROFILE, UPDATE_PROFILE, DELETE_PROFILE, TRAIN_PROFILE)
