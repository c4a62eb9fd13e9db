"""``JobStore``: the job service's database and its repositories, with the operations that span
table families (deleting or expiring a job).

The database is ``db.Database`` (SQLite, in ComfyUI's user directory: the embedded default) or
``pg_db.PgDatabase`` (PostgreSQL, shared by several servers: ``MYSPINBOT_DATABASE_URL``); the
repositories run the same statements on both.

The single-table methods delegate to the repositories in ``repos/`` and keep the names the job
service, recovery, retention and reconciliation call.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .db import Database
from .model import TERMINAL, Asset, Job
from .repos.assets import AssetsRepo
from .repos.claims import Claim, ClaimsRepo
from .repos.servers import ServersRepo
from .repos.idempotency import IdempotencyRecord, IdempotencyRepo
from .repos.jobs import JobsRepo
from .repos.pending_uploads import PendingUploadsRepo
from .repos.profiles import ProfilesRepo
from .repos.prompts import PromptRecord, PromptsRepo
from .webhook_store import WebhookStore

__all__ = ["Claim", "IdempotencyRecord", "JobStore", "LeaseLost", "PromptRecord"]


class LeaseLost(RuntimeError):
    """A write for a job this server claimed was refused: its claim is no longer the job's (the
    lease ran out, or another server reclaimed it). Nothing was written; the job is not ours."""

    def __init__(self, claim: Claim):
        super().__init__(f"job {claim.job_id}: attempt {claim.attempt} of server {claim.worker} lost its lease; "
                         "the write was refused")
        self.claim = claim


class JobStore:
    """Jobs, prompts, idempotency keys, assets, pending uploads, webhook rows and character
    profiles (``profiles``: ``repos.profiles.ProfilesRepo``) over one connection.

    ``source``: a SQLite file (opened, created or migrated here; ``":memory:"`` for a private
    one) or an open ``Database`` / ``PgDatabase``. Safe to share between threads."""

    def __init__(self, source: Database | Path | str):
        self.db = Database(source) if isinstance(source, (Path, str)) else source
        self.path = self.db.path
        self.jobs = JobsRepo(self.db)
        self.prompts = PromptsRepo(self.db)
        self.idempotency_keys = IdempotencyRepo(self.db)
        self.assets = AssetsRepo(self.db)
        self.pending_uploads = PendingUploadsRepo(self.db)
        self.webhooks = WebhookStore(self.db)
        self.claims = ClaimsRepo(self.db) if self.db.backend == "postgresql" else None
        self.servers = ServersRepo(self.db) if self.db.backend == "postgresql" else None
        """Claims of a shared queue (PostgreSQL only; None on SQLite)."""
        self._held: dict[str, Claim] = {}
        self.profiles = ProfilesRepo(self.db)

    def close(self) -> None:
        self.db.close()

    # --- a job's rows together -------------------------------------------------------------
    def delete(self, job_id: str) -> None:
        """Remove the job and every row that belongs to it (prompt, idempotency keys, pending
        uploads, webhook subscription, deliveries and attempts) in one transaction."""
        with self.db.transaction():
            self.jobs.delete(job_id)
            self.prompts.delete(job_id)
            self.idempotency_keys.delete_job(job_id)
            self.pending_uploads.delete_job(job_id)
            self.webhooks.delete_job(job_id)

    def expire(self, job: Job) -> None:
        """Save ``job`` (already marked expired) and drop, in the same transaction, what only a
        live job needs: its prompt, pending uploads, and finished webhook deliveries with their
        attempts. The job row stays (the API reports it expired), and so do its subscription and
        pending deliveries (the ``expired`` status change is still sent) and its idempotency keys
        (a retry within their 24 h still gets the job)."""
        with self.db.transaction():
            self.jobs.save(job)
            self.prompts.delete(job.id)
            self.pending_uploads.delete_job(job.id)
            self.webhooks.prune_finished(job.id)

    # --- claims (a shared queue: jobs/claiming.py) --------------------------------------------
    def hold(self, claim: Claim) -> None:
        """From now on this server's writes of ``claim.job_id`` are fenced by ``claim`` (``save``)."""
        self._held[claim.job_id] = claim

    def rehold(self, claim: Claim) -> None:
        """Replace the held claim of ``claim.job_id`` (renewed), unless the job stopped being held meanwhile."""
        if claim.job_id in self._held:
            self._held[claim.job_id] = claim

    def unhold(self, job_id: str) -> Claim | None:
        """Stop fencing the job's writes (finished, or no longer ours); returns the claim it had."""
        return self._held.pop(job_id, None)

    def held(self) -> list[Claim]:
        """The claims this server holds."""
        return list(self._held.values())

    # --- jobs ------------------------------------------------------------------------------
    def save(self, job: Job) -> None:
        """Insert the job or replace its whole row. A job this server holds a claim on (``hold``)
        is written only while the claim holds (``ClaimsRepo.save_fenced``; a final status ends
        the hold): raises ``LeaseLost`` (and drops the hold) when the claim is gone."""
        claim = self._held.get(job.id)
        if claim is None:
            self.jobs.save(job)
            return
        if not self.claims.save_fenced(job, claim):
            self._held.pop(job.id, None)
            raise LeaseLost(claim)
        if job.status in TERMINAL:
            self._held.pop(job.id, None)

    def get(self, job_id: str) -> Job | None:
        return self.jobs.get(job_id)

    def with_status(self, *statuses: str) -> list[Job]:
        return self.jobs.with_status(*statuses)

    def count_status(self, *statuses: str) -> int:
        return self.jobs.count_status(*statuses)

    def page(self, *, statuses: tuple[str, ...] = (), pipelines: tuple[str, ...] = (), limit: int = 20,
             after: tuple[float, str] | None = None) -> list[Job]:
        """See ``JobsRepo.page``: newest first, filtered, after the previous page's last ``(created_at, id)``."""
        return self.jobs.page(statuses=statuses, pipelines=pipelines, limit=limit, after=after)

    def finished_before(self, statuses: tuple[str, ...], before: float, limit: int = 500) -> list[Job]:
        return self.jobs.finished_before(statuses, before, limit)

    # --- assets ----------------------------------------------------------------------------
    def add_asset(self, asset: Asset) -> Asset:
        """Record an asset unless one with its id exists; returns the stored record."""
        return self.assets.add(asset)

    def asset(self, asset_id: str) -> Asset | None:
        return self.assets.get(asset_id)

    # --- idempotency keys ------------------------------------------------------------------
    def idempotency(self, key: str) -> IdempotencyRecord | None:
        return self.idempotency_keys.get(key)

    def put_idempotency(self, record: IdempotencyRecord, expire_before: float) -> None:
        self.idempotency_keys.put(record, expire_before)

    def delete_idempotency(self, key: str) -> None:
        self.idempotency_keys.delete(key)

    # --- job prompts (what a restart re-queues) --------------------------------------------
    def save_prompt(self, record: PromptRecord) -> None:
        self.prompts.save(record)

    def count_run(self, job_id: str) -> None:
        self.prompts.count_run(job_id)

    def prompt(self, job_id: str) -> PromptRecord | None:
        return self.prompts.get(job_id)

    def delete_prompt(self, job_id: str) -> None:
        self.prompts.delete(job_id)

    # --- pending uploads of outputs --------------------------------------------------------
    def put_pending_upload(self, job_id: str, name: str, record: dict[str, Any]) -> None:
        self.pending_uploads.put(job_id, name, record)

    def pending_upload(self, job_id: str, name: str) -> dict[str, Any] | None:
        return self.pending_uploads.get(job_id, name)

    def delete_pending_upload(self, job_id: str, name: str) -> None:
        self.pending_uploads.delete(job_id, name)
