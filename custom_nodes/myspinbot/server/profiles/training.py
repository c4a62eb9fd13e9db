"""Settling a profile when its training job ends: a listener on the job events (as webhooks and
metrics are), so the job's status keeps one writer (``jobs.lifecycle``) and the profile follows it.

succeeded → ``ready`` (the job's ``reference`` output copied in as the reference photo, the LoRA
named, and the fine-tuned voice when the job fine-tuned one); failed / canceled / expired before success → ``failed`` with the job's error and the
trainer's per-photo report (``details.photos``: which photo was dropped and why).
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any, Callable

from ..events import STATUS, JobEvent
from ..model import SUCCEEDED, TERMINAL, Job
from ..repos.profiles import FAILED, READY, TRAINING, Profile
from . import files

log = logging.getLogger("myspinbot.profiles")

PIPELINE = "train_profile"
_DROPPED = re.compile(r"^dropped (?P<file>.+?): (?P<message>.+)$")


class TrainingObserver:
    """``JobEvents`` listener: ``store`` holds the profiles, ``input_dir`` / ``output_dir`` are
    ComfyUI's folders, ``clock`` Unix seconds; ``on_ready(profile id)`` runs after a profile
    became ready (``ProfileService.store_files_later``: its files to object storage)."""

    def __init__(self, store: Any, input_dir: Path, output_dir: Path, clock: Callable[[], float],
                 on_ready: Callable[[str], None] = lambda profile_id: None):
        self.store, self.input_dir, self.output_dir, self.clock = store, Path(input_dir), Path(output_dir), clock
        self.on_ready = on_ready

    def __call__(self, event: JobEvent) -> None:
        job = event.job
        if event.kind != STATUS or job.pipeline != PIPELINE or job.status not in TERMINAL:
            return
        profile = self.store.profiles.by_training_job(job.id)
        if profile is None or profile.status != TRAINING:
            return
        if job.status == SUCCEEDED:
            self._ready(profile, job)
        else:
            self._failed(profile, job, job.error or {"code": f"training_{job.status}",
                                                     "message": f"the training job was {job.status}", "details": {}})
        profile.updated_at = self.clock()
        self.store.profiles.save(profile)
        log.info("myspinbot: profile %s is %s", profile.id, profile.status)
        if profile.status == READY:
            self.on_ready(profile.id)

    def _ready(self, profile: Profile, job: Job) -> None:
        output = job.output("reference")
        source = (self.output_dir / output.path) if output is not None else None
        try:
            if source is None or not source.is_file():
                raise FileNotFoundError("the training job saved no reference photo")
            profile.reference_photo = files.store_reference(self.input_dir, profile.id, source)
        except OSError as err:
            self._failed(profile, job, {"code": "reference_missing", "message": str(err), "details": {}})
            return
        stem = job.params.get("lora_name") or f"profile_{profile.id}"
        profile.status, profile.error = READY, None
        profile.lora_name = f"myspinbot/{stem}.safetensors"
        if job.params.get("fine_tune_voice") and job.params.get("voice_name"):
            profile.voice_model = f"myspinbot/{job.params['voice_name']}"

    def _failed(self, profile: Profile, job: Job, error: dict[str, Any]) -> None:
        details = dict(error.get("details") or {})
        report = photo_report(error.get("message") or "", profile.photos)
        if report:
            details["photos"] = report
        profile.status = FAILED
        profile.error = {"code": error.get("code") or "training_failed",
                         "message": error.get("message") or "training failed",
                         "details": {**details, "job_id": job.id}}


def photo_report(message: str, photos: list[dict[str, str]]) -> list[dict[str, str]]:
    """The trainer's per-photo lines (``dropped <file>: <why>``) as ``[{"photo", "file", "reason",
    "message"}]`` (``photo``: the client's file name; ``reason``: ``no_face`` or ``duplicate``)."""
    names = {p["file"]: p.get("name", p["file"]) for p in photos}
    report = []
    for line in message.splitlines():
        match = _DROPPED.match(line.strip())
        if match:
            file, text = match["file"], match["message"]
            report.append({"photo": names.get(file, file), "file": file,
                           "reason": "duplicate" if "duplicate" in text else "no_face", "message": text})
    return report
