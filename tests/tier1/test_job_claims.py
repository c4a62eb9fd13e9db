"""Several servers on one PostgreSQL job queue (``repos/claims.py``, ``jobs/claiming.py``), against
a real PostgreSQL (``postgres_url``): two claimers never get the same job; a write for an attempt
whose claim is gone is rejected (the attempt is the fencing token); an expired lease is reclaimed
(queued again, then ``failed`` with ``lost_worker`` after the last attempt); a renewed one is
not; a job is claimed only by an idle server that has its pipeline; cancel from another server.

Leases are measured on the database's clock: these tests use leases of a fraction of a second
and wait them out.
"""

from __future__ import annotations

import threading
import time

import pytest

from fake_host import Clock, FakeHost
from myspinbot.server.jobs import JobService
from myspinbot.server.jobs.claiming import SharedQueue
from myspinbot.server.jobs.lifecycle import LOST_WORKER, RECLAIMED_MESSAGE
from myspinbot.server.model import CANCELED, CANCELING, FAILED, QUEUED, RUNNING, SUCCEEDED, Job
from myspinbot.server.pipelines import builtin_pipelines
from myspinbot.server.settings import Settings
from myspinbot.server.store import JobStore, LeaseLost, PromptRecord

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


@pytest.fixture
def servers(postgres_url, tmp_path):
    made: list[Server] = []

    def make(name: str, **options) -> Server:
        made.append(Server(name, postgres_url, tmp_path, **options))
        return made[-1]

    yield make
    for server in made:
        server.close()


def add_jobs(store: JobStore, n: int, pipeline: str = "lite", start: float = 1_800_000_000.0) -> list[str]:
    ids = [f"job-{pipeline}-{i:03d}" for i in range(n)]
    with store.db.transaction():
        for i, job_id in enumerate(ids):
            store.save(Job(id=job_id, pipeline=pipeline, status=QUEUED, created_at=start + i))
            store.save_prompt(PromptRecord(job_id, PROMPT, {}, {}))
    return ids


