"""Job outputs carry where object storage holds them (tier 1, fake host): a history whose storage
node (``MySpinBotSaveToMinIO``) reports ``myspinbot_storage`` blocks gives the output a public
``storage`` block; a pending upload keeps its retry record server-side and
``POST /myspinbot/jobs/{id}/outputs/{name}/upload`` retries it."""

from __future__ import annotations

from pathlib import Path

import pytest

import myspinbot.storage as storage_pkg
from fake_host import lite_body, upload_inputs  # noqa: F401
from myspinbot.errors import StorageError
from myspinbot.storage import StoredObject

SECRET = "tier1-secret-never-in-json"


def play(host, prompt_id: str, block: dict) -> Path:
    """Play a run whose save node writes an mp4 and whose storage node reports ``block``."""
    prompt = host.prompts[prompt_id]
    host.emit("execution_start", prompt_id=prompt_id)
    save_id = next(nid for nid, node in prompt.items() if node["_meta"]["title"] == "Save video")
    sub = Path("myspinbot") / prompt_id
    (host.output_dir / sub).mkdir(parents=True, exist_ok=True)
    path = host.output_dir / sub / "output_00001_.mp4"
    path.write_bytes(b"mp4 bytes")
    for node_id in prompt:
        host.emit("executing", node=node_id, prompt_id=prompt_id)
    local = host.output_dir / "myspinbot" / "storage" / "video_00001_.mp4"
    local.parent.mkdir(parents=True, exist_ok=True)
    local.write_bytes(b"mp4 bytes")
    block = {"local_path": str(local), **block}
    host.histories[prompt_id] = {"outputs": {
        save_id: {"images": [{"filename": path.name, "subfolder": sub.as_posix(), "type": "output"}], "animated": [True]},
        "99": {"images": [{"filename": local.name, "subfolder": "myspinbot/storage", "type": "output"}],
               "myspinbot_storage": [block]}},
        "status": {"status_str": "success", "completed": True}}
    host.emit("executing", node=None, prompt_id=prompt_id)
    return local


STORED = {"name": "video", "uri": "s3://bucket/job/video.mp4", "presigned_url": "http://s3.local/bucket/job/video.mp4?X-Sig=1",
          "status": "stored", "warning": None, "error_code": None, "bucket": "bucket", "key": "job/video.mp4", "size": 9,
          "content_type": "video/mp4", "etag": "abc", "presign_expires_at": 1.0, "pending_upload": None}


def pending_block(local_path: str = "/nowhere") -> dict:
    return {"name": "video", "uri": None, "presigned_url": None, "status": "pending",
            "warning": "storage_unavailable: object storage unreachable; the file is kept locally",
            "error_code": "storage_unavailable", "bucket": "bucket", "key": "job/video.mp4", "size": 9,
            "content_type": "video/mp4", "etag": None, "presign_expires_at": None,
            "pending_upload": {"local_path": local_path, "bucket": "bucket", "key": "job/video.mp4",
                               "content_type": "video/mp4", "size": 9, "name": "video"}}


async def submit(client, fixtures_dir) -> str:
    portrait, audio = await upload_inputs(client, fixtures_dir)
    r = await client.post("/myspinbot/jobs", json=lite_body(portrait, audio))
    assert r.status == 202, await r.text()
    return (await r.json())["id"]


async def test_stored_output_carries_public_storage_block(client, host, fixtures_dir):
    job_id = await submit(client, fixtures_dir)
    play(host, job_id, STORED)
    body = await (await client.get(f"/myspinbot/jobs/{job_id}")).json()
    assert body["status"] == "succeeded", body
    [video] = body["outputs"]
    assert video["storage"] == {"kind": "s3", "uri": "s3://bucket/job/video.mp4",
                                "presigned_url": "http://s3.local/bucket/job/video.mp4?X-Sig=1",
                                "status": "stored", "warning": None}
    # the local file is still what the output URL serves
    assert await (await client.get(video["url"])).read() == b"mp4 bytes"
    r = await client.post(f"/myspinbot/jobs/{job_id}/outputs/video/upload")
    assert r.status == 409 and (await r.json())["error"]["code"] == "output_already_stored"


