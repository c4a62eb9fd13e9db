"""Servers of one shared PostgreSQL job queue for the tier-1 tests (``test_job_claims.py``,
``test_job_shared_queue.py``; fixture ``servers`` in ``conftest.py``): each a fake ComfyUI with its
own connections to one database."""

from __future__ import annotations

from fake_host import Clock, FakeHost
from myspinbot.server.jobs import JobService
from myspinbot.server.jobs.claiming import SharedQueue
from myspinbot.server.model import QUEUED, Job
from myspinbot.server.pipelines import builtin_pipelines
from myspinbot.server.settings import Settings
from myspinbot.server.store import JobStore, PromptRecord

PROMPT = {"1": {"class_type": "LoadImage", "inputs": {"image": "x.png"}}}


class Server:
    """One ComfyUI server with the pack: a fake ComfyUI, its own connections to the shared database."""

    def __init__(self, name: str, url: str, root, **queue_options):
        from myspinbot.server.pg_db import PgDatabase

        self.name = name
        self.host = FakeHost(root / name)
        self.store = JobStore(PgDatabase(url))
        self.service = JobService(self.host, self.store, builtin_pipelines(), Settings(), clock=Clock())
        self.queue = SharedQueue(self.service, name, **{"lease_s": 30.0, "max_attempts": 3, **queue_options})

    def close(self) -> None:
        self.store.close()


class Servers:
    """Makes ``Server`` s on one database (``servers(name, **SharedQueue options)``); closes them."""

    def __init__(self, url: str, root):
        self.url, self.root, self.made = url, root, []

    def __call__(self, name: str, **options) -> Server:
        self.made.append(Server(name, self.url, self.root, **options))
        return self.made[-1]

    def close(self) -> None:
        for server in self.made:
            server.close()


def add_jobs(store: JobStore, n: int, pipeline: str = "lite", start: float = 1_800_000_000.0) -> list[str]:
    ids = [f"job-{pipeline}-{i:03d}" for i in range(n)]
    with store.db.transaction():
        for i, job_id in enumerate(ids):
            store.save(Job(id=job_id, pipeline=pipeline, status=QUEUED, created_at=start + i))
            store.save_prompt(PromptRecord(job_id, PROMPT, {}, {}))
    return ids
