"""The job database: upgrading a file the last unversioned release wrote, migrations, transactions,
one connection for every table family, and a job's rows deleted or expired together (on SQLite
and on PostgreSQL: ``open_store``; PostgreSQL's own schema and transactions: ``test_job_db_postgres.py``)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from myspinbot.server.db import Database
from myspinbot.server.migrations import MIGRATIONS, SchemaTooNew
from myspinbot.server.model import Asset, Job
from myspinbot.server.store import IdempotencyRecord, JobStore, PromptRecord
from myspinbot.server.webhook_request import WebhookSpec
from myspinbot.server.webhook_store import Attempt, Delivery, WebhookStore

RELEASE_0 = Path(__file__).parent / "data" / "jobs_db_release0.sql"
DONE, WAITING, FAILED = ("5b0c1f1e-8a43-4d1c-9a57-0c1d8e3f2a10", "9d7e2c44-1b6f-4e0a-8c3d-2f5a6b7c8d90",
                         "c3a1e5f7-2d4b-4c6e-8f0a-1b3d5e7f9a2c")
DELIVERY = "msg_0123456789abcdef0123456789abcdef"


def release_0_file(path: Path) -> Path:
    db = sqlite3.connect(path)
    db.executescript(RELEASE_0.read_text())
    db.close()
    return path


def schema(path: Path) -> tuple[int, set[str]]:
    db = sqlite3.connect(path)
    try:
        names = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type IN ('table', 'index') "
                                          "AND name NOT LIKE 'sqlite_%'")}
        return db.execute("PRAGMA user_version").fetchone()[0], names
    finally:
        db.close()


# --- upgrade in place -------------------------------------------------------------------------

def test_a_database_of_the_last_unversioned_release_upgrades_in_place_and_keeps_every_row(tmp_path):
    path = release_0_file(tmp_path / "jobs.sqlite3")
    assert schema(path)[0] == 0
    store = JobStore(path)

    version, names = schema(path)
    assert version == len(MIGRATIONS)
    assert {"jobs_by_created", "jobs_by_status", "jobs_by_status_pipeline", "jobs_by_pipeline"} <= names
    assert not {"jobs_status", "jobs_created"} & names  # replaced by the wider indexes

    done = store.get(DONE)
    assert (done.pipeline, done.status, done.stage, done.message) == ("lite", "succeeded", "store", "done")
    assert (done.created_at, done.started_at, done.completed_at, done.progress) == (1767225600.25, 1767225601.5,
                                                                                     1767225660.75, 1.0)
    assert done.params == {"portrait": "myspinbot/assets/ab.png", "audio": "myspinbot/assets/cd.wav", "fps": 25}
    [video] = done.outputs
    assert (video.name, video.size_bytes, video.path) == ("video", 123456, f"myspinbot/{DONE}/output_00001.mp4")
    assert video.storage == {"kind": "s3", "uri": "s3://bucket/v.mp4", "presigned_url": None, "status": "pending",
                             "warning": "upload failed; retrying"}
    assert done.progress_detail == {"stage_index": 2, "stages": 3, "step": None, "steps": None, "eta_seconds": 0.0}
    failed = store.get(FAILED)
    assert failed.error == {"code": "execution_error", "message": "node 3 failed", "details": {"node": "3"}}
    assert failed.message is None and failed.progress_detail == {}
    assert [j.id for j in store.page(limit=10)] == [WAITING, DONE, FAILED]
    assert [j.id for j in store.page(statuses=("succeeded", "failed"), pipelines=("lite",))] == [DONE]
    assert store.count_status("queued") == 1

    assert store.prompt(WAITING) == PromptRecord(WAITING, {"1": {"class_type": "LoadImage", "inputs": {"image": "x.png"}}},
                                                 {"video": "9"}, {"1": "load"}, requeue_count=1, runs=1)
    assert store.prompt(DONE).runs == 0
    assert store.idempotency("key-1") == IdempotencyRecord("key-1", "f00d" * 16, DONE, 1767225600.0)
    assert store.idempotency("key-2").job_id == WAITING
    assert store.asset("ab" * 32) == Asset("ab" * 32, "image", "image/png", 2048,
                                           f"myspinbot/assets/{'ab' * 32}.png", 1767225590.0)
    assert store.pending_upload(DONE, "video") == {"path": f"myspinbot/{DONE}/output_00001.mp4", "key": "v.mp4",
                                                   "attempts": 1, "next_at": 1767225700.0}
    hooks = WebhookStore(store.db)
    assert hooks.webhook(DONE) == WebhookSpec("https://hooks.example.com/myspinbot", ("job.status", "job.completed"))
    [delivery] = hooks.deliveries(DONE)
    assert (delivery.id, delivery.attempt, delivery.status, delivery.response_code) == (DELIVERY, 1, "pending", 503)
    assert hooks.attempts(DONE) == [Attempt(DELIVERY, "job.completed", 1, 1767225662.0, "retry", 503, "HTTP 503",
                                            1767225672.0)]
    assert hooks.pending_count() == 1

    # Written after the upgrade, read back after reopening (which migrates nothing more).
    store.count_run(DONE)
    store.close()
    again = JobStore(path)
    assert again.prompt(DONE).runs == 1 and again.get(WAITING).status == "queued"
    assert schema(path)[0] == len(MIGRATIONS)


def test_a_new_file_gets_the_same_schema_as_an_upgraded_one(tmp_path):
    JobStore(tmp_path / "new.sqlite3").close()
    JobStore(release_0_file(tmp_path / "old.sqlite3")).close()
    assert schema(tmp_path / "new.sqlite3") == schema(tmp_path / "old.sqlite3")


def test_a_database_from_a_newer_release_is_refused_untouched(tmp_path):
    path = tmp_path / "jobs.sqlite3"
    JobStore(path).close()
    db = sqlite3.connect(path)
    db.execute(f"PRAGMA user_version = {len(MIGRATIONS) + 1}")
    db.close()
    with pytest.raises(SchemaTooNew, match="newer"):
        JobStore(path)
    assert schema(path)[0] == len(MIGRATIONS) + 1


def test_a_failing_migration_leaves_the_file_as_it_was(tmp_path):
    path = release_0_file(tmp_path / "jobs.sqlite3")
    before = schema(path)

    def broken(conn: sqlite3.Connection) -> None:
        conn.execute("CREATE TABLE half_done (x)")
        raise RuntimeError("migration failed")

    with pytest.raises(RuntimeError, match="migration failed"):
        Database(path, migrations=(*MIGRATIONS, broken))
    assert schema(path) == before


# --- transactions ----------------------------------------------------------------------------

def test_a_transaction_commits_all_or_nothing_and_an_inner_one_is_a_savepoint(tmp_path):
    db = Database(tmp_path / "t.sqlite3", migrations=())
    with db.transaction() as conn:
        conn.execute("CREATE TABLE t (x INTEGER)")
    with pytest.raises(ZeroDivisionError):
        with db.transaction() as conn:
            conn.execute("INSERT INTO t VALUES (1)")
            1 / 0
    with db.transaction() as conn:
        conn.execute("INSERT INTO t VALUES (2)")
        with pytest.raises(ZeroDivisionError):
            with db.transaction() as inner:
                inner.execute("INSERT INTO t VALUES (3)")
                1 / 0
        with db.transaction() as inner:
            inner.execute("INSERT INTO t VALUES (4)")
    with db.read() as conn:
        assert [r[0] for r in conn.execute("SELECT x FROM t ORDER BY x")] == [2, 4]
        assert not conn.in_transaction


def test_every_table_family_shares_the_store_connection(host, service):
    from myspinbot.server.guard import setup_access
    from aiohttp import web

    access = setup_access(web.Application(), service, host.user_dir, "127.0.0.1")
    assert access.webhooks.store.db is service.store.db
    store = service.store
    assert all(repo.db is store.db for repo in (store.jobs, store.prompts, store.idempotency_keys, store.assets,
                                                store.pending_uploads, store.webhooks))


# --- a job's rows together -------------------------------------------------------------------

def _job_with_every_row(store: JobStore, job_id: str, delivered: bool = True) -> None:
    store.save(Job(id=job_id, pipeline="lite", status="succeeded", created_at=1.0, completed_at=2.0))
    store.save_prompt(PromptRecord(job_id, {"1": {}}, {}, {}))
    store.put_idempotency(IdempotencyRecord(f"key-{job_id}", "h", job_id, 1.0), expire_before=0.0)
    store.put_pending_upload(job_id, "video", {"path": "x"})
    store.webhooks.add_webhook(job_id, WebhookSpec("https://example.com/hook", ("job.status",)), 1.0)
    for n, outcome in enumerate(("delivered", "retry") if delivered else ("retry",)):
        delivery = Delivery(f"msg_{job_id}_{n}", job_id, "job.status", "https://example.com/hook", "{}", 0, 1.0,
                            "pending", None, None, 1.0, 1.0)
        store.webhooks.add_delivery(delivery)
        store.webhooks.record_attempt(delivery, Attempt(delivery.id, "job.status", 1, 2.0, outcome, 200, None, None), 0.1)


def _rows(store: JobStore, job_id: str) -> dict[str, int]:
    queries = {"jobs": "SELECT COUNT(*) FROM jobs WHERE id = ?",
               "job_prompts": "SELECT COUNT(*) FROM job_prompts WHERE job_id = ?",
               "idempotency_keys": "SELECT COUNT(*) FROM idempotency_keys WHERE job_id = ?",
               "output_uploads": "SELECT COUNT(*) FROM output_uploads WHERE job_id = ?",
               "webhooks": "SELECT COUNT(*) FROM webhooks WHERE job_id = ?",
               "webhook_deliveries": "SELECT COUNT(*) FROM webhook_deliveries WHERE job_id = ?",
               "webhook_attempts": "SELECT COUNT(*) FROM webhook_attempts WHERE delivery_id LIKE ? || '%'"}
    with store.db.read() as conn:
        return {table: conn.execute(sql, (f"msg_{job_id}_" if "LIKE" in sql else job_id,)).fetchone()[0]
                for table, sql in queries.items()}


def test_deleting_a_job_removes_every_row_of_it_and_no_other(open_store):
    store = open_store()
    _job_with_every_row(store, "a")
    _job_with_every_row(store, "b")
    store.delete("a")
    assert set(_rows(store, "a").values()) == {0}
    assert _rows(store, "b") == {"jobs": 1, "job_prompts": 1, "idempotency_keys": 1, "output_uploads": 1,
                                 "webhooks": 1, "webhook_deliveries": 2, "webhook_attempts": 2}


def test_a_delete_that_fails_part_way_removes_nothing(open_store, monkeypatch):
    store = open_store()
    _job_with_every_row(store, "a")
    before = _rows(store, "a")

    def fail(job_id: str) -> None:
        raise sqlite3.OperationalError("disk I/O error")

    monkeypatch.setattr(store.webhooks, "delete_job", fail)  # the last family deleted
    with pytest.raises(sqlite3.OperationalError):
        store.delete("a")
    assert _rows(store, "a") == before


def test_expiring_a_job_keeps_its_row_and_what_the_expired_event_needs(open_store):
    store = open_store()
    _job_with_every_row(store, "a")
    job = store.get("a")
    job.status = "expired"
    store.expire(job)
    assert store.get("a").status == "expired"
    # prompt, pending upload and the delivered delivery go; the subscription, the pending
    # delivery (with its attempt) and the idempotency key stay
    assert _rows(store, "a") == {"jobs": 1, "job_prompts": 0, "idempotency_keys": 1, "output_uploads": 0,
                                 "webhooks": 1, "webhook_deliveries": 1, "webhook_attempts": 1}
