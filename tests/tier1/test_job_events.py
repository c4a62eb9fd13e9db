"""``GET /myspinbot/jobs/{id}/events``: Server-Sent Events of one job (tier 1, fake host)."""

from __future__ import annotations

import asyncio
import json

from fake_host import lite_body, upload_inputs  # noqa: F401
from myspinbot.server.pipelines import node_by_title


async def next_event(resp, timeout: float = 2.0):
    """The next SSE message as ``(event, data)``; a comment-only message is ``(":", text)``; EOF is None."""

    async def read():
        event, data, comments = None, [], []
        while True:
            raw = await resp.content.readline()
            if not raw:
                return None
            line = raw.decode().rstrip("\r\n")
            if line == "":
                if event or data:
                    return event or "message", json.loads("\n".join(data))
                if comments:
                    return ":", "\n".join(comments)
                continue
            if line.startswith(":"):
                comments.append(line[1:].strip())
                continue
            name, _, value = line.partition(":")
            value = value[1:] if value.startswith(" ") else value
            if name == "event":
                event = value
            elif name == "data":
                data.append(value)

    return await asyncio.wait_for(read(), timeout)


async def drain(resp, seconds: float) -> list:
    """Every message that arrives within ``seconds`` (stops early at EOF)."""
    events = []
    loop = asyncio.get_running_loop()
    end = loop.time() + seconds
    while (left := end - loop.time()) > 0:
        try:
            message = await next_event(resp, timeout=left)
        except asyncio.TimeoutError:
            break
        if message is None:
            break
        events.append(message)
    return events


async def submit(client, fixtures_dir) -> dict:
    portrait, audio = await upload_inputs(client, fixtures_dir)
    r = await client.post("/myspinbot/jobs", json=lite_body(portrait, audio))
    assert r.status == 202, await r.text()
    return await r.json()


async def test_stream_goes_snapshot_status_progress_output_terminal_then_closes(client, host, service, fixtures_dir):
    job = await submit(client, fixtures_dir)
    prompt = host.prompts[job["id"]]
    resp = await client.get(job["urls"]["events"])
    assert resp.status == 200 and resp.headers["Content-Type"].startswith("text/event-stream")
    assert resp.headers["Cache-Control"] == "no-cache"

    kind, snapshot = await next_event(resp)
    assert kind == "snapshot" and snapshot["id"] == job["id"] and snapshot["status"] == "queued"
    assert snapshot["queue_position"] == 1 and snapshot["urls"]["events"] == job["urls"]["events"]

    host.emit("execution_start", prompt_id=job["id"])
    kind, status = await next_event(resp)
    assert kind == "status" and status["status"] == "running" and status["started_at"]

    host.emit("executing", node=node_by_title(prompt, "Speech recording"), prompt_id=job["id"])
    kind, progress = await next_event(resp)
    assert kind == "progress" and progress["id"] == job["id"] and progress["status"] == "running"
    assert progress["progress"]["stage"] == "speech" and 0 <= progress["progress"]["value"] < 1

    await asyncio.sleep(service.progress_interval_s)  # past the throttle: the run's progress is not held back
    host.run_success(job["id"], {node_by_title(prompt, "Save video"): b"fake mp4 bytes"})
    rest = await drain(resp, 2.0)
    kinds = [k for k, _ in rest]
    assert kinds[-3:] == ["progress", "output", "status"], kinds
    assert set(kinds[:-3]) <= {"progress"}
    assert rest[-3][1]["progress"] == {"value": 1.0, "stage": "store", "message": "done: 1 output stored", "stage_index": 3,
                                       "stages": 4, "step": None, "steps": None, "eta_seconds": 0.0}
    assert rest[-2][1] == {"id": job["id"], "name": "video", "type": "video", "content_type": "video/mp4",
                           "size_bytes": 14, "url": f"/myspinbot/jobs/{job['id']}/outputs/video"}
    assert rest[-1][1]["status"] == "succeeded" and rest[-1][1]["outputs"][0]["name"] == "video"
    assert await next_event(resp) is None  # the server closed the stream
    assert service.events.subscriber_count() == 0


