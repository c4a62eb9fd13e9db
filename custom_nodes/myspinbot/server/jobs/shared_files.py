"""A shared queue's files in object storage: inputs and outputs cross servers through one bucket.

Servers of a shared queue (PostgreSQL) need not share ComfyUI's input and output folders. Keys:

- ``inputs/<path>``: an input file, ``<path>`` relative to ComfyUI's input folder (a job's upload
  ``myspinbot/<job id>/<name>``, an asset ``myspinbot/assets/<sha256><ext>``); put by the server
  that took the upload, fetched by the server that claims the job before it queues the prompt.
- ``jobs/<job id>/attempt-<n>/<path>``: an output of claim ``n`` (``<path>`` relative to the
  output folder); uploaded and HEAD-verified (``storage.upload_file``) before the job's one fenced
  ``succeeded`` write, so a server whose claim was lost never records outputs. Prefixes of the
  other attempts are orphans: ``clean_attempts`` removes them once an attempt won.

``GET /jobs/{id}/outputs/{name}`` on a server without the file fetches it into the output folder
first (``fetch_output``), then serves it as any output. Every call blocks (network I/O): run it
in a worker thread.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

from ...storage import S3Settings, head, upload_file
from ...storage.s3_transfer import delete_keys, download_file, list_keys
from ..model import Job, Output
from ..store import Claim, LeaseLost
from .layout import INPUT_SUBDIR

if TYPE_CHECKING:
    from ..store import JobStore
    from .service import JobService

log = logging.getLogger("myspinbot.jobs")

INPUTS = "inputs"
JOBS = "jobs"


def input_key(rel: str) -> str:
    """``inputs/<rel>``: the key of an input file, ``rel`` relative to ComfyUI's input folder."""
    return f"{INPUTS}/{rel}"


def attempt_prefix(job_id: str, attempt: int) -> str:
    """``jobs/<job id>/attempt-<n>/``: where claim ``attempt`` of a job puts its outputs."""
    return f"{JOBS}/{job_id}/attempt-{int(attempt)}/"