def test_two_claimers_never_get_the_same_job(servers):
    a, b = servers("a"), servers("b")
    ids = add_jobs(a.store, 60)
    got: list[tuple[str, str, int]] = []
    start = threading.Barrier(8)

    def claim_all(server: Server, worker: str) -> None:
        start.wait()
        while (claimed := server.store.claims.claim(worker, 30.0)) is not None:
            got.append((claimed[0].id, worker, claimed[1].attempt))

    threads = [threading.Thread(target=claim_all, args=(server, f"{server.name}{n}"))
               for server in (a, b) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert sorted(j for j, _, _ in got) == ids  # every job once, none twice
    assert {attempt for _, _, attempt in got} == {1}
    assert len({w for _, w, _ in got}) > 1  # they really competed
    assert a.store.claims.claim("late", 30.0) is None


def test_claims_take_the_oldest_job_of_the_servers_pipelines(servers):
    a = servers("a", pipelines=("animate",))
    add_jobs(a.store, 2, "lite")
    animate = add_jobs(a.store, 2, "animate", start=1_900_000_000.0)
    job, claim = a.queue.claim()
    assert (job.id, claim.attempt, claim.worker) == (animate[0], 1, "a")
    assert a.store.held() == [claim]


def test_a_write_for_an_attempt_whose_claim_is_gone_is_rejected(servers):
    a, b = servers("a", lease_s=0.4), servers("b")
    [job_id] = add_jobs(a.store, 1)
    job, old = a.queue.claim()
    a.service.lifecycle.start(job)  # fenced, within the lease: written
    assert b.store.get(job_id).status == RUNNING

    time.sleep(0.6)  # a stalls past its lease (a paused process)
    late = a.store.get(job_id)
    with pytest.raises(LeaseLost):
        a.service.lifecycle.succeed(late, [])
    assert b.store.get(job_id).status == RUNNING and a.store.held() == []

    assert b.queue.reclaim().requeued == [job_id]
    again, new = b.queue.claim()
    assert (again.id, new.attempt, new.worker) == (job_id, 2, "b")
    # The old attempt's token no longer matches, whatever the lease: its write changes nothing.
    stale = b.store.get(job_id)
    stale.status, stale.progress = SUCCEEDED, 1.0
    assert not a.store.claims.save_fenced(stale, old)
    assert a.store.claims.renew(old, 30.0) is None
    assert b.store.get(job_id).status == QUEUED and b.store.claims.current(job_id) == new
    # The current attempt writes.
    b.service.lifecycle.start(b.store.get(job_id))
    b.service.lifecycle.succeed(b.store.get(job_id), [])
    done = a.store.get(job_id)
    assert done.status == SUCCEEDED and b.store.claims.current(job_id) is None and b.store.held() == []


def test_an_expired_lease_is_reclaimed_until_the_last_attempt_then_the_job_fails_lost_worker(servers):
    a, b = servers("a", lease_s=0.3), servers("b", lease_s=0.3)
    [job_id] = add_jobs(a.store, 1)
    for attempt, (holder, reclaimer) in enumerate(((a, b), (b, a), (a, b)), start=1):
        job, claim = holder.queue.claim()
        assert (job.id, claim.attempt) == (job_id, attempt)
        holder.service.lifecycle.start(job)
        assert reclaimer.queue.reclaim().requeued == []  # the lease still holds
        time.sleep(0.5)  # the holder died
        outcome = reclaimer.queue.reclaim()
        if attempt < 3:
            assert outcome.requeued == [job_id]
            requeued = reclaimer.store.get(job_id)
            assert (requeued.status, requeued.message, requeued.started_at, requeued.progress) == (
                QUEUED, RECLAIMED_MESSAGE, None, 0.0)
        else:
            assert outcome.abandoned == [job_id]
    failed = a.store.get(job_id)
    assert failed.status == FAILED and failed.error["code"] == LOST_WORKER
    assert failed.error["details"] == {"attempts": 3}
    assert a.queue.claim() is None and b.queue.reclaim().abandoned == []


def test_a_renewed_lease_is_not_reclaimed(servers):
    a, b = servers("a", lease_s=0.5), servers("b")
    [job_id] = add_jobs(a.store, 1)
    job, claim = a.queue.claim()
    a.service.lifecycle.start(job)
    for _ in range(6):  # 1.2 s: more than twice the lease
        time.sleep(0.2)
        assert a.queue.heartbeat() == ([], [])
        assert b.queue.reclaim().requeued == []
    assert a.store.claims.current(job_id).lease_until > claim.lease_until
    a.service.lifecycle.succeed(a.store.get(job_id), [])  # still a's: written
    assert b.store.get(job_id).status == SUCCEEDED


async def test_an_idle_server_claims_and_queues_the_job_and_a_busy_one_does_not(servers):
    a, b = servers("a"), servers("b")
    first, second = add_jobs(a.store, 2)
    b.host.pending.append("someone-elses-prompt")  # b's ComfyUI is busy
    assert await b.queue.tick() is None
    queued = await a.queue.tick()
    assert queued.id == first and a.host.pending == [first] and a.host.prompts[first] == PROMPT
    assert await a.queue.tick() is None  # a holds a job: it claims no second one
    a.host.run_success(first, {})
    assert a.store.get(first).status == SUCCEEDED and a.store.held() == []
    assert (await a.queue.tick()).id == second


async def test_cancel_from_another_server_stops_the_prompt_where_it_runs(servers):
    a, b = servers("a"), servers("b")
    [job_id] = add_jobs(a.store, 1)
    await a.queue.tick()
    a.host.emit("execution_start", prompt_id=job_id)
    assert a.store.get(job_id).status == RUNNING

    assert b.service.cancel(job_id).status == CANCELING  # b does not run it: it asks
    # a's next progress write cannot undo the cancel request
    a.host.emit("executing", node="1", prompt_id=job_id)
    assert a.store.get(job_id).status == CANCELING
    await a.queue.tick()  # heartbeat: a sees it and interrupts its prompt (that one only)
    assert a.host.interrupts == [job_id]
    a.host.emit("execution_interrupted", prompt_id=job_id)
    assert b.store.get(job_id).status == CANCELED and a.store.held() == []


async def test_cancel_of_a_claimed_job_still_pending_on_its_server_ends_it_at_the_next_heartbeat(servers):
    a, b = servers("a"), servers("b")
    [job_id] = add_jobs(a.store, 1)
    await a.queue.tick()
    assert b.service.cancel(job_id).status == CANCELING
    await a.queue.tick()
    assert a.host.pending == [] and a.store.get(job_id).status == CANCELED and a.store.held() == []


# --- two servers composed as production composes them (server.app.compose) -----------------------

async def test_two_composed_servers_share_one_queue_and_one_history(aiohttp_client, postgres_url, tmp_path, fixtures_dir):
    import asyncio

    import aiohttp

    from fake_host import compose_app

    def settings(name: str) -> Settings:
        return Settings(database_url=postgres_url, server_id=name, claim_poll_s=0.05, lease_s=5.0)

    host_a, host_b = FakeHost(tmp_path / "a"), FakeHost(tmp_path / "b")
    host_a.pending.append("a-busy")  # a's ComfyUI is busy with something else: b must take the job
    api_a, api_b = compose_app(host_a, settings("a")), compose_app(host_b, settings("b"))
    assert api_a.shared_queue.worker == "a" and api_b.shared_queue.worker == "b"
    client_a, client_b = await aiohttp_client(api_a.app), await aiohttp_client(api_b.app)
    try:
        data = aiohttp.FormData()
        data.add_field("pipeline", "lite")
        data.add_field("portrait", (fixtures_dir / "portrait_astronaut.png").read_bytes(), filename="me.png",
                       content_type="image/png")
        data.add_field("audio", (fixtures_dir / "speech_front_left.wav").read_bytes(), filename="speech.wav",
                       content_type="audio/wav")
        r = await client_a.post("/myspinbot/jobs", data=data)
        assert r.status == 202, await r.text()
        job_id = (await r.json())["id"]
        for _ in range(200):
            if job_id in host_b.pending:
                break
            await asyncio.sleep(0.025)
        assert host_b.pending == [job_id] and job_id not in host_a.prompts
        assert api_b.store.claims.current(job_id).worker == "b"

        # a's event stream of the job follows it although b runs it (NOTIFY: jobs/event_relay.py)
        from test_job_events import drain, next_event

        for _ in range(200):
            if api_a.event_relay.listening:
                break
            await asyncio.sleep(0.025)
        stream = await client_a.get(f"/myspinbot/jobs/{job_id}/events")
        assert (await next_event(stream))[0] == "snapshot"
        host_b.emit("execution_start", prompt_id=job_id)
        kind, status = await next_event(stream)
        assert (kind, status["status"]) == ("status", "running")

        prompt = host_b.prompts[job_id]
        saver = next(n for n, node in prompt.items() if node.get("_meta", {}).get("title") == "Save video")
        host_b.run_success(job_id, {saver: b"fake mp4 bytes"})
        rest = await drain(stream, 3.0)
        assert rest[-1][0] == "status" and rest[-1][1]["status"] == "succeeded", rest
        assert "output" in [k for k, _ in rest]
        assert await next_event(stream) is None  # a closed the stream at the final status
        seen_a = await (await client_a.get(f"/myspinbot/jobs/{job_id}")).json()
        seen_b = await (await client_b.get(f"/myspinbot/jobs/{job_id}")).json()
        assert seen_a["status"] == "succeeded" and seen_a == seen_b
        list_a = await (await client_a.get("/myspinbot/jobs")).json()
        list_b = await (await client_b.get("/myspinbot/jobs")).json()
        assert list_a == list_b and [j["id"] for j in list_a["jobs"]] == [job_id]
    finally:
        await client_a.close()
        await client_b.close()
        api_a.store.close()
        api_b.store.close()


# --- webhook deliveries: one server takes each due delivery ---------------------------------------

def test_a_due_webhook_delivery_is_leased_by_exactly_one_server(servers):
    from myspinbot.server.webhook_store import PENDING, Delivery

    a, b = servers("a"), servers("b")
    deliveries = [Delivery(f"msg_{n:02d}", "job", "job.status", "https://example.com/hook", "{}", 0, 10.0, PENDING,
                           None, None, 1.0, 1.0) for n in range(30)]
    for delivery in deliveries:
        a.store.webhooks.add_delivery(delivery)
    won: list[tuple[str, str]] = []
    start = threading.Barrier(4)

    def take(server: Server) -> None:
        start.wait()
        for delivery in server.store.webhooks.due(20.0, 100):
            if server.store.webhooks.lease(delivery.id, 100.0, due_by=20.0):
                won.append((delivery.id, server.name))

    threads = [threading.Thread(target=take, args=(s,)) for s in (a, b, a, b)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert sorted(d for d, _ in won) == [d.id for d in deliveries]  # each one leased once
    assert not a.store.webhooks.lease("msg_00", 200.0, due_by=20.0)  # leased: no longer due


async def test_an_idle_server_claims_a_new_job_at_once_without_waiting_for_its_poll(servers):
    import asyncio

    a, b = servers("a", poll_s=60.0), servers("b", poll_s=60.0)
    b.queue.start()
    try:
        for _ in range(200):
            if b.queue._listener.listening.is_set():
                break
            await asyncio.sleep(0.025)
        await asyncio.sleep(0.1)  # b's first round (nothing to claim) is over: it waits 60 s now
        [job_id] = add_jobs(a.store, 1)
        a.store.claims.announce(job_id)  # what submit does
        for _ in range(200):
            if job_id in b.host.pending:
                break
            await asyncio.sleep(0.025)
        assert b.host.pending == [job_id]
    finally:
        await b.queue.stop()


def test_servers_sweeping_retention_at_once_expire_each_job_once(servers):
    from myspinbot.server.events import STATUS
    from myspinbot.server.model import EXPIRED
    from myspinbot.server.retention import Retention

    a, b = servers("a"), servers("b")
    ids = [f"old-{n:03d}" for n in range(40)]
    with a.store.db.transaction():
        for job_id in ids:
            a.store.save(Job(id=job_id, pipeline="lite", status=SUCCEEDED, created_at=1.0, completed_at=2.0))
    expired_events: list[str] = []
    for server in (a, b):
        server.service.events.listen(lambda e: expired_events.append(e.job.id) if e.kind == STATUS else None)
    swept: list[list[str]] = []
    start = threading.Barrier(2)

    def sweep(server: Server) -> None:
        start.wait()
        swept.append(Retention(server.service, days=1).sweep())

    threads = [threading.Thread(target=sweep, args=(s,)) for s in (a, b)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert sorted(swept[0] + swept[1]) == ids and sorted(expired_events) == ids  # once each, in all
    assert {j.status for j in a.store.page(limit=100)} == {EXPIRED}


# --- the database goes away and comes back ---------------------------------------------------------

async def test_while_the_database_is_down_the_api_answers_503_and_resumes_when_it_is_back(aiohttp_client, tmp_path,
                                                                                            fixtures_dir):
    import asyncio

    from fake_host import compose_app
    from pg_server import PostgresServer

    own = PostgresServer().start()  # this test stops it: not the session's server
    api = None
    try:
        host = FakeHost(tmp_path / "a")
        api = compose_app(host, Settings(database_url=own.create_database(), server_id="a", claim_poll_s=0.05))
        client = await aiohttp_client(api.app)
        assert (await client.get("/myspinbot/jobs")).status == 200

        await asyncio.to_thread(own.pause)
        started = time.monotonic()
        answers = [await client.get("/myspinbot/jobs") for _ in range(3)]
        assert [r.status for r in answers] == [503, 503, 503]
        body = await answers[-1].json()
        assert body["error"]["code"] == "database_unavailable" and answers[-1].headers["Retry-After"] == "5"
        assert time.monotonic() - started < 3.0  # answered at once, not after a connection timeout
        r = await client.get("/myspinbot/health")
        assert r.status == 200  # ComfyUI and the pack keep serving what needs no database

        await asyncio.to_thread(own.resume)
        for _ in range(100):
            r = await client.get("/myspinbot/jobs")
            if r.status == 200:
                break
            await asyncio.sleep(0.1)
        assert r.status == 200
        data = aiohttp_form(fixtures_dir)
        r = await client.post("/myspinbot/jobs", data=data)
        assert r.status == 202, await r.text()
        job_id = (await r.json())["id"]
        for _ in range(100):  # and the shared queue runs again: this idle server claims it
            if job_id in host.pending:
                break
            await asyncio.sleep(0.05)
        assert host.pending == [job_id]
    finally:
        if api is not None:
            api.store.close()
        own.stop()


def aiohttp_form(fixtures_dir):
    import aiohttp

    data = aiohttp.FormData()
    data.add_field("pipeline", "lite")
    data.add_field("portrait", (fixtures_dir / "portrait_astronaut.png").read_bytes(), filename="me.png",
                   content_type="image/png")
    data.add_field("audio", (fixtures_dir / "speech_front_left.wav").read_bytes(), filename="speech.wav",
                   content_type="audio/wav")
    return data


async def test_a_held_job_whose_run_ended_unrecorded_is_given_up_and_runs_again(servers):
    a = servers("a")
    [job_id] = add_jobs(a.store, 1)
    await a.queue.tick()
    # ComfyUI finished the prompt while the database was down: the tracker could not record it
    a.service.tracking.forget(job_id)
    a.host.pending.clear()
    await a.queue.tick()  # given up, reclaimed (queued again) and, this server being idle, claimed again
    assert a.store.claims.current(job_id).attempt == 2 and a.host.pending == [job_id]
    assert a.store.get(job_id).message == RECLAIMED_MESSAGE


async def test_clearing_comfyuis_queue_cancels_the_held_job_only(servers):
    import asyncio

    from myspinbot.server.reconcile import REMOVED_MESSAGE

    a, b = servers("a"), servers("b")
    mine, theirs = add_jobs(a.store, 2)
    a.queue.observe()
    await a.queue.tick()
    assert a.host.pending == [mine]
    a.host.clear()  # core's Clear queue on a's ComfyUI
    await asyncio.sleep(0.05)
    job = b.store.get(mine)
    assert (job.status, job.message) == (CANCELED, REMOVED_MESSAGE) and a.store.held() == []
    assert b.store.get(theirs).status == QUEUED  # waiting in the database, untouched
