"""Character profiles: the profile, the list, the JSON and multipart submissions, the edit."""

from __future__ import annotations

from typing import Annotated, Any, Literal, Optional

from pydantic import Field

from ..repos.profiles import PROFILE_STATUSES
from .base import ContractModel, Details, Timestamp
from .jobs import Sha256
from .webhooks import WebhookRequest

ProfileStatus = Annotated[Literal[PROFILE_STATUSES], Field(
    description="draft → training (its train_profile job runs) → ready | failed (training failed or was canceled).")]


class ProfilePhoto(ContractModel):
    name: str = Field(description="The uploaded file's name (or the asset id).")


class ProfileVoice(ContractModel):
    transcript: str = Field(description="What the cleaned clip says.")


class ProfileError(ContractModel):
    """Why training failed. ``details.job_id``: the training job; ``details.photos``, when the trainer dropped
    photos: ``[{"photo": uploaded name, "file": stored name, "reason": "no_face" | "duplicate", "message"}]``."""

    code: str = Field(examples=["invalid_input", "training_canceled"])
    message: str
    details: Details


class StoredFile(ContractModel):
    uri: str = Field(description="s3://bucket/key")
    presigned_url: Optional[str] = Field(description="Presigned GET URL (an hour); null when it cannot be made.")


class ProfileStorage(ContractModel):
    """Where object storage holds the profile's files (MYSPINBOT_S3_*): loras/<id>/..., voices/<id>/..."""

    lora: Optional[StoredFile] = None
    voice: Optional[StoredFile] = None
    voice_model: Optional[StoredFile] = Field(None, description="The fine-tuned F5-TTS voice's checkpoint, when the "
                                              "profile has one.")


class ProfileUrls(ContractModel):
    self: str
    training_job: Optional[str] = Field(description="The train_profile job (progress, cancel, events).")


class Profile(ContractModel):
    id: str = Field(json_schema_extra={"format": "uuid"})
    name: str
    status: ProfileStatus
    trigger_word: str = Field(description="The word that calls up the character in text-to-image prompts.")
    lora_name: Optional[str] = Field(description="The trained LoRA as core's Load LoRA lists it; null until ready.")
    voice: Optional[ProfileVoice] = Field(description="The cleaned voice clip's transcript; null without a voice.")
    voice_model: Optional[str] = Field(None, description="The profile's fine-tuned F5-TTS voice (myspinbot/profile_<id>), "
                                       "which the profile's voice-cloning jobs use; null when not fine-tuned (zero-shot cloning).")
    has_reference_photo: bool = Field(description="Whether the reference photo (the dataset's largest face crop, "
                                                  "the portrait of f5 / infinitetalk jobs) is there.")
    photos: list[ProfilePhoto]
    options: dict[str, Any] = Field(description="The training options.")
    training_job_id: Optional[str]
    error: Optional[ProfileError]
    created_at: Timestamp
    updated_at: Timestamp
    urls: ProfileUrls
    storage: Optional[ProfileStorage] = Field(
        None, description="GET /profiles/{id} only: the stored LoRA and voice with presigned links; null when "
                          "nothing is stored (storage off, or not ready yet).")


class ProfilesListResponse(ContractModel):
    profiles: list[Profile] = Field(description="Newest first.")


class TrainingOptions(ContractModel):
    steps: Optional[Annotated[int, Field(ge=1, le=100000)]] = None
    rank: Optional[Annotated[int, Field(ge=1, le=128)]] = None
    learning_rate: Optional[Annotated[float, Field(ge=0.0000001, le=1.0)]] = None
    resolution: Optional[Annotated[int, Field(ge=64, le=2048, multiple_of=8)]] = None
    checkpoint: Optional[str] = None
    training_dtype: Optional[Literal["bf16", "fp32"]] = None
    flip: Optional[bool] = None
    seed: Optional[Annotated[int, Field(ge=0)]] = None
    fine_tune_voice: Optional[bool] = Field(None, description="Also fine-tune F5-TTS on voice_clips (at least 30 s; "
                                            "default false). Needs a GPU in practice.")
    voice_steps: Optional[Annotated[int, Field(ge=1, le=1000000)]] = None
    voice_learning_rate: Optional[Annotated[float, Field(ge=0.0000001, le=0.01)]] = None


