"""Jobs across a ComfyUI restart (``server/recovery.py``) and job retention (``server/retention.py``),
with a fake ComfyUI host: a "restart" is a new host (empty queue) and a new service on the same
SQLite file and folders (tier 1)."""

from __future__ import annotations

import asyncio
import io
import shutil

import aiohttp
import pytest

import fake_host
from fake_host import Clock, FakeHost, lite_body, upload_inputs  # noqa: F401
from myspinbot.server.jobs import JobService
from myspinbot.server.model import TERMINAL, Job
from myspinbot.server.pipelines import node_by_title
from myspinbot.server.recovery import JobRecovery, Recovered, job_folder
from myspinbot.server.retention import Retention
from myspinbot.server.settings import Settings

DAY = 86400.0


def form(fixtures_dir, seed: int) -> aiohttp.FormData:
    data = aiohttp.FormData()
    data.add_field("pipeline", "lite")
    data.add_field("seed", str(seed))
    data.add_field("portrait", io.BytesIO((fixtures_dir / "portrait_astronaut.png").read_bytes()), filename="me.png")
    data.add_field("audio", io.BytesIO((fixtures_dir / "speech_front_left.wav").read_bytes()), filename="speech.wav")
    return data


def restart(old: FakeHost, clock) -> tuple[FakeHost, JobService, JobRecovery, Recovered]:
    """A new ComfyUI process on the same folders (an empty queue, the same job store), the job API
    composed as production does: ``recovered`` is what its recovery settled then."""
    api = fake_host.restart(old, clock)
    return api.service.host, api.service, api.recovery, api.recovered


async def one_running_three_queued(client, host, fixtures_dir) -> list[dict]:
    jobs = [await (await client.post("/myspinbot/jobs", data=form(fixtures_dir, seed))).json() for seed in range(4)]
    first = jobs[0]["id"]
    prompt = host.prompts[first]
    host.emit("execution_start", prompt_id=first)
    host.emit("executing", node=node_by_title(prompt, "Animate portrait"), prompt_id=first)
    host.emit("progress", node=node_by_title(prompt, "Animate portrait"), value=4, max=10, prompt_id=first)
    partial = host.output_dir / "myspinbot" / first
    partial.mkdir(parents=True)
    (partial / "output_00001_.mp4").write_bytes(b"half a video")  # what the killed run left behind
    return jobs


async def test_a_crash_with_one_running_and_three_queued_runs_all_four_again(client, host, service, clock, fixtures_dir):
    jobs = await one_running_three_queued(client, host, fixtures_dir)
    ids = [j["id"] for j in jobs]
    assert service.get(ids[0]).status == "running" and service.get(ids[0]).progress > 0

    host2, service2, recovery, recovered = restart(host, clock)
    result = recovered
    assert result.requeue == ids and result.lost == [] and result.canceled == []
    assert host2.prompts == {}  # nothing is queued before the server runs
    assert await recovery.resume() == ids
    assert host2.pending == ids and all(host2.prompts[i] == host.prompts[i] for i in ids)  # same prompt, same id
    for position, job_id in enumerate(ids, start=1):
        job = service2.get(job_id)
        assert job.status == "queued" and job.progress == 0.0 and job.stage is None and job.started_at is None
        assert job.message == "queued again after a ComfyUI restart" and job.progress_detail["stages"] == 4
        assert service2.store.prompt(job_id).requeue_count == 1
        assert service2.queue_position(job) == position
    assert not (host2.output_dir / "myspinbot" / ids[0]).exists()  # the partial output is gone

    # The re-queued jobs are observed to completion like any other.
    for job_id in ids[:3]:
        host2.run_success(job_id, {node_by_title(host2.prompts[job_id], "Save video"): b"a whole video"})
    host2.run_success(ids[3], {})  # this one writes nothing: never succeeded without its file
    states = {i: service2.get(i) for i in ids}
    assert [states[i].status for i in ids] == ["succeeded"] * 3 + ["failed"]
    assert states[ids[3]].error["code"] == "output_missing"
    for job_id in ids[:3]:
        path = service2.output_path(states[job_id], "video")
        assert path is not None and path.read_bytes() == b"a whole video"


async def test_a_job_whose_run_was_cut_short_twice_is_not_requeued_again(client, host, service, clock, fixtures_dir):
    jobs = await one_running_three_queued(client, host, fixtures_dir)
    ids = [j["id"] for j in jobs]
    host2, service2, recovery, recovered = restart(host, clock)
    await recovery.resume()
    host2.emit("execution_start", prompt_id=ids[0])  # its second run ... and ComfyUI dies again
    host3, service3, recovery3, recovered = restart(host2, clock)
    result = recovered
    assert result.lost == [ids[0]] and result.requeue == ids[1:]  # the others never started: kept
    lost = service3.get(ids[0])
    assert lost.status == "failed" and lost.error["code"] == "lost_on_restart"
    assert lost.error["details"] == {"reason": "runs_interrupted", "runs": 2}
    assert lost.completed_at and lost.outputs == []
    assert await recovery3.resume() == ids[1:] and ids[0] not in host3.prompts