async def test_progress_is_throttled_and_the_last_value_arrives(client, host, service, fixtures_dir):
    job = await submit(client, fixtures_dir)
    prompt = host.prompts[job["id"]]
    animate = node_by_title(prompt, "Animate portrait")
    resp = await client.get(job["urls"]["events"])
    assert (await next_event(resp))[0] == "snapshot"
    loop = asyncio.get_running_loop()
    start = loop.time()
    host.emit("execution_start", prompt_id=job["id"])
    host.emit("executing", node=animate, prompt_id=job["id"])
    for step in range(1, 201):
        host.emit("progress", node=animate, value=step, max=200, prompt_id=job["id"])
        if step % 20 == 0:
            await asyncio.sleep(0.05)  # 200 updates over about half a second
    events = await drain(resp, 0.8)
    elapsed = loop.time() - start
    progress = [data for kind, data in events if kind == "progress"]
    # at most one every progress_interval_s (plus the first), not 200
    assert 2 <= len(progress) <= 1 + elapsed / service.progress_interval_s, (len(progress), elapsed)
    # nothing stale is left behind: the last event has the job's latest value
    assert progress[-1]["progress"]["value"] == round(service.get(job["id"]).progress, 4) > 0.24


async def test_heartbeat_comments_keep_an_idle_stream_alive(client, host, service, fixtures_dir):
    service.heartbeat_s = 0.05
    job = await submit(client, fixtures_dir)
    resp = await client.get(job["urls"]["events"])
    assert (await next_event(resp))[0] == "snapshot"
    assert await next_event(resp) == (":", "heartbeat")
    assert await next_event(resp) == (":", "heartbeat")


async def test_a_finished_job_streams_its_snapshot_and_ends(client, host, service, fixtures_dir):
    job = await submit(client, fixtures_dir)
    host.run_success(job["id"], {node_by_title(host.prompts[job["id"]], "Save video"): b"mp4"})
    resp = await client.get(job["urls"]["events"])
    kind, snapshot = await next_event(resp)
    assert kind == "snapshot" and snapshot["status"] == "succeeded"
    assert await next_event(resp) is None
    assert service.events.subscriber_count() == 0


async def test_cancel_while_streaming(client, host, service, fixtures_dir):
    job = await submit(client, fixtures_dir)
    resp = await client.get(job["urls"]["events"])
    assert (await next_event(resp))[0] == "snapshot"
    host.emit("execution_start", prompt_id=job["id"])
    assert (await next_event(resp))[1]["status"] == "running"
    await client.post(job["urls"]["cancel"])
    assert (await next_event(resp))[1]["status"] == "canceling"
    host.emit("execution_interrupted", prompt_id=job["id"], node_id="4")
    kind, final = await next_event(resp)
    assert kind == "status" and final["status"] == "canceled"
    assert await next_event(resp) is None


async def test_several_listeners_each_get_every_event(client, host, service, fixtures_dir):
    job = await submit(client, fixtures_dir)
    streams = [await client.get(job["urls"]["events"]) for _ in range(3)]
    for resp in streams:
        assert (await next_event(resp))[0] == "snapshot"
    assert service.events.subscriber_count(job["id"]) == 3
    await client.post(job["urls"]["cancel"])
    for resp in streams:
        assert (await next_event(resp))[1]["status"] == "canceled"
        assert await next_event(resp) is None
    assert service.events.subscriber_count() == 0


async def test_a_client_that_leaves_is_unsubscribed(client, host, service, fixtures_dir):
    service.heartbeat_s = 0.05
    job = await submit(client, fixtures_dir)
    resp = await client.get(job["urls"]["events"])
    assert (await next_event(resp))[0] == "snapshot"
    resp.close()
    for _ in range(40):
        if service.events.subscriber_count() == 0:
            break
        await asyncio.sleep(0.05)
    assert service.events.subscriber_count() == 0


async def test_events_of_an_unknown_job_are_a_json_404(client):
    r = await client.get("/myspinbot/jobs/00000000-0000-0000-0000-000000000000/events")
    assert r.status == 404 and (await r.json())["error"]["code"] == "job_not_found"
