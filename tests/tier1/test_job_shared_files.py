"""A shared queue's inputs and outputs cross servers through object storage (``jobs/shared_files.py``):
servers composed as production composes them, each with its own ComfyUI folders, on one real
PostgreSQL and moto's S3 server. Uploads and assets go to the bucket, the claiming server fetches
them, outputs are stored under ``jobs/<id>/attempt-<n>/`` before the one fenced success, orphaned
attempts are removed, and every server serves every output."""

from __future__ import annotations

import asyncio

import pytest

from fake_host import FakeHost, compose_app, upload_inputs
from myspinbot.server.settings import Settings


def _settings(url: str, name: str, s3_env: dict[str, str]) -> Settings:
    return Settings(database_url=url, server_id=name, claim_poll_s=0.05, lease_s=5.0, s3_env=s3_env)


def _files(api):
    return api.service.files


async def _wait(predicate, seconds: float = 5.0) -> None:
    for _ in range(int(seconds / 0.025)):
        if predicate():
            return
        await asyncio.sleep(0.025)
    raise AssertionError("timed out")


@pytest.fixture
async def two(aiohttp_client, postgres_url, s3_env, tmp_path):
    """Servers a (its ComfyUI busy with something else) and b, each with its own folders."""
    host_a, host_b = FakeHost(tmp_path / "a"), FakeHost(tmp_path / "b")
    host_a.pending.append("a-busy")
    api_a, api_b = compose_app(host_a, _settings(postgres_url, "a", s3_env)), compose_app(host_b, _settings(postgres_url, "b", s3_env))
    client_a, client_b = await aiohttp_client(api_a.app), await aiohttp_client(api_b.app)
    yield api_a, api_b, client_a, client_b
    await client_a.close()  # the apps stop (their queue loops too) before the stores close
    await client_b.close()
    api_a.store.close()
    api_b.store.close()


async def test_an_upload_on_one_server_runs_on_another_and_its_output_is_served_by_both(two, fixtures_dir):
    from test_job_shared_queue import aiohttp_form

    api_a, api_b, client_a, client_b = two
    host_a, host_b, files = api_a.service.host, api_b.service.host, _files(api_a)
    r = await client_a.post("/myspinbot/jobs", data=aiohttp_form(fixtures_dir))
    assert r.status == 202, await r.text()
    job_id = (await r.json())["id"]
    await _wait(lambda: job_id in host_b.pending)

    # b fetched the inputs a took (the bucket's inputs/<path relative to the input folder>)
    job = api_b.store.get(job_id)
    for name in ("portrait", "audio"):
        rel = job.params[name]
        assert (host_b.input_dir / rel).read_bytes() == (host_a.input_dir / rel).read_bytes()
    from myspinbot.storage.s3_transfer import list_keys

    assert {k for k in list_keys(files.s3, files.bucket, "inputs/")} == {f"inputs/{job.params[n]}" for n in ("portrait", "audio")}

    prompt = host_b.prompts[job_id]
    saver = next(n for n, node in prompt.items() if node.get("_meta", {}).get("title") == "Save video")
    host_b.run_success(job_id, {saver: b"fake mp4 bytes"})
    await _wait(lambda: api_a.store.get(job_id).status == "succeeded")
    output = api_a.store.get(job_id).outputs[0]
    assert output.storage["status"] == "stored"
    assert output.storage["uri"] == f"s3://{files.bucket}/jobs/{job_id}/attempt-1/{output.path}"
    assert not (host_a.output_dir / output.path).exists()

    for client in (client_a, client_b):  # a fetches it from the bucket; b has it
        got = await client.get(f"/myspinbot/jobs/{job_id}/outputs/{output.name}")
        assert got.status == 200 and await got.read() == b"fake mp4 bytes"
    assert (host_a.output_dir / output.path).read_bytes() == b"fake mp4 bytes"

    # retention removes the job's objects (outputs of every attempt, its uploads) with its folders
    assert api_a.retention.expire(api_a.store.get(job_id))
    assert list_keys(files.s3, files.bucket, f"jobs/{job_id}/") == []
    assert list_keys(files.s3, files.bucket, f"inputs/myspinbot/{job_id}/") == []
    assert not (host_a.output_dir / output.path).exists()
    # b's copies (the inputs it fetched, the output it wrote) go at b's next sweep
    assert (host_b.output_dir / output.path).exists() and (host_b.input_dir / job.params["audio"]).exists()
    assert api_b.retention.drop_copies() == [job_id]
    assert not (host_b.output_dir / "myspinbot" / job_id).exists() and not (host_b.input_dir / "myspinbot" / job_id).exists()