class ProfileSubmission(ContractModel):
    """JSON body of POST /profiles: files as assets uploaded with POST /assets."""

    name: str
    images: list[Sha256] = Field(description="Asset ids of the character's photos (1-40).")
    voice_sample: Optional[Sha256] = Field(default=None, description="Asset id of a voice recording (3-12 s of speech "
                                                                     "are kept).")
    voice_transcript: Optional[str] = None
    voice_clips: Optional[list[Sha256]] = Field(default=None, description="Asset ids of speech clips of the voice "
                                                "(0.3-30 s each, minutes in all) for fine-tuning F5-TTS "
                                                "(options.fine_tune_voice).")
    voice_clip_transcripts: Optional[list[str]] = Field(default=None, description="What each voice clip says, in "
                                                        "the same order.")
    trigger_word: Optional[str] = Field(default=None, description="Default 'zxq person'.")
    options: Optional[TrainingOptions] = None
    webhook: Optional[WebhookRequest] = None


class ProfileSubmissionForm(ContractModel):
    """Multipart form of POST /profiles: photos in file parts image_1, image_2, ... (up to image_40; the
    schema lists the first three); training options as text parts named as in TrainingOptions."""

    name: str
    image_1: bytes = Field(json_schema_extra={"contentMediaType": "image/*"})
    image_2: Optional[bytes] = Field(default=None, json_schema_extra={"contentMediaType": "image/*"})
    image_3: Optional[bytes] = Field(default=None, json_schema_extra={"contentMediaType": "image/*"})
    voice_sample: Optional[bytes] = Field(default=None, json_schema_extra={"contentMediaType": "audio/*"})
    voice_transcript: Optional[str] = None
    voice_clip_1: Optional[bytes] = Field(default=None, json_schema_extra={"contentMediaType": "audio/*"},
                                          description="Voice clips for fine-tuning: voice_clip_1, voice_clip_2, ... "
                                          "(the schema lists the first two).")
    voice_clip_2: Optional[bytes] = Field(default=None, json_schema_extra={"contentMediaType": "audio/*"})
    voice_clip_transcripts: Optional[str] = Field(default=None, description="A JSON list of what each voice clip "
                                                  "says, in order.")
    trigger_word: Optional[str] = None
    steps: Optional[str] = Field(default=None, description="Training options as text (see TrainingOptions).")
    rank: Optional[str] = None
    learning_rate: Optional[str] = None
    resolution: Optional[str] = None
    checkpoint: Optional[str] = None
    training_dtype: Optional[str] = None
    flip: Optional[str] = None
    seed: Optional[str] = None
    fine_tune_voice: Optional[str] = None
    voice_steps: Optional[str] = None
    voice_learning_rate: Optional[str] = None
    webhook: Optional[str] = Field(default=None, description="A WebhookRequest as JSON text.")


class ProfileTraining(ContractModel):
    """JSON body of POST /profiles/{id}/train (optional): options merged over the previous ones."""

    options: Optional[TrainingOptions] = None
    webhook: Optional[WebhookRequest] = None


class ProfileUpdate(ContractModel):
    """JSON body of PATCH /profiles/{id} (or the same fields as a multipart form with the voice as a file)."""

    name: Optional[str] = None
    voice_sample: Optional[Sha256] = Field(default=None, description="Asset id of a new voice recording.")
    voice_transcript: Optional[str] = None


class ProfileUpdateForm(ContractModel):
    """Multipart form of PATCH /profiles/{id}: the new voice as a file part."""

    name: Optional[str] = None
    voice_sample: Optional[bytes] = Field(default=None, json_schema_extra={"contentMediaType": "audio/*"})
    voice_transcript: Optional[str] = None
