"""Queue depth limit, listing, queue positions, stages and cancel (tier 1, fake host)."""

from __future__ import annotations

import asyncio
import io

import aiohttp
import pytest

from fake_host import lite_body, restart, upload_inputs  # noqa: F401
from myspinbot.server.jobs import JobService
from myspinbot.server.settings import Settings
from myspinbot.server.model import Job
from myspinbot.server.pipelines import builtin_pipelines, node_by_title
from myspinbot.server.store import JobStore


def form(fixtures_dir) -> aiohttp.FormData:
    data = aiohttp.FormData()
    data.add_field("pipeline", "lite")
    data.add_field("portrait", io.BytesIO((fixtures_dir / "portrait_astronaut.png").read_bytes()), filename="me.png")
    data.add_field("audio", io.BytesIO((fixtures_dir / "speech_front_left.wav").read_bytes()), filename="speech.wav")
    return data


def staged(host) -> set[str]:
    root = host.input_dir / "myspinbot"
    return {p.name for p in root.iterdir() if p.name != "assets"} if root.exists() else set()


def all_jobs(service) -> list[Job]:
    return service.store.page(limit=1000)


async def submit(client, fixtures_dir, **options) -> dict:
    portrait, audio = await upload_inputs(client, fixtures_dir)
    r = await client.post("/myspinbot/jobs", json=lite_body(portrait, audio, **options))
    assert r.status == 202, await r.text()
    return await r.json()


# --- queue depth ---------------------------------------------------------------------------

async def test_queue_full_is_429_with_retry_after_and_creates_nothing(client, host, service, fixtures_dir):
    service.max_queued = 2
    first = [await client.post("/myspinbot/jobs", data=form(fixtures_dir)) for _ in range(2)]
    assert [r.status for r in first] == [202, 202]
    before = staged(host)
    assert len(before) == 2
    for body in (form(fixtures_dir), None):
        if body is None:
            portrait, audio = await upload_inputs(client, fixtures_dir)
            r = await client.post("/myspinbot/jobs", json=lite_body(portrait, audio))
        else:
            r = await client.post("/myspinbot/jobs", data=body)
        assert r.status == 429, await r.text()
        assert int(r.headers["Retry-After"]) > 0
        err = (await r.json())["error"]
        assert err["code"] == "queue_full" and err["details"]["max_queued"] == 2 and err["details"]["queued"] == 2
    assert staged(host) == before and len(all_jobs(service)) == 2 and len(host.prompts) == 2


async def test_racing_submissions_never_overshoot_the_limit(client, host, service, fixtures_dir):
    service.max_queued = 2
    host.enqueue_delay = 0.01
    responses = await asyncio.gather(*(client.post("/myspinbot/jobs", data=form(fixtures_dir)) for _ in range(6)))
    statuses = sorted(r.status for r in responses)
    assert statuses == [202, 202, 429, 429, 429, 429]
    accepted = {(await r.json())["id"] for r in responses if r.status == 202}
    assert staged(host) == accepted and {j.id for j in all_jobs(service)} == accepted and set(host.prompts) == accepted


async def test_a_started_job_frees_its_place(client, host, service, fixtures_dir):
    service.max_queued = 1
    job = await submit(client, fixtures_dir)
    portrait, audio = await upload_inputs(client, fixtures_dir)
    assert (await client.post("/myspinbot/jobs", json=lite_body(portrait, audio, seed=1))).status == 429
    host.emit("execution_start", prompt_id=job["id"])
    assert (await client.post("/myspinbot/jobs", json=lite_body(portrait, audio, seed=1))).status == 202


async def test_a_replay_is_served_even_when_the_queue_is_full(client, host, service, fixtures_dir):
    service.max_queued = 1
    portrait, audio = await upload_inputs(client, fixtures_dir)
    headers = {"Idempotency-Key": "abc"}
    first = await client.post("/myspinbot/jobs", json=lite_body(portrait, audio), headers=headers)
    again = await client.post("/myspinbot/jobs", json=lite_body(portrait, audio), headers=headers)
    assert first.status == 202 and again.status == 200
    assert (await again.json())["id"] == (await first.json())["id"]


