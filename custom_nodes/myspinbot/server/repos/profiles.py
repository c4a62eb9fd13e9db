"""The ``profiles`` table (migration 3): one character profile per row — its photos, trained
LoRA, cleaned voice clip with transcript, reference photo and the job that trains it.

Plain SQL only (no SQLite-only syntax), so another database backend can run the same statements.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from ..db import Database

DRAFT, TRAINING, READY, FAILED = "draft", "training", "ready", "failed"
PROFILE_STATUSES = (DRAFT, TRAINING, READY, FAILED)
"""draft → training → ready | failed (a failed profile can be trained again: → training)."""


@dataclass
class Profile:
    """A character profile. Paths are relative to ComfyUI's input folder; times are Unix seconds.

    ``photos``: ``[{"file": stored name, "name": the client's file name}]``; ``options``: the
    training options the job got; ``lora_name``: as core's LoraLoader lists it
    (``myspinbot/<name>.safetensors``), set once trained; ``error``: ``{"code", "message",
    "details"}`` of a failed training (``details.photos``: the trainer's per-photo report);
    ``voice_model``: the fine-tuned F5-TTS voice as the voice clone node lists it
    (``myspinbot/profile_<id>``), set when a training with ``fine_tune_voice`` succeeded."""

    id: str
    name: str
    status: str = DRAFT
    trigger_word: str = ""
    lora_name: str | None = None
    voice_path: str | None = None
    voice_transcript: str | None = None
    reference_photo: str | None = None
    photos: list[dict[str, str]] = field(default_factory=list)
    options: dict[str, Any] = field(default_factory=dict)
    training_job_id: str | None = None
    error: dict[str, Any] | None = None
    storage: dict[str, Any] | None = None
    created_at: float = 0.0
    updated_at: float = 0.0
    voice_model: str | None = None


COLUMNS = ("id", "name", "status", "trigger_word", "lora_name", "voice_path", "voice_transcript", "reference_photo",
           "photos", "options", "training_job_id", "error", "storage", "created_at", "updated_at", "voice_model")
_SELECT = f"SELECT {', '.join(COLUMNS)} FROM profiles"
_INSERT = f"INSERT INTO profiles ({', '.join(COLUMNS)}) VALUES ({', '.join('?' * len(COLUMNS))})"
_UPDATE = f"UPDATE profiles SET {', '.join(f'{c} = ?' for c in COLUMNS[1:])} WHERE id = ?"


class ProfilesRepo:
    """Reads and writes :class:`Profile` rows."""

    def __init__(self, db: Database):
        self.db = db

    def save(self, profile: Profile) -> None:
        """Insert the profile or replace every column of its row."""
        row = _to_row(profile)
        with self.db.transaction() as conn:
            if conn.execute("SELECT 1 FROM profiles WHERE id = ?", (profile.id,)).fetchone():
                conn.execute(_UPDATE, (*row[1:], profile.id))
            else:
                conn.execute(_INSERT, row)

    def get(self, profile_id: str) -> Profile | None:
        with self.db.read() as conn:
            row = conn.execute(f"{_SELECT} WHERE id = ?", (profile_id,)).fetchone()
        return _to_profile(row) if row else None

    def by_training_job(self, job_id: str) -> Profile | None:
        """The profile that ``job_id`` trains, if any."""
        with self.db.read() as conn:
            row = conn.execute(f"{_SELECT} WHERE training_job_id = ?", (job_id,)).fetchone()
        return _to_profile(row) if row else None

    def all(self, limit: int = 500) -> list[Profile]:
        """Profiles, newest first, at most ``limit``."""
        with self.db.read() as conn:
            rows = conn.execute(f"{_SELECT} ORDER BY created_at DESC, id DESC LIMIT ?", (limit,)).fetchall()
        return [_to_profile(r) for r in rows]

    def delete(self, profile_id: str) -> None:
        with self.db.transaction() as conn:
            conn.execute("DELETE FROM profiles WHERE id = ?", (profile_id,))


def _to_row(p: Profile) -> tuple:
    return (p.id, p.name, p.status, p.trigger_word, p.lora_name, p.voice_path, p.voice_transcript, p.reference_photo,
            json.dumps(p.photos), json.dumps(p.options), p.training_job_id,
            json.dumps(p.error) if p.error is not None else None,
            json.dumps(p.storage) if p.storage is not None else None, p.created_at, p.updated_at, p.voice_model)


def _to_profile(row: tuple) -> Profile:
    v = dict(zip(COLUMNS, row))
    v["photos"] = json.loads(v["photos"])
    v["options"] = json.loads(v["options"])
    v["error"] = json.loads(v["error"]) if v["error"] else None
    v["storage"] = json.loads(v["storage"]) if v["storage"] else None
    return Profile(**v)