async def test_an_asset_uploaded_on_one_server_is_usable_on_another(two, fixtures_dir):
    api_a, api_b, client_a, client_b = two
    portrait, audio = await upload_inputs(client_a, fixtures_dir)
    r = await client_b.post("/myspinbot/jobs", json={"pipeline": "lite", "inputs": {"portrait": {"asset_id": portrait},
                                                                                    "audio": {"asset_id": audio}}})
    assert r.status == 202, await r.text()
    job_id = (await r.json())["id"]
    await _wait(lambda: job_id in api_b.service.host.pending)
    assert (api_b.service.host.input_dir / "myspinbot" / "assets" / f"{portrait}.png").is_file()


async def test_outputs_are_stored_under_the_attempt_and_orphaned_attempts_are_removed(two, fixtures_dir):
    from myspinbot.server.jobs.shared_files import attempt_prefix
    from myspinbot.storage import upload_file
    from myspinbot.storage.s3_transfer import list_keys
    from test_job_shared_queue import aiohttp_form

    api_a, api_b, client_a, _ = two
    files, host_b = _files(api_b), api_b.service.host
    r = await client_a.post("/myspinbot/jobs", data=aiohttp_form(fixtures_dir))
    job_id = (await r.json())["id"]
    await _wait(lambda: job_id in host_b.pending)
    # what an earlier attempt, whose server died before it finished, left behind
    stray = host_b.output_dir / "stray.mp4"
    stray.write_bytes(b"half")
    upload_file(files.s3, stray, files.bucket, attempt_prefix(job_id, 7) + "myspinbot/x.mp4", create_bucket=True,
                presign_expiry_s=0)
    prompt = host_b.prompts[job_id]
    saver = next(n for n, node in prompt.items() if node.get("_meta", {}).get("title") == "Save video")
    host_b.run_success(job_id, {saver: b"fake mp4 bytes"})
    await _wait(lambda: list_keys(files.s3, files.bucket, attempt_prefix(job_id, 7)) == [])
    assert api_b.store.get(job_id).status == "succeeded"
    kept = list_keys(files.s3, files.bucket, f"jobs/{job_id}/")
    assert kept and all(k.startswith(attempt_prefix(job_id, 1)) for k in kept)


async def test_outputs_published_by_a_server_whose_claim_ran_out_are_refused_and_removed(two, fixtures_dir):
    from myspinbot.storage.s3_transfer import list_keys
    from test_job_shared_queue import aiohttp_form

    api_a, api_b, client_a, _ = two
    files, host_b = _files(api_b), api_b.service.host
    r = await client_a.post("/myspinbot/jobs", data=aiohttp_form(fixtures_dir))
    job_id = (await r.json())["id"]
    await _wait(lambda: job_id in host_b.pending)
    await api_b.shared_queue.stop()  # b stalls: no heartbeat notices what follows
    uploaded: list[str] = []
    publish = api_b.service.tracking.publish

    def publish_while_the_lease_runs_out(job, outputs):
        with api_b.store.db.transaction() as conn:  # b's lease runs out (b still thinks it holds the job)
            conn.execute("UPDATE jobs SET lease_until = EXTRACT(EPOCH FROM clock_timestamp()) - 1 WHERE id = ?", (job,))
        uploaded.extend(o.path for o in publish(job, outputs))
        assert list_keys(files.s3, files.bucket, f"jobs/{job_id}/attempt-1/")  # uploaded, HEAD-verified
        return outputs

    api_b.service.tracking.publish = publish_while_the_lease_runs_out
    prompt = host_b.prompts[job_id]
    saver = next(n for n, node in prompt.items() if node.get("_meta", {}).get("title") == "Save video")
    host_b.run_success(job_id, {saver: b"late bytes"})
    await _wait(lambda: uploaded and not api_b.service.tracking.tracks(job_id))
    assert api_a.store.get(job_id).status != "succeeded"  # the fence refused b's late success
    assert list_keys(files.s3, files.bucket, f"jobs/{job_id}/") == []  # and b removed what it uploaded


async def test_a_server_that_lost_its_claim_publishes_nothing(two):
    from myspinbot.server.model import Output
    from myspinbot.server.store import LeaseLost

    api_a, *_ = two
    with pytest.raises(LeaseLost):
        _files(api_a).publish(api_a.store, "not-held-here", [Output("video", "video", "video/mp4", 1, "x.mp4")])


def test_a_shared_queue_without_object_storage_refuses_to_start(postgres_url, tmp_path):
    from myspinbot.errors import StorageError

    with pytest.raises(StorageError) as err:
        compose_app(FakeHost(tmp_path / "a"), Settings(database_url=postgres_url, server_id="a"))
    assert err.value.code == "storage_not_configured" and "MYSPINBOT_S3_BUCKET" in str(err.value)
    with pytest.raises(StorageError) as err:
        compose_app(FakeHost(tmp_path / "b"), Settings(database_url=postgres_url, server_id="b",
                                                       s3_env={"MYSPINBOT_S3_BUCKET": "jobs"}))
    assert err.value.code == "storage_not_configured" and "MYSPINBOT_S3_ENDPOINT" in str(err.value)