def test_max_queued_comes_from_the_settings(host, tmp_path):
    store = JobStore(tmp_path / "jobs.sqlite3")
    assert JobService(host, store, builtin_pipelines(), Settings.from_env({"MYSPINBOT_MAX_QUEUED": "3"})).max_queued == 3
    assert JobService(host, store, builtin_pipelines(), Settings.from_env({"MYSPINBOT_MAX_QUEUED": "lots"})).max_queued == 100
    assert JobService(host, store, builtin_pipelines(), Settings.from_env({})).max_queued == 100
    assert JobService(host, store, builtin_pipelines(), Settings(max_queued=7)).max_queued == 7


def test_the_service_never_reads_the_environment(host, tmp_path, monkeypatch):
    monkeypatch.setenv("MYSPINBOT_MAX_QUEUED", "3")  # read once, by plugin.attach (Settings.from_env)
    assert JobService(host, JobStore(tmp_path / "jobs.sqlite3"), builtin_pipelines()).max_queued == 100


# --- listing -------------------------------------------------------------------------------

async def test_list_is_newest_first_with_cursor_pages_and_filters(client, host, service, clock, fixtures_dir):
    ids = [(await submit(client, fixtures_dir, seed=i))["id"] for i in range(7)]
    host.emit("execution_start", prompt_id=ids[1])
    host.emit("execution_start", prompt_id=ids[4])
    newest_first = ids[::-1]

    seen, cursor, pages = [], None, 0
    while True:
        r = await client.get("/myspinbot/jobs", params={"limit": 3, **({"cursor": cursor} if cursor else {})})
        assert r.status == 200, await r.text()
        page = await r.json()
        assert set(page) == {"jobs", "next_cursor"}
        seen += [j["id"] for j in page["jobs"]]
        pages += 1
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == newest_first and pages == 3

    running = await (await client.get("/myspinbot/jobs?status=running")).json()
    assert [j["id"] for j in running["jobs"]] == [ids[4], ids[1]] and running["next_cursor"] is None
    both = await (await client.get("/myspinbot/jobs?status=running,queued&limit=100")).json()
    assert len(both["jobs"]) == 7
    queued = await (await client.get("/myspinbot/jobs?status=queued&pipeline=lite&limit=2")).json()
    assert [j["id"] for j in queued["jobs"]] == [ids[6], ids[5]]
    assert [j["queue_position"] for j in queued["jobs"]] == [5, 4]
    follow = await (await client.get(f"/myspinbot/jobs?status=queued&pipeline=lite&limit=2&cursor={queued['next_cursor']}")).json()
    assert [j["id"] for j in follow["jobs"]] == [ids[3], ids[2]]
    none = await (await client.get("/myspinbot/jobs?pipeline=full")).json()
    assert none == {"jobs": [], "next_cursor": None}


async def test_list_orders_ties_on_created_at_stably(client, host, service, clock, fixtures_dir):
    clock.step = 0.0  # every job gets the same created_at
    ids = {(await submit(client, fixtures_dir, seed=i))["id"] for i in range(5)}
    seen, cursor = [], None
    while True:
        page = await (await client.get("/myspinbot/jobs", params={"limit": 2, **({"cursor": cursor} if cursor else {})})).json()
        seen += [j["id"] for j in page["jobs"]]
        if (cursor := page["next_cursor"]) is None:
            break
    assert seen == sorted(ids, reverse=True)


@pytest.mark.parametrize("query, field", [
    ("status=done", "status"), ("limit=0", "limit"), ("limit=101", "limit"), ("limit=ten", "limit"),
    ("cursor=not-a-cursor", "cursor"), ("cursor=WzEsMl0", "cursor"), ("sort=asc", "sort"),
])
async def test_bad_list_queries_are_422(client, query, field):
    r = await client.get(f"/myspinbot/jobs?{query}")
    assert r.status == 422, await r.text()
    assert (await r.json())["error"]["details"]["field"] == field


# --- queue position and stages -------------------------------------------------------------

