"""The servers of a shared queue (``repos/servers.py``, PostgreSQL migration 4): each heartbeat
records a server (host, models on disk, busy/idle, the jobs it holds); ``/capabilities`` and
``/metrics`` show them; a job requiring models is claimed only by a server that has them, and
the preflight (409 ``models_missing``) passes when some live server has them. SQLite has none of it."""

from __future__ import annotations

import asyncio

from fake_host import FakeHost, compose_app, place_models
from myspinbot.server.settings import Settings
from shared_servers import add_jobs

F5_MODELS = ["F5TTS_v1_Base", "vocos_mel_24khz"]


def test_sqlite_has_no_servers_table(tmp_path):
    from myspinbot.server.store import JobStore

    store = JobStore(tmp_path / "jobs.sqlite3")
    try:
        assert store.servers is None and store.claims is None
        with store.db.read() as conn:
            names = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall()}
        assert "servers" not in names
    finally:
        store.close()


def test_a_job_requiring_models_is_claimed_only_by_a_server_that_has_them(servers):
    a = servers("a", models=lambda: ["m1"])
    b = servers("b", models=lambda: ["m1", "m2"])
    needs_m2, plain = add_jobs(a.store, 2)
    a.store.servers.set_requires(needs_m2, ["m2"])
    assert a.store.servers.requires(needs_m2) == ["m2"]
    a.queue.beat(busy=False)
    b.queue.beat(busy=False)
    job, _ = a.queue.claim()
    assert job.id == plain  # the older job needs m2: a skips it
    assert a.queue.claim() is None
    job, claim = b.queue.claim()
    assert job.id == needs_m2 and claim.worker == "b"

    a.queue.beat(busy=True)
    rows = {s["id"]: s for s in a.queue.servers()}
    assert rows["a"]["models"] == ["m1"] and rows["a"]["state"] == "busy" and rows["a"]["running"] == [plain]
    assert rows["b"]["models"] == ["m1", "m2"] and rows["b"]["state"] == "idle" and rows["b"]["running"] == []
    assert all(s["live"] for s in rows.values())
    assert a.store.servers.any_live_with(["m2"], 30.0) and not a.store.servers.any_live_with(["m3"], 30.0)
    assert not a.store.servers.any_live_with(["m2"], -1.0)  # no heartbeat that recent: none live


async def test_capabilities_and_metrics_list_the_servers_and_the_preflight_asks_every_live_one(
        aiohttp_client, postgres_url, s3_env, tmp_path, fixtures_dir):
    from test_job_f5_pipeline import submit

    def settings(name: str) -> Settings:
        return Settings(database_url=postgres_url, server_id=name, claim_poll_s=0.05, lease_s=5.0, s3_env=s3_env)

    host_a, host_b = FakeHost(tmp_path / "a"), FakeHost(tmp_path / "b")
    host_a.pending.append("a-busy")
    api_a = compose_app(host_a, settings("a"))
    client_a = await aiohttp_client(api_a.app)
    api_b = client_b = None
    try:
        for _ in range(200):  # a's first heartbeat
            if api_a.store.servers.all():
                break
            await asyncio.sleep(0.025)
        # nobody has the f5 models: refused before anything is queued
        r = await submit(client_a, fixtures_dir, script="Hello there.")
        assert r.status == 409 and (await r.json())["error"]["code"] == "models_missing"

        place_models(host_b, F5_MODELS)  # b has them
        api_b = compose_app(host_b, settings("b"))
        client_b = await aiohttp_client(api_b.app)
        for _ in range(200):
            if len(api_a.store.servers.all()) == 2:
                break
            await asyncio.sleep(0.025)
        r = await submit(client_a, fixtures_dir, script="Hello there.")  # a lacks them, but live server b has them
        assert r.status == 202, await r.text()
        job_id = (await r.json())["id"]
        assert sorted(api_a.store.servers.requires(job_id)) == F5_MODELS
        for _ in range(200):
            if job_id in host_b.pending:
                break
            await asyncio.sleep(0.025)
        assert job_id in host_b.pending and job_id not in host_a.prompts

        caps = await (await client_a.get("/myspinbot/capabilities")).json()
        by_id = {s["id"]: s for s in caps["servers"]}
        assert set(by_id) == {"a", "b"} and all(s["live"] for s in by_id.values())
        assert set(F5_MODELS) <= set(by_id["b"]["models"]) and not set(F5_MODELS) & set(by_id["a"]["models"])
        assert by_id["a"]["state"] == "busy"
        for _ in range(200):
            caps = await (await client_b.get("/myspinbot/capabilities")).json()
            if {s["id"]: s for s in caps["servers"]}["b"]["running"] == [job_id]:
                break
            await asyncio.sleep(0.025)
        assert {s["id"]: s for s in caps["servers"]}["b"]["state"] == "busy"

        text = await (await client_b.get("/myspinbot/metrics")).text()
        assert 'server="a"} 1.0' in text and "myspinbot_server_up{host=" in text and 'server="b"} 1.0' in text
        assert 'myspinbot_server_busy{server="b"} 1.0' in text
        assert "myspinbot_server_heartbeat_age_seconds" in text and "myspinbot_server_models" in text
    finally:
        for client in (client_a, client_b):
            if client is not None:
                await client.close()
        api_a.store.close()
        if api_b is not None:
            api_b.store.close()


async def test_a_single_server_reports_no_servers(client):
    caps = await (await client.get("/myspinbot/capabilities")).json()
    assert caps.get("servers") is None
    assert "myspinbot_server_up" not in await (await client.get("/myspinbot/metrics")).text()