async def test_output_without_storage_node_has_no_storage(client, host, fixtures_dir):
    job_id = await submit(client, fixtures_dir)
    host.run_success(job_id, {nid: b"x" for nid in host.prompts[job_id]})
    body = await (await client.get(f"/myspinbot/jobs/{job_id}")).json()
    assert "storage" not in body["outputs"][0]
    r = await client.post(f"/myspinbot/jobs/{job_id}/outputs/video/upload")
    assert r.status == 409 and (await r.json())["error"]["code"] == "output_not_pending"


async def test_pending_upload_is_retried_over_http_and_its_api_mirror(client, host, service, fixtures_dir, monkeypatch):
    """The retry route answers at /myspinbot/... and at ComfyUI's /api mirror, whose answers link below /api."""
    job_id = await submit(client, fixtures_dir)
    local = play(host, job_id, pending_block())
    body = await (await client.get(f"/myspinbot/jobs/{job_id}")).json()
    storage = body["outputs"][0]["storage"]
    assert storage["status"] == "pending" and storage["presigned_url"] is None
    assert storage["uri"] == "s3://bucket/job/video.mp4" and "unreachable" in storage["warning"]
    text = str(body)
    assert "pending_upload" not in text and "local_path" not in text and "/nowhere" not in text
    assert service.store.pending_upload(job_id, "video")["key"] == "job/video.mp4"

    monkeypatch.setenv("MYSPINBOT_S3_SECRET_KEY", SECRET)
    calls = []

    def down(record, settings=None, **kw):
        calls.append((record, settings))
        record.attempts += 1  # as the real retry_upload does
        raise StorageError("object storage unreachable", code="storage_unavailable")

    monkeypatch.setattr(storage_pkg, "retry_upload", down)
    r = await client.post(f"/myspinbot/jobs/{job_id}/outputs/video/upload")
    assert r.status == 503, await r.text()
    error = (await r.json())["error"]
    assert error["code"] == "storage_unavailable" and SECRET not in await r.text()
    assert calls[0][1].secret_key == SECRET  # settings from the environment
    assert service.store.pending_upload(job_id, "video")["attempts"] == 1

    def up(record, settings=None, **kw):
        assert record.local_path == "/nowhere" and record.attempts == 1
        return StoredObject(bucket="bucket", key="job/video.mp4", size=9, etag="e", content_type="video/mp4",
                            presigned_url="http://s3.local/presigned")

    monkeypatch.setattr(storage_pkg, "retry_upload", up)
    r = await client.post(f"/api/myspinbot/jobs/{job_id}/outputs/video/upload")
    assert r.status == 200, await r.text()
    body = await r.json()
    assert body["urls"]["self"] == f"/api/myspinbot/jobs/{job_id}"  # answered by the mirror
    assert body["outputs"][0]["url"] == f"/api/myspinbot/jobs/{job_id}/outputs/video"
    storage = body["outputs"][0]["storage"]
    assert storage == {"kind": "s3", "uri": "s3://bucket/job/video.mp4", "presigned_url": "http://s3.local/presigned",
                       "status": "stored", "warning": None}
    assert service.store.pending_upload(job_id, "video") is None
    assert (await (await client.get(f"/myspinbot/jobs/{job_id}")).json())["outputs"][0]["storage"]["status"] == "stored"
    for prefix in ("", "/api"):
        r = await client.post(f"{prefix}/myspinbot/jobs/{job_id}/outputs/video/upload")
        assert r.status == 409 and (await r.json())["error"]["code"] == "output_already_stored"
    assert local.is_file()


async def test_upload_unknown_output_or_job_is_404(client, host, fixtures_dir):
    job_id = await submit(client, fixtures_dir)
    play(host, job_id, STORED)
    r = await client.post(f"/myspinbot/jobs/{job_id}/outputs/nope/upload")
    assert r.status == 404 and (await r.json())["error"]["code"] == "output_not_found"
    r = await client.post("/myspinbot/jobs/00000000-0000-4000-8000-000000000000/outputs/video/upload")
    assert r.status == 404 and (await r.json())["error"]["code"] == "job_not_found"