async def test_queue_position_follows_comfyui_queue(client, host, fixtures_dir):
    a, b, c = [await submit(client, fixtures_dir, seed=i) for i in range(3)]
    assert [a["queue_position"], b["queue_position"], c["queue_position"]] == [1, 2, 3]
    host.emit("execution_start", prompt_id=a["id"])
    now = {j: (await (await client.get(f"/myspinbot/jobs/{j}")).json()) for j in (a["id"], b["id"], c["id"])}
    assert now[a["id"]]["status"] == "running" and now[a["id"]]["queue_position"] is None
    assert now[b["id"]]["queue_position"] == 1 and now[c["id"]]["queue_position"] == 2


async def test_progress_reports_the_title_based_stages(client, host, fixtures_dir):
    job = await submit(client, fixtures_dir)
    prompt = host.prompts[job["id"]]
    url = job["urls"]["self"]

    async def progress():
        return (await (await client.get(url)).json())["progress"]

    host.emit("execution_start", prompt_id=job["id"])
    assert (await progress())["stage"] is None
    host.emit("executing", node=node_by_title(prompt, "Portrait"), prompt_id=job["id"])
    assert (await progress())["stage"] is None  # the portrait loader belongs to no stage
    host.emit("executing", node=node_by_title(prompt, "Speech recording"), prompt_id=job["id"])
    p = await progress()
    assert (p["value"], p["stage"], p["message"], p["stage_index"], p["stages"]) == (0.0, "speech", "preparing the speech", 0, 4)
    host.emit("executing", node=node_by_title(prompt, "Animate portrait"), prompt_id=job["id"])
    host.emit("progress", node=node_by_title(prompt, "Animate portrait"), value=5, max=10, prompt_id=job["id"])
    p = await progress()
    assert p["stage"] == "animate" and p["message"] == "animating the portrait" and (p["step"], p["steps"]) == (5, 10)
    assert p["value"] == pytest.approx(0.1 + 0.75 * 0.5) and p["stage_index"] == 1  # speech done, animate half
    host.emit("executing", node=node_by_title(prompt, "Save video"), prompt_id=job["id"])
    assert (await progress())["stage"] == "encode"
    host.run_success(job["id"], {node_by_title(prompt, "Save video"): b"mp4"})
    done = await progress()
    assert done["stage"] == "store" and done["value"] == 1.0 and done["message"].startswith("done")


async def test_script_jobs_report_speech_from_the_espeak_node(client, host, fixtures_dir):
    portrait, _ = await upload_inputs(client, fixtures_dir)
    r = await client.post("/myspinbot/jobs", json={"pipeline": "lite", "inputs": {"portrait": {"asset_id": portrait}, "script": "Hi."}})
    job = await r.json()
    prompt = host.prompts[job["id"]]
    host.emit("execution_start", prompt_id=job["id"])
    host.emit("executing", node=node_by_title(prompt, "Script speech"), prompt_id=job["id"])
    assert (await (await client.get(job["urls"]["self"])).json())["progress"]["stage"] == "speech"


# --- cancel --------------------------------------------------------------------------------

async def test_cancel_a_queued_job_removes_it_from_the_queue_at_once(client, host, fixtures_dir):
    a, b = [await submit(client, fixtures_dir, seed=i) for i in range(2)]
    r = await client.post(a["urls"]["cancel"])
    assert r.status == 200
    canceled = await r.json()
    assert canceled["status"] == "canceled" and canceled["completed_at"] and canceled["queue_position"] is None
    assert host.pending == [b["id"]] and host.interrupts == []
    again = await (await client.post(a["urls"]["cancel"])).json()
    assert again == canceled  # idempotent
    assert (await (await client.get(b["urls"]["self"])).json())["queue_position"] == 1


