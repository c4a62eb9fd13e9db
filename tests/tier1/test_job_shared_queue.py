"""Servers composed as production composes them (``server.app.compose``) on one PostgreSQL job
queue, and what else they share: one history and API from every server, job events relayed by
``LISTEN/NOTIFY``, an idle server woken at once, each webhook delivery taken by one server,
retention expiring each job once, and the API answering 503 while the database is away.
Against a real PostgreSQL; the claims themselves: ``test_job_claims.py``.
"""

from __future__ import annotations

import threading
import time

from fake_host import FakeHost
from myspinbot.server.model import SUCCEEDED, Job
from myspinbot.server.settings import Settings
from shared_servers import Server, add_jobs


# --- two servers composed as production composes them (server.app.compose) -----------------------

async def test_two_composed_servers_share_one_queue_and_one_history(aiohttp_client, postgres_url, s3_env, tmp_path,
                                                                  fixtures_dir):
    import asyncio

    import aiohttp

    from fake_host import compose_app

    def settings(name: str) -> Settings:
        return Settings(database_url=postgres_url, server_id=name, claim_poll_s=0.05, lease_s=5.0, s3_env=s3_env)

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
                                                                                            fixtures_dir, s3_env):
    import asyncio

    from fake_host import compose_app
    from pg_server import PostgresServer

    own = PostgresServer().start()  # this test stops it: not the session's server
    api = None
    try:
        host = FakeHost(tmp_path / "a")
        api = compose_app(host, Settings(database_url=own.create_database(), server_id="a", claim_poll_s=0.05,
                                                  s3_env=s3_env))
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