class SharedFiles:
    """Inputs and outputs of a shared queue in ``s3.bucket``, between ``input_dir``/``output_dir``
    (this server's ComfyUI folders) and the bucket. Raises ``StorageError`` on storage trouble."""

    def __init__(self, s3: S3Settings, input_dir: Path, output_dir: Path):
        s3.require()
        if not s3.bucket:
            raise ValueError("a shared queue's object storage needs a bucket (MYSPINBOT_S3_BUCKET)")
        self.s3, self.bucket = s3, s3.bucket
        self.input_dir, self.output_dir = Path(input_dir), Path(output_dir)

    # --- inputs ----------------------------------------------------------------------------
    def put_input(self, rel: str) -> bool:
        """Upload input ``rel`` unless the bucket already holds it with the same size; True when uploaded."""
        path = self.input_dir / rel
        key = input_key(rel)
        known = head(self.s3, self.bucket, key)
        if known is not None and known["size"] == path.stat().st_size:
            return False
        upload_file(self.s3, path, self.bucket, key, create_bucket=True, presign_expiry_s=0)
        return True

    def fetch_inputs(self, paths: list[str]) -> int:
        """Download each input of a claimed job that is not here; returns how many were downloaded."""
        return sum(self.fetch_input(rel) for rel in paths)

    def fetch_input(self, rel: str) -> bool:
        """Download input ``rel`` into this server's input folder unless it is there; True when downloaded."""
        path = self.input_dir / rel
        if path.is_file():
            return False
        download_file(self.s3, self.bucket, input_key(rel), path)
        return True

    # --- outputs ---------------------------------------------------------------------------
    def put_outputs(self, job_id: str, attempt: int, outputs: list[Output]) -> list[Output]:
        """Upload each output (HEAD-verified) under claim ``attempt``'s prefix and give it its
        public ``storage`` block; one a storage node already stored keeps its own. Returns ``outputs``."""
        prefix = attempt_prefix(job_id, attempt)
        for output in outputs:
            if output.storage and output.storage.get("status") == "stored":
                continue
            stored = upload_file(self.s3, self.output_dir / output.path, self.bucket, prefix + output.path,
                                 output.content_type, create_bucket=True, presign_expiry_s=0)
            output.storage = {"kind": "s3", "uri": stored.uri, "presigned_url": None, "status": "stored",
                              "warning": None}
        return outputs

    def publish(self, store: "JobStore", job_id: str, outputs: list[Output]) -> list[Output]:
        """``put_outputs`` under the attempt this server holds the job with (``JobTracker.publish``).
        Raises ``LeaseLost`` when the claim is no longer held here."""
        claim = next((c for c in store.held() if c.job_id == job_id), None)
        if claim is None:
            raise LeaseLost(Claim(job_id, 0, "this server", 0.0))
        return self.put_outputs(job_id, claim.attempt, outputs)

    def clean_after(self, store: "JobStore", job_id: str) -> None:
        """Remove the orphaned attempt prefixes of a finished job (``JobTracker.published``); never raises."""
        from ...errors import StorageError

        job = store.get(job_id)
        if job is None:
            return
        attempts = {output_attempt(o) for o in job.outputs} - {None}
        try:
            self.clean_attempts(job_id, attempts.pop() if len(attempts) == 1 else None)
        except StorageError as err:
            log.warning("myspinbot: job %s: could not remove orphaned attempts: %s", job_id, err)

    def drop_attempt(self, job_id: str, attempt: int) -> None:
        """Delete what attempt ``attempt`` uploaded (its success was refused); never raises (logged)."""
        from ...errors import StorageError

        prefix = attempt_prefix(job_id, attempt)
        try:
            delete_keys(self.s3, self.bucket, list_keys(self.s3, self.bucket, prefix))
        except StorageError as err:
            log.warning("myspinbot: job %s: could not remove %s: %s", job_id, prefix, err)

    def forget_job(self, job_id: str) -> None:
        """Delete the job's objects: its outputs (every attempt) and its own uploads (never the
        shared assets); never raises (logged)."""
        from ...errors import StorageError

        try:
            self.clean_attempts(job_id, None)
            delete_keys(self.s3, self.bucket, list_keys(self.s3, self.bucket, input_key(f"{INPUT_SUBDIR}/{job_id}/")))
        except StorageError as err:
            log.warning("myspinbot: job %s: could not remove its objects: %s", job_id, err)

    def fetch_output(self, job: Job, output: Output) -> Path | None:
        """This server's copy of ``output`` (downloaded from the bucket when missing here), or None
        when it is neither here nor in this bucket."""
        path = (self.output_dir / output.path).resolve()
        if not path.is_relative_to(self.output_dir.resolve()):
            return None
        if path.is_file():
            return path
        uri = (output.storage or {}).get("uri") or ""
        bucket, _, key = uri.removeprefix("s3://").partition("/")
        if not uri.startswith("s3://") or bucket != self.bucket or not key:
            return None
        download_file(self.s3, self.bucket, key, path)
        return path

    def clean_attempts(self, job_id: str, keep: int | None) -> list[str]:
        """Delete the job's output prefixes but attempt ``keep``'s (None: all of them); returns the keys deleted."""
        kept = attempt_prefix(job_id, keep) if keep is not None else None
        doomed = [k for k in list_keys(self.s3, self.bucket, f"{JOBS}/{job_id}/") if kept is None or not k.startswith(kept)]
        delete_keys(self.s3, self.bucket, doomed)
        if doomed:
            log.info("myspinbot: job %s: removed %d object(s) of attempts that did not finish", job_id, len(doomed))
        return doomed


async def fetch_job_inputs(service: "JobService", files: SharedFiles, job: Job) -> bool:
    """Download a claimed job's input files from the bucket (off the event loop); False (the job
    failed ``input_missing``, fenced by its claim) when object storage cannot give them."""
    import asyncio
    import contextlib

    from ...errors import StorageError

    pipeline = service.pipelines[job.pipeline]
    paths = [job.params[p.name] for p in pipeline.file_params() if isinstance(job.params.get(p.name), str)]
    try:
        await asyncio.to_thread(files.fetch_inputs, paths)
        return True
    except StorageError as err:
        with contextlib.suppress(LeaseLost):
            service.lifecycle.fail(job, {"code": "input_missing", "message": "the job's input files could not be "
                                         f"fetched from object storage: {err.message}", "details": {"storage_code": err.code}})
        return False


def output_attempt(output: Output) -> int | None:
    """The attempt whose prefix holds ``output`` (``jobs/<id>/attempt-<n>/...``), else None."""
    key = ((output.storage or {}).get("uri") or "").removeprefix("s3://").partition("/")[2]
    parts = key.split("/")
    if len(parts) > 2 and parts[0] == JOBS and parts[2].startswith("attempt-") and parts[2][8:].isdigit():
        return int(parts[2][8:])
    return None
