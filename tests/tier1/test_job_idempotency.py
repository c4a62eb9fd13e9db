"""``Idempotency-Key`` on ``POST /myspinbot/jobs`` (tier 1, fake host)."""

from __future__ import annotations

import asyncio
import io

import aiohttp
import pytest

from fake_host import lite_body, upload_inputs  # noqa: F401


def job_count(service) -> int:
    return service.store.count_status("queued", "running", "canceling", "succeeded", "failed", "canceled")


async def post(client, body, key=None):
    return await client.post("/myspinbot/jobs", json=body, headers={"Idempotency-Key": key} if key else {})


async def test_replay_returns_the_same_job(client, host, service, fixtures_dir):
    portrait, audio = await upload_inputs(client, fixtures_dir)
    first = await post(client, lite_body(portrait, audio), "order-1")
    assert first.status == 202 and "Idempotency-Replayed" not in first.headers
    job = await first.json()
    host.emit("execution_start", prompt_id=job["id"])
    again = await post(client, lite_body(portrait, audio), "order-1")
    assert again.status == 200 and again.headers["Idempotency-Replayed"] == "true"
    replayed = await again.json()
    assert replayed["id"] == job["id"] and replayed["status"] == "running"  # the job as it is now
    assert again.headers["Location"] == job["urls"]["self"]
    assert list(host.prompts) == [job["id"]] and job_count(service) == 1


async def test_same_key_with_a_different_body_is_422(client, host, service, fixtures_dir):
    portrait, audio = await upload_inputs(client, fixtures_dir)
    assert (await post(client, lite_body(portrait, audio), "k")).status == 202
    r = await post(client, lite_body(portrait, audio, seed=3), "k")
    assert r.status == 422
    err = (await r.json())["error"]
    assert err["code"] == "idempotency_key_reused" and err["details"] == {"header": "Idempotency-Key"}
    assert len(host.prompts) == 1 and job_count(service) == 1


async def test_multipart_replay_hashes_the_files_and_stages_nothing(client, host, service, fixtures_dir):
    def form(audio_name="speech_front_left.wav"):
        data = aiohttp.FormData()
        data.add_field("pipeline", "lite")
        data.add_field("portrait", io.BytesIO((fixtures_dir / "portrait_astronaut.png").read_bytes()), filename="me.png")
        data.add_field("audio", io.BytesIO((fixtures_dir / audio_name).read_bytes()), filename="speech.wav")
        return data

    headers = {"Idempotency-Key": "upload-7"}
    first = await client.post("/myspinbot/jobs", data=form(), headers=headers)
    assert first.status == 202, await first.text()
    job_id = (await first.json())["id"]
    again = await client.post("/myspinbot/jobs", data=form(), headers=headers)
    assert again.status == 200 and (await again.json())["id"] == job_id
    other = await client.post("/myspinbot/jobs", data=form("speech_front_right.wav"), headers=headers)
    assert other.status == 422 and (await other.json())["error"]["code"] == "idempotency_key_reused"
    assert [p.name for p in (host.input_dir / "myspinbot").iterdir()] == [job_id]
    assert job_count(service) == 1


async def test_concurrent_distinct_keys_make_one_job_each_and_replays_make_none(client, host, service, fixtures_dir):
    portrait, audio = await upload_inputs(client, fixtures_dir)
    host.enqueue_delay = 0.005  # let the submissions interleave at the await
    bodies = [lite_body(portrait, audio, seed=i) for i in range(50)]
    first = await asyncio.gather(*(post(client, b, f"key-{i}") for i, b in enumerate(bodies)))
    assert [r.status for r in first] == [202] * 50
    ids = [(await r.json())["id"] for r in first]
    assert len(set(ids)) == 50 and job_count(service) == 50 and len(host.prompts) == 50
    replays = await asyncio.gather(*(post(client, b, f"key-{i}") for i, b in enumerate(bodies)))
    assert [r.status for r in replays] == [200] * 50
    assert all(r.headers["Idempotency-Replayed"] == "true" for r in replays)
    assert [(await r.json())["id"] for r in replays] == ids
    assert job_count(service) == 50 and len(host.prompts) == 50
    assert service.idempotency.held_locks() == 0  # the per-key locks are released


async def test_concurrent_submissions_with_one_key_make_one_job(client, host, service, fixtures_dir):
    portrait, audio = await upload_inputs(client, fixtures_dir)
    host.enqueue_delay = 0.01
    responses = await asyncio.gather(*(post(client, lite_body(portrait, audio), "same") for _ in range(20)))
    statuses = sorted(r.status for r in responses)
    assert statuses == [200] * 19 + [202]
    assert len({(await r.json())["id"] for r in responses}) == 1
    assert job_count(service) == 1 and len(host.prompts) == 1


async def test_keys_expire_after_24_hours(client, host, service, clock, fixtures_dir):
    portrait, audio = await upload_inputs(client, fixtures_dir)
    first = await (await post(client, lite_body(portrait, audio), "daily")).json()
    clock.now += 23 * 3600
    assert (await (await post(client, lite_body(portrait, audio), "daily")).json())["id"] == first["id"]
    clock.now += 2 * 3600
    fresh = await post(client, lite_body(portrait, audio, seed=9), "daily")  # a new body is fine too
    assert fresh.status == 202 and (await fresh.json())["id"] != first["id"]
    assert job_count(service) == 2


async def test_a_failed_submission_does_not_use_up_the_key(client, host, service, fixtures_dir):
    portrait, audio = await upload_inputs(client, fixtures_dir)
    bad = await post(client, lite_body(portrait, audio, fps="fast"), "retry-me")
    assert bad.status == 422 and (await bad.json())["error"]["code"] == "invalid_parameter"
    good = await post(client, lite_body(portrait, audio), "retry-me")
    assert good.status == 202 and job_count(service) == 1


@pytest.mark.parametrize("key", ["has space", "x" * 256, "tab\tkey", "ümlaut"])
async def test_malformed_keys_are_422(client, host, fixtures_dir, key):
    portrait, audio = await upload_inputs(client, fixtures_dir)
    headers = {"Idempotency-Key": key.encode("utf-8").decode("latin-1")}
    r = await client.post("/myspinbot/jobs", json=lite_body(portrait, audio), headers=headers)
    assert r.status == 422 and (await r.json())["error"]["code"] == "invalid_idempotency_key"
    assert host.prompts == {}
