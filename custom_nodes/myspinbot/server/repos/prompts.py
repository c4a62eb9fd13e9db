"""The ``job_prompts`` table: the API prompt each job was queued with, for recovery to queue again."""

from __future__ import annotations

import json
from typing import NamedTuple

from ..db import Database


class PromptRecord(NamedTuple):
    """The API prompt a job was queued with, kept so a restarted ComfyUI can queue it again.

    ``output_nodes``: output name → node id; ``node_stages``: node id → stage name;
    ``requeue_count``: how often a restart queued it again; ``runs``: how often its prompt started
    executing (``count_run``; ``save_prompt`` never changes it)."""

    job_id: str
    prompt: dict
    output_nodes: dict
    node_stages: dict
    requeue_count: int = 0
    runs: int = 0


class PromptsRepo:
    def __init__(self, db: Database):
        self.db = db

    def save(self, record: PromptRecord) -> None:
        """Record (or replace) the built prompt of a job; its run count is kept (``count_run`` owns it)."""
        with self.db.transaction() as conn:
            conn.execute("INSERT INTO job_prompts (job_id, prompt, output_nodes, node_stages, requeue_count) "
                         "VALUES (?, ?, ?, ?, ?) ON CONFLICT(job_id) DO UPDATE SET prompt = excluded.prompt, "
                         "output_nodes = excluded.output_nodes, node_stages = excluded.node_stages, "
                         "requeue_count = excluded.requeue_count",
                         (record.job_id, json.dumps(record.prompt), json.dumps(record.output_nodes),
                          json.dumps(record.node_stages), record.requeue_count))

    def count_run(self, job_id: str) -> None:
        """Count one more run of the job's prompt that started executing (recovery limits re-runs by it)."""
        with self.db.transaction() as conn:
            conn.execute("UPDATE job_prompts SET runs = runs + 1 WHERE job_id = ?", (job_id,))

    def get(self, job_id: str) -> PromptRecord | None:
        with self.db.read() as conn:
            row = conn.execute("SELECT job_id, prompt, output_nodes, node_stages, requeue_count, runs FROM job_prompts "
                               "WHERE job_id = ?", (job_id,)).fetchone()
        if row is None:
            return None
        return PromptRecord(row[0], json.loads(row[1]), json.loads(row[2]), json.loads(row[3]), row[4], row[5])

    def delete(self, job_id: str) -> None:
        with self.db.transaction() as conn:
            conn.execute("DELETE FROM job_prompts WHERE job_id = ?", (job_id,))
