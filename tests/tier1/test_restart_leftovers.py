"""What a restart must not get wrong (tier 1, fake ComfyUI host): the re-queue limit counts runs
that started, not restarts (``recovery.py``), and upload staging folders that a crash left
without a job row are removed at start (``leftovers.py``)."""

from __future__ import annotations

import sqlite3
import uuid

from fake_host import Clock, FakeHost, upload_inputs  # noqa: F401
from myspinbot.server.model import Job
from myspinbot.server.store import JobStore
from test_recovery import form, restart


async def submit(client, fixtures_dir, seed: int) -> str:
    r = await client.post("/myspinbot/jobs", data=form(fixtures_dir, seed))
    assert r.status == 202, await r.text()
    return (await r.json())["id"]


# --- the re-queue limit counts runs that started ------------------------------------------

async def test_a_job_that_never_started_survives_any_number_of_restarts(client, host, service, clock, fixtures_dir):
    ids = [await submit(client, fixtures_dir, seed) for seed in range(2)]
    current = host
    for _ in range(4):  # ComfyUI restarts four times before it ever gets to them
        current, service2, recovery, recovered = restart(current, clock)
        result = recovered
        assert result.requeue == ids and result.lost == []
        assert await recovery.resume() == ids and current.pending == ids
    assert [service2.get(i).status for i in ids] == ["queued", "queued"]
    assert service2.store.prompt(ids[0]).runs == 0


async def test_a_job_whose_two_runs_both_ended_in_a_crash_is_lost(client, host, service, clock, fixtures_dir):
    crasher, waiting = [await submit(client, fixtures_dir, seed) for seed in range(2)]
    host.emit("execution_start", prompt_id=crasher)  # run 1 ... and ComfyUI dies
    assert service.store.prompt(crasher).runs == 1 and service.store.prompt(waiting).runs == 0

    host2, service2, recovery2, recovered = restart(host, clock)
    assert recovered.requeue == [crasher, waiting]  # one interrupted run: it may run again
    await recovery2.resume()
    host2.emit("execution_start", prompt_id=crasher)  # run 2 ... and ComfyUI dies again

    host3, service3, recovery3, recovered = restart(host2, clock)
    result = recovered
    assert result.lost == [crasher] and result.requeue == [waiting]
    lost = service3.get(crasher)
    assert lost.status == "failed" and lost.error["code"] == "lost_on_restart"
    assert lost.error["details"] == {"reason": "runs_interrupted", "runs": 2}
    assert await recovery3.resume() == [waiting] and host3.pending == [waiting]


async def test_a_run_is_counted_once_however_many_events_it_sends(client, host, service, fixtures_dir):
    job_id = await submit(client, fixtures_dir, 0)
    host.run_success(job_id, {})  # start, progress on every node, end
    assert service.store.prompt(job_id).runs == 1


def test_a_store_from_before_run_counting_opens_with_zero_runs(tmp_path):
    path = tmp_path / "jobs.sqlite3"
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE job_prompts (job_id TEXT PRIMARY KEY, prompt TEXT NOT NULL, output_nodes TEXT NOT NULL "
               "DEFAULT '{}', node_stages TEXT NOT NULL DEFAULT '{}', requeue_count INTEGER NOT NULL DEFAULT 0)")
    db.execute("INSERT INTO job_prompts VALUES ('a', '{}', '{}', '{}', 1)")
    db.commit()
    db.close()
    store = JobStore(path)
    record = store.prompt("a")
    assert record.requeue_count == 1 and record.runs == 0
    store.count_run("a")
    assert store.prompt("a").runs == 1
    store.save_prompt(record._replace(requeue_count=2))  # only count_run changes the run count
    assert store.prompt("a").runs == 1 and store.prompt("a").requeue_count == 2


# --- staging folders without a job row ------------------------------------------------------

async def test_staging_folders_a_crash_left_without_a_job_are_removed_at_start(client, host, service, clock, fixtures_dir):
    kept = await submit(client, fixtures_dir, 0)
    finished = await submit(client, fixtures_dir, 1)
    host.run_success(finished, {})
    await upload_inputs(client, fixtures_dir)
    staging = host.input_dir / "myspinbot"
    assets = staging / "assets"
    before_assets = sorted(p.name for p in assets.iterdir())

    # What a crash in the middle of uploads leaves: a job's staging folder with no job row, and
    # a half-received asset in an .incoming-* folder.
    orphan = staging / str(uuid.uuid4())
    orphan.mkdir()
    (orphan / "portrait.png").write_bytes(b"half a portrait")
    incoming = assets / f".incoming-{uuid.uuid4()}"
    incoming.mkdir()
    (incoming / "file").write_bytes(b"half an upload")
    # Not the pack's to remove: a folder not named like a job, a loose file, the expired job's record.
    own = staging / "my-voices"
    own.mkdir()
    loose = staging / "notes.txt"
    loose.write_text("mine")
    service.store.save(Job(id=str(uuid.uuid4()), pipeline="lite", status="expired", created_at=1.0))

    host2, service2, recovery, recovered = restart(host, clock)
    assert not orphan.exists() and not incoming.exists()
    assert (staging / kept).is_dir() and (staging / finished).is_dir()  # jobs' folders stay
    assert sorted(p.name for p in assets.iterdir()) == before_assets
    assert own.is_dir() and loose.is_file()
    assert await recovery.resume() == [kept]


async def test_no_staging_folder_is_fine(host, service, clock):
    _, _, recovery, recovered = restart(host, clock)
    assert recovered.lost == []