async def test_cancel_a_running_job_interrupts_that_prompt_then_cancels(client, host, fixtures_dir):
    a, b = [await submit(client, fixtures_dir, seed=i) for i in range(2)]
    host.emit("execution_start", prompt_id=a["id"])
    r = await client.post(a["urls"]["cancel"])
    assert r.status == 200 and (await r.json())["status"] == "canceling"
    assert host.interrupts == [a["id"]] and host.pending == [b["id"]]
    assert (await (await client.post(a["urls"]["cancel"])).json())["status"] == "canceling"
    host.emit("execution_interrupted", prompt_id=a["id"], node_id="4")
    done = await (await client.get(a["urls"]["self"])).json()
    assert done["status"] == "canceled" and done["completed_at"] and done["progress"]["message"] == "canceled"
    host.emit("executing", node=None, prompt_id=a["id"])
    assert (await (await client.get(a["urls"]["self"])).json())["status"] == "canceled"
    assert (await (await client.get(b["urls"]["self"])).json())["status"] == "queued"


async def test_cancel_only_ever_interrupts_its_own_prompt(client, host, fixtures_dir):
    a, b = [await submit(client, fixtures_dir, seed=i) for i in range(2)]
    host.emit("execution_start", prompt_id=a["id"])
    assert (await (await client.post(b["urls"]["cancel"])).json())["status"] == "canceled"
    assert host.interrupts == [] and host.running == a["id"]


async def test_cancel_a_finished_job_returns_it_as_is(client, host, fixtures_dir):
    job = await submit(client, fixtures_dir)
    host.run_success(job["id"], {node_by_title(host.prompts[job["id"]], "Save video"): b"mp4"})
    done = await (await client.get(job["urls"]["self"])).json()
    r = await client.post(job["urls"]["cancel"])
    assert r.status == 200 and await r.json() == done and host.interrupts == []


async def test_a_cancel_too_late_to_stop_the_prompt_leaves_its_real_outcome(client, host, fixtures_dir):
    job = await submit(client, fixtures_dir)
    host.emit("execution_start", prompt_id=job["id"])
    assert (await (await client.post(job["urls"]["cancel"])).json())["status"] == "canceling"
    host.run_success(job["id"], {node_by_title(host.prompts[job["id"]], "Save video"): b"mp4"})  # ignored the interrupt
    assert (await (await client.get(job["urls"]["self"])).json())["status"] == "succeeded"


async def test_cancel_a_job_comfyui_no_longer_has(client, host, fixtures_dir):
    job = await submit(client, fixtures_dir)
    host.pending.clear()  # someone cleared ComfyUI's queue
    assert (await (await client.post(job["urls"]["cancel"])).json())["status"] == "canceled"


async def test_cancel_unknown_job_is_404(client):
    r = await client.post("/myspinbot/jobs/00000000-0000-0000-0000-000000000000/cancel")
    assert r.status == 404 and (await r.json())["error"]["code"] == "job_not_found"
    assert (await client.post("/myspinbot/jobs/not-a-job/cancel")).status == 404
    assert (await client.post("/myspinbot/jobs/..%2Fx/cancel")).status == 400  # refused before the handler


def test_restart_finishes_canceling_jobs_as_canceled(host, service):
    service.store.save(Job(id="c", pipeline="lite", status="canceling", created_at=1.0))
    restarted = restart(host)
    assert restarted.recovered.lost == [] and restarted.recovered.canceled == ["c"]
    assert restarted.service.get("c").status == "canceled"


def test_an_older_database_gains_the_new_columns(tmp_path):
    import sqlite3

    path = tmp_path / "old.sqlite3"
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE jobs (id TEXT PRIMARY KEY, pipeline TEXT NOT NULL, status TEXT NOT NULL, created_at REAL NOT NULL, "
               "started_at REAL, completed_at REAL, progress REAL NOT NULL DEFAULT 0, params TEXT NOT NULL DEFAULT '{}', "
               "outputs TEXT NOT NULL DEFAULT '[]', error TEXT)")
    db.execute("INSERT INTO jobs (id, pipeline, status, created_at) VALUES ('old', 'lite', 'succeeded', 1.0)")
    db.commit()
    db.close()
    store = JobStore(path)
    old = store.get("old")
    assert old.status == "succeeded" and old.stage is None and old.message is None
    old.stage = "store"
    store.save(old)
    assert store.get("old").stage == "store"