async def test_jobs_whose_inputs_are_gone_are_lost(client, host, service, clock, fixtures_dir):
    staged = await (await client.post("/myspinbot/jobs", data=form(fixtures_dir, 0))).json()
    portrait, audio = await upload_inputs(client, fixtures_dir)
    by_asset = await (await client.post("/myspinbot/jobs", json=lite_body(portrait, audio))).json()
    intact = await (await client.post("/myspinbot/jobs", data=form(fixtures_dir, 1))).json()
    (host.input_dir / "myspinbot" / staged["id"] / "speech.wav").unlink()
    for path in (host.input_dir / "myspinbot" / "assets").glob(f"{portrait}.*"):
        path.unlink()

    host2, service2, recovery, recovered = restart(host, clock)
    result = recovered
    assert result.requeue == [intact["id"]] and sorted(result.lost) == sorted([staged["id"], by_asset["id"]])
    gone = service2.get(staged["id"])
    assert gone.status == "failed" and gone.error["code"] == "lost_on_restart"
    assert gone.error["details"] == {"reason": "inputs_missing", "missing": [f"myspinbot/{staged['id']}/speech.wav"]}
    assert service2.get(by_asset["id"]).error["details"]["missing"] == [f"myspinbot/assets/{portrait}.png"]
    assert await recovery.resume() == [intact["id"]]


async def test_inputs_removed_between_recover_and_resume_are_noticed(client, host, service, clock, fixtures_dir):
    job = await (await client.post("/myspinbot/jobs", data=form(fixtures_dir, 0))).json()
    host2, service2, recovery, recovered = restart(host, clock)
    assert recovered.requeue == [job["id"]]
    shutil.rmtree(host.input_dir / "myspinbot" / job["id"])
    assert await recovery.resume() == []
    assert service2.get(job["id"]).error["details"]["reason"] == "inputs_missing" and host2.prompts == {}


async def test_canceling_jobs_end_canceled_and_jobs_without_a_stored_prompt_are_lost(host, service, clock):
    service.store.save(Job(id="c", pipeline="lite", status="canceling", created_at=1.0))
    service.store.save(Job(id="old", pipeline="lite", status="queued", created_at=2.0))  # from before prompts were kept
    _, service2, recovery, recovered = restart(host, clock)
    result = recovered
    assert result.canceled == ["c"] and result.lost == ["old"] and result.requeue == []
    assert service2.get("c").status == "canceled"
    assert service2.get("old").error == {"code": "lost_on_restart", "message": service2.get("old").error["message"],
                                         "details": {"reason": "no_prompt"}}


async def test_a_job_canceled_before_resume_is_not_queued(client, host, service, clock, fixtures_dir):
    a, b = [await (await client.post("/myspinbot/jobs", data=form(fixtures_dir, s))).json() for s in range(2)]
    host2, service2, recovery, recovered = restart(host, clock)
    assert service2.cancel(a["id"]).status == "canceled"  # ComfyUI does not have it: canceled at once
    assert await recovery.resume() == [b["id"]] and host2.pending == [b["id"]]


async def test_a_prompt_comfyui_rejects_after_the_restart_fails_the_job(client, host, service, clock, fixtures_dir):
    a, b = [await (await client.post("/myspinbot/jobs", data=form(fixtures_dir, s))).json() for s in range(2)]
    host2, service2, recovery, recovered = restart(host, clock)
    host2.reject_next = True
    assert await recovery.resume() == [b["id"]]
    rejected = service2.get(a["id"])
    assert rejected.status == "failed" and rejected.error["code"] == "lost_on_restart"
    assert rejected.error["details"]["reason"] == "rejected" and not service2.tracking.tracks(a["id"])


async def test_install_requeues_when_the_app_starts(aiohttp_client, client, host, service, clock, fixtures_dir):
    job = await (await client.post("/myspinbot/jobs", data=form(fixtures_dir, 0))).json()
    api2 = fake_host.restart(host, clock)  # recover() ran; resume() and retention wait for the app to start
    host2 = api2.service.host
    assert api2.recovered.requeue == [job["id"]] and host2.prompts == {}
    client2 = await aiohttp_client(api2.app)  # starting the app runs on_startup
    assert host2.pending == [job["id"]] and api2.retention._periodic.running
    body = await (await client2.get(f"/myspinbot/jobs/{job['id']}")).json()
    assert body["status"] == "queued" and body["queue_position"] == 1
    await client2.close()
    assert not api2.retention._periodic.running


# --- retention -----------------------------------------------------------------------------

def test_retention_settings_come_from_the_environment(service):
    assert Settings.from_env({}).job_retention_days == 30
    for raw, days in [("7", 7.0), ("0.5", 0.5), ("0", None), ("-1", None), ("off", None), ("NEVER", None), ("lots", 30.0),
                      ("nan", 30.0)]:
        assert Settings.from_env({"MYSPINBOT_JOB_RETENTION_DAYS": raw}).job_retention_days == days, raw
    assert Settings.from_env({"MYSPINBOT_JOB_RETENTION_SWEEP_S": "60"}).job_retention_sweep_s == 60
    assert Settings.from_env({"MYSPINBOT_JOB_RETENTION_SWEEP_S": "0"}).job_retention_sweep_s == 3600
    retention = Retention.from_settings(service, Settings(job_retention_days="off", job_retention_sweep_s=60))
    assert retention.days is None and retention.interval_s == 60


async def finished_job(client, host, fixtures_dir, seed: int, *, succeed: bool = True) -> dict:
    job = await (await client.post("/myspinbot/jobs", data=form(fixtures_dir, seed))).json()
    files = {node_by_title(host.prompts[job["id"]], "Save video"): b"video"} if succeed else {}
    host.run_success(job["id"], files)
    return job


async def test_finished_jobs_past_the_retention_expire_and_lose_their_files(client, host, service, clock, fixtures_dir):
    portrait, audio = await upload_inputs(client, fixtures_dir)
    old = await finished_job(client, host, fixtures_dir, 0)
    old_failed = await finished_job(client, host, fixtures_dir, 1, succeed=False)
    by_asset = await (await client.post("/myspinbot/jobs", json=lite_body(portrait, audio))).json()
    host.run_success(by_asset["id"], {node_by_title(host.prompts[by_asset["id"]], "Save video"): b"video"})
    clock.now += 20 * DAY
    young = await finished_job(client, host, fixtures_dir, 2)
    running = await (await client.post("/myspinbot/jobs", data=form(fixtures_dir, 3))).json()
    host.emit("execution_start", prompt_id=running["id"])
    clock.now += 15 * DAY  # the first three finished 35 days ago, `young` 15 days ago
    assets = sorted(p.name for p in (host.input_dir / "myspinbot" / "assets").iterdir())

    retention = Retention(service, days=30)
    expired = retention.sweep()
    assert sorted(expired) == sorted([old["id"], old_failed["id"], by_asset["id"]])
    for job_id in expired:
        job = await (await client.get(f"/myspinbot/jobs/{job_id}")).json()
        assert job["status"] == "expired" and job["outputs"] == [] and "expired" in job["progress"]["message"]
        assert not (host.output_dir / "myspinbot" / job_id).exists() and not (host.input_dir / "myspinbot" / job_id).exists()
        assert service.store.prompt(job_id) is None
        r = await client.get(f"/myspinbot/jobs/{job_id}/outputs/video")
        assert r.status == 404
    assert service.get(old_failed["id"]).error["code"] == "output_missing"  # what it was stays readable
    assert sorted(p.name for p in (host.input_dir / "myspinbot" / "assets").iterdir()) == assets  # shared: kept
    assert service.get(young["id"]).status == "succeeded" and service.output_path(service.get(young["id"]), "video")
    assert service.get(running["id"]).status == "running"
    assert (host.input_dir / "myspinbot" / young["id"]).is_dir()
    listed = await (await client.get("/myspinbot/jobs?status=expired")).json()
    assert len(listed["jobs"]) == 3
    assert retention.sweep() == []  # expired stays expired
    assert (await (await client.post(f"/myspinbot/jobs/{old['id']}/cancel")).json())["status"] == "expired"
    assert "expired" in TERMINAL


async def test_retention_off_keeps_everything(client, host, service, clock, fixtures_dir):
    job = await finished_job(client, host, fixtures_dir, 0)
    clock.now += 1000 * DAY
    assert Retention(service, days=None).sweep() == [] and service.get(job["id"]).status == "succeeded"


def test_job_folders_never_name_the_shared_assets(tmp_path):
    assert job_folder(tmp_path, "0f6a") == tmp_path / "myspinbot" / "0f6a"
    for bad in ("assets", "", ".", "..", "../x", "a/b", "a\\b", ".hidden"):
        assert job_folder(tmp_path, bad) is None


async def test_the_periodic_sweep_runs_at_start_and_on_its_interval(client, host, service, clock, fixtures_dir):
    job = await finished_job(client, host, fixtures_dir, 0)
    retention = Retention(service, days=1, interval_s=0.05)
    retention.start()
    await asyncio.sleep(0.02)
    assert service.get(job["id"]).status == "succeeded"
    clock.now += 2 * DAY
    for _ in range(50):
        if service.get(job["id"]).status == "expired":
            break
        await asyncio.sleep(0.02)
    await retention.stop()
    assert service.get(job["id"]).status == "expired"
