"""Per-job webhooks (tier 1, fake host): Standard Webhooks signatures, validation of the
``webhook`` field, retries with backoff, attempts visible on the job, persistence across a
restart. The receivers are real aiohttp servers on 127.0.0.1 started by the tests, so the
services here allow-list 127.0.0.1 (``LOOPBACK_OK``; loopback is refused by default, see
test_webhooks_addresses.py); the backoff is made tiny through the service's constructor."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import io
import json
import time

import aiohttp
import pytest
from aiohttp import web

from fake_host import lite_body, upload_inputs  # noqa: F401
from myspinbot.server.jobs import JobService
from myspinbot.server.model import Job
from myspinbot.server.pipelines import builtin_pipelines, node_by_title
from myspinbot.server.routes import add_routes
from myspinbot.server.settings import Settings
from myspinbot.server.store import JobStore
from myspinbot.server.webhooks import (DEFAULT_RETRY_FOR_S, WebhookService, WebhookSpec, WebhookStore, parse_webhook,
                                       sign, webhook_secret)
from webhook_receiver import verify
from test_auth import AUTH, TOKEN, guarded_api

LOOPBACK_OK = Settings(webhook_allow=("127.0.0.1",))  # the test receivers listen on 127.0.0.1
FAST_OPTIONS = {"backoff_s": (0.05, 0.05, 0.05), "then_s": 0.05, "timeout_s": 2.0}
FAST = {**FAST_OPTIONS, "settings": LOOPBACK_OK}


class Receiver:
    """Answers ``codes`` in turn (then 204); keeps every request and whether ``verify`` accepted it."""

    def __init__(self, secret: str, codes=()):
        self.secret = secret
        self.codes = list(codes)
        self.requests: list[tuple[dict[str, str], bytes, bool]] = []

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        self.requests.append((dict(request.headers), body, verify(self.secret, request.headers, body)))
        status = self.codes[len(self.requests) - 1] if len(self.requests) <= len(self.codes) else 204
        return web.Response(status=status)


async def eventually(check, timeout: float = 5.0):
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while True:
        value = check()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return value
        if loop.time() > end:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.02)


@pytest.fixture
def api(host):
    """The composed API behind the guard on a non-loopback address, webhooks with a fast backoff."""
    return guarded_api(host, listen="0.0.0.0", settings=LOOPBACK_OK, webhook_options=FAST_OPTIONS)


@pytest.fixture
async def stack(aiohttp_client, api):
    """(client, webhooks, metrics) of ``api``, started (the delivery worker runs)."""
    client = await aiohttp_client(api.app, headers=AUTH)
    yield client, api.webhooks, api.metrics


@pytest.fixture
def bare_service(host, tmp_path):
    """A job service with no webhook service listening: for the tests of ``WebhookService`` alone."""
    return JobService(host, JobStore(tmp_path / "bare.sqlite3"), builtin_pipelines(), Settings())


async def receiver_at(aiohttp_server, secret: str, codes=()) -> tuple[Receiver, str]:
    receiver = Receiver(secret, codes)
    app = web.Application()
    app.router.add_post("/hook", receiver.handle)
    server = await aiohttp_server(app)  # on 127.0.0.1
    return receiver, str(server.make_url("/hook"))


async def submit(client, fixtures_dir, webhook: dict, **options) -> dict:
    portrait, audio = await upload_inputs(client, fixtures_dir)
    r = await client.post("/myspinbot/jobs", json={**lite_body(portrait, audio, **options), "webhook": webhook})
    assert r.status == 202, await r.text()
    return await r.json()


def independent_signature(secret: str, msg_id: str, timestamp: str, body: bytes) -> str:
    """Standard Webhooks, computed here without the module: base64 key after ``whsec_``."""
    key = base64.b64decode(secret.split("_", 1)[1])
    mac = hmac.new(key, msg_id.encode() + b"." + timestamp.encode() + b"." + body, hashlib.sha256).digest()
    return "v1," + base64.b64encode(mac).decode()


# --- signing ---------------------------------------------------------------------------------

def test_secret_is_per_token_deterministic_and_does_not_reveal_it():
    secret = webhook_secret(TOKEN)
    assert secret == webhook_secret(TOKEN) != webhook_secret(TOKEN + "x")
    assert secret.startswith("whsec_") and len(base64.b64decode(secret[6:])) == 32 and TOKEN not in secret


def test_sign_and_verify_round_trip_and_reject_tampering():
    secret, body, now = webhook_secret(TOKEN), b'{"type":"job.completed"}', int(time.time())
    headers = {"webhook-id": "msg_1", "webhook-timestamp": str(now), "webhook-signature": sign(secret, "msg_1", now, body)}
    assert headers["webhook-signature"] == independent_signature(secret, "msg_1", str(now), body)
    assert verify(secret, headers, body)
    assert verify(secret, {**headers, "webhook-signature": "v1,bogus " + headers["webhook-signature"]}, body)
    assert not verify(secret, headers, body + b" ")
    assert not verify(secret, {**headers, "webhook-id": "msg_2"}, body)
    assert not verify(webhook_secret("other"), headers, body)
    assert not verify(secret, headers, body, now=now + 3600)  # replayed an hour later
    assert not verify(secret, {**headers, "webhook-signature": "v2," + headers["webhook-signature"][3:]}, body)
    assert not verify(secret, {k: v for k, v in headers.items() if k != "webhook-id"}, body)


@pytest.mark.parametrize("value, field", [
    ("http://x", "webhook"),
    ({}, "webhook.url"),
    ({"url": "ftp://example.org/hook"}, "webhook.url"),
    ({"url": "file:///etc/passwd"}, "webhook.url"),
    ({"url": "javascript:alert(1)"}, "webhook.url"),
    ({"url": "/relative/hook"}, "webhook.url"),
    ({"url": "http://"}, "webhook.url"),
    ({"url": "https://example.org/" + "a" * 3000}, "webhook.url"),
    ({"url": "https://example.org/hook", "events": []}, "webhook.events"),
    ({"url": "https://example.org/hook", "events": ["job.deleted"]}, "webhook.events"),
    ({"url": "https://example.org/hook", "events": "job.status"}, "webhook.events"),
    ({"url": "https://example.org/hook", "secret": "x"}, "webhook.secret"),
])
async def test_bad_webhooks_are_422_and_create_no_job(stack, service, fixtures_dir, value, field):
    client, _, _ = stack
    portrait, audio = await upload_inputs(client, fixtures_dir)
    r = await client.post("/myspinbot/jobs", json={**lite_body(portrait, audio), "webhook": value})
    assert r.status == 422, await r.text()
    assert (await r.json())["error"]["details"]["field"] == field
    assert service.list_jobs()[0] == []


def test_webhook_defaults_to_both_events():
    assert parse_webhook({"url": "https://example.org/h"}) == WebhookSpec("https://example.org/h", ("job.status", "job.completed"))
    assert parse_webhook({"url": "HTTP://example.org/h", "events": ["job.completed", "job.completed"]}).events == ("job.completed",)


async def test_without_webhooks_the_field_is_refused(aiohttp_client, bare_service, fixtures_dir):
    """``routes.add_routes`` without a webhook service (the plugin always has one)."""
    app, table = web.Application(), web.RouteTableDef()
    add_routes(table, bare_service)
    app.add_routes(table)
    client = await aiohttp_client(app)
    portrait, audio = await upload_inputs(client, fixtures_dir)
    r = await client.post("/myspinbot/jobs", json={**lite_body(portrait, audio), "webhook": {"url": "http://127.0.0.1/"}})
    assert r.status == 422 and (await r.json())["error"]["code"] == "webhooks_disabled"
    assert (await client.get("/myspinbot/webhooks/secret")).status == 404


# --- delivery ----------------------------------------------------------------------------------

async def test_a_receiver_failing_three_times_gets_the_fourth_with_a_valid_signature(stack, host, aiohttp_server, fixtures_dir):
    client, webhooks, metrics = stack
    r = await client.get("/myspinbot/webhooks/secret")
    assert r.status == 200
    secret = (await r.json())["secret"]
    assert secret == webhook_secret(TOKEN)
    assert (await client.get("/myspinbot/webhooks/secret", headers={"Authorization": "Bearer nope"})).status == 401
    receiver, url = await receiver_at(aiohttp_server, secret, codes=(500, 503, 429))

    job = await submit(client, fixtures_dir, {"url": url, "events": ["job.completed"]})
    assert job["webhook"] == {"url": url, "events": ["job.completed"], "deliveries": []}
    host.run_success(job["id"], {node_by_title(host.prompts[job["id"]], "Save video"): b"mp4"})

    async def four_attempts():
        body = await (await client.get(job["urls"]["self"])).json()
        return body if len(body["webhook"]["deliveries"]) == 4 else None

    done = await eventually(four_attempts)
    attempts = done["webhook"]["deliveries"]
    assert [a["attempt"] for a in attempts] == [1, 2, 3, 4]
    assert [a["status"] for a in attempts] == ["retry", "retry", "retry", "delivered"]
    assert [a["response_code"] for a in attempts] == [500, 503, 429, 204]
    assert [a["error"] for a in attempts] == ["http_500", "http_503", "http_429", None]
    assert all(a["event"] == "job.completed" and a["at"] for a in attempts)
    assert [a["next_attempt_at"] is None for a in attempts] == [False, False, False, True]
    assert len({a["id"] for a in attempts}) == 1

    assert len(receiver.requests) == 4
    ids = {h["webhook-id"] for h, _, _ in receiver.requests}
    assert ids == {attempts[0]["id"]}  # the same webhook-id on every retry
    headers, body, verified = receiver.requests[-1]
    assert verified  # the receiver's own check (verify)
    assert headers["webhook-signature"] == independent_signature(secret, headers["webhook-id"],
                                                                  headers["webhook-timestamp"], body)
    assert abs(int(headers["webhook-timestamp"]) - time.time()) < 60
    assert headers["Content-Type"] == "application/json"
    event = json.loads(body)
    assert event["type"] == "job.completed" and event["timestamp"]
    assert event["data"]["id"] == job["id"] and event["data"]["status"] == "succeeded"
    assert event["data"]["outputs"][0]["url"] == f"/myspinbot/jobs/{job['id']}/outputs/video"
    assert all(v for _, _, v in receiver.requests)  # every attempt was signed correctly
    assert webhooks.pending_count() == 0
    text = metrics.render().decode()
    assert 'myspinbot_webhook_deliveries_total{event="job.completed",outcome="retry"} 3.0' in text
    assert 'myspinbot_webhook_deliveries_total{event="job.completed",outcome="delivered"} 1.0' in text
    assert "myspinbot_webhook_deliveries_pending 0.0" in text


async def test_status_changes_and_completion_each_reach_the_receiver(stack, host, aiohttp_server, fixtures_dir):
    client, webhooks, _ = stack
    receiver, url = await receiver_at(aiohttp_server, webhook_secret(TOKEN))
    job = await submit(client, fixtures_dir, {"url": url})
    host.emit("execution_start", prompt_id=job["id"])
    host.emit("execution_error", prompt_id=job["id"], exception_message="[no_face_detected] no face")
    host.emit("executing", node=None, prompt_id=job["id"])
    await eventually(lambda: len(receiver.requests) == 3)
    await asyncio.sleep(0.1)
    events = sorted((json.loads(b)["type"], json.loads(b)["data"]["status"]) for _, b, _ in receiver.requests)
    assert events == [("job.completed", "failed"), ("job.status", "failed"), ("job.status", "running")]
    assert all(ok for _, _, ok in receiver.requests)
    assert len({h["webhook-id"] for h, _, _ in receiver.requests}) == 3
    failed = json.loads(next(b for _, b, _ in receiver.requests if json.loads(b)["type"] == "job.completed"))
    assert failed["data"]["error"]["code"] == "no_face_detected"
    job = await eventually(lambda: _all_delivered(client, job["id"], 3))
    assert {(a["event"], a["status"]) for a in job["webhook"]["deliveries"]} == {("job.status", "delivered"),
                                                                                 ("job.completed", "delivered")}


async def _all_delivered(client, job_id, count):
    body = await (await client.get(f"/myspinbot/jobs/{job_id}")).json()
    deliveries = body["webhook"]["deliveries"]
    return body if len(deliveries) == count and all(d["status"] == "delivered" for d in deliveries) else None


async def test_canceling_a_queued_job_completes_its_webhook(stack, host, aiohttp_server, fixtures_dir):
    client, _, _ = stack
    receiver, url = await receiver_at(aiohttp_server, webhook_secret(TOKEN))
    job = await submit(client, fixtures_dir, {"url": url, "events": ["job.completed"]})
    await client.post(job["urls"]["cancel"])
    await eventually(lambda: len(receiver.requests) == 1)
    assert json.loads(receiver.requests[0][1])["data"]["status"] == "canceled"


async def test_a_receiver_that_never_answers_well_is_abandoned_after_the_retry_window(bare_service, aiohttp_server):
    receiver, url = await receiver_at(aiohttp_server, webhook_secret(TOKEN), codes=[500] * 100)
    seen = []
    webhooks = WebhookService(WebhookStore(bare_service.store.path), webhook_secret(TOKEN), backoff_s=(0.02,), then_s=0.05,
                              retry_for_s=0.3, timeout_s=1.0, on_attempt=lambda event, outcome: seen.append(outcome),
                              settings=LOOPBACK_OK)
    webhooks.listen(bare_service.events)
    webhooks.register("job-1", WebhookSpec(url, ("job.completed",)))
    webhooks.start()
    try:
        bare_service.store.save(Job(id="job-1", pipeline="lite", status="queued", created_at=1.0))
        bare_service.cancel("job-1")
        await eventually(lambda: seen and seen[-1] == "abandoned")
        await asyncio.sleep(0.2)
        assert set(seen[:-1]) == {"retry"} and seen.count("abandoned") == 1 and len(receiver.requests) == len(seen)
        attempts = webhooks.job_webhook("job-1")["deliveries"]
        assert attempts[-1]["status"] == "abandoned" and attempts[-1]["next_attempt_at"] is None
        assert webhooks.pending_count() == 0
    finally:
        await webhooks.close()


async def test_a_refused_connection_is_an_attempt_too(bare_service, unused_tcp_port_factory):
    url = f"http://127.0.0.1:{unused_tcp_port_factory()}/hook"  # nothing listens there
    webhooks = WebhookService(WebhookStore(bare_service.store.path), webhook_secret(TOKEN), backoff_s=(30.0,), timeout_s=1.0,
                              settings=LOOPBACK_OK)
    webhooks.listen(bare_service.events)
    webhooks.register("job-2", WebhookSpec(url, ("job.completed",)))
    webhooks.start()
    try:
        bare_service.store.save(Job(id="job-2", pipeline="lite", status="queued", created_at=1.0))
        bare_service.cancel("job-2")
        hook = await eventually(lambda: (w := webhooks.job_webhook("job-2"))["deliveries"] and w)
        [attempt] = hook["deliveries"]
        assert attempt["status"] == "retry" and attempt["response_code"] is None and attempt["error"] == "connect_failed"
        assert webhooks.pending_count() == 1
    finally:
        await webhooks.close()


async def test_pending_deliveries_survive_a_restart(bare_service, aiohttp_server):
    receiver, url = await receiver_at(aiohttp_server, webhook_secret(TOKEN))
    first = WebhookService(WebhookStore(bare_service.store.path), webhook_secret(TOKEN), **FAST)
    first.listen(bare_service.events)
    first.register("job-3", WebhookSpec(url, ("job.completed",)))
    bare_service.store.save(Job(id="job-3", pipeline="lite", status="queued", created_at=1.0))
    bare_service.cancel("job-3")  # recorded, never sent: this worker was never started ("ComfyUI stopped")
    assert first.pending_count() == 1 and receiver.requests == []
    await first.close()
    bare_service.events.unlisten(first.on_job_event)

    second = WebhookService(WebhookStore(bare_service.store.path), webhook_secret(TOKEN), **FAST)
    second.start()
    try:
        await eventually(lambda: len(receiver.requests) == 1)
        assert receiver.requests[0][2] and json.loads(receiver.requests[0][1])["data"]["id"] == "job-3"
        await eventually(lambda: second.pending_count() == 0)
    finally:
        await second.close()


def test_default_schedule_backs_off_exponentially_then_hourly_for_at_least_a_day(bare_service):
    webhooks = WebhookService(WebhookStore(bare_service.store.path), webhook_secret(TOKEN))
    waits = [webhooks._backoff(n) for n in range(1, 9)]
    assert waits == [5, 30, 120, 600, 3600, 3600, 3600, 3600]
    elapsed, attempts = 0.0, 1
    while elapsed < DEFAULT_RETRY_FOR_S:  # every failed attempt before the window ends is retried
        elapsed += webhooks._backoff(attempts)
        attempts += 1
    assert elapsed >= 24 * 3600 and attempts >= 25


# --- submissions -------------------------------------------------------------------------------

async def test_replays_and_failed_submissions_register_no_extra_webhook(stack, host, service, aiohttp_server, fixtures_dir):
    client, webhooks, _ = stack
    _, url = await receiver_at(aiohttp_server, webhook_secret(TOKEN))
    portrait, audio = await upload_inputs(client, fixtures_dir)
    body = {**lite_body(portrait, audio), "webhook": {"url": url}}
    first = await client.post("/myspinbot/jobs", json=body, headers={"Idempotency-Key": "k1"})
    again = await client.post("/myspinbot/jobs", json=body, headers={"Idempotency-Key": "k1"})
    assert first.status == 202 and again.status == 200
    assert (await again.json())["webhook"]["url"] == url
    other = await client.post("/myspinbot/jobs", json={**body, "webhook": {"url": url + "?x=1"}},
                              headers={"Idempotency-Key": "k1"})
    assert other.status == 422 and (await other.json())["error"]["code"] == "idempotency_key_reused"
    host.reject_next = True
    rejected = await client.post("/myspinbot/jobs", json={**lite_body(portrait, audio, seed=5), "webhook": {"url": url}})
    assert rejected.status == 422
    with webhooks.store.db.read() as conn:
        rows = conn.execute("SELECT job_id FROM webhooks").fetchall()
    assert rows == [((await first.json())["id"],)]


async def test_multipart_submissions_take_the_webhook_as_json_text(stack, host, aiohttp_server, fixtures_dir):
    client, _, _ = stack
    _, url = await receiver_at(aiohttp_server, webhook_secret(TOKEN))
    data = aiohttp.FormData()
    data.add_field("pipeline", "lite")
    data.add_field("portrait", io.BytesIO((fixtures_dir / "portrait_astronaut.png").read_bytes()), filename="me.png")
    data.add_field("audio", io.BytesIO((fixtures_dir / "speech_front_left.wav").read_bytes()), filename="speech.wav")
    data.add_field("webhook", json.dumps({"url": url, "events": ["job.status"]}))
    r = await client.post("/myspinbot/jobs", data=data)
    assert r.status == 202, await r.text()
    assert (await r.json())["webhook"] == {"url": url, "events": ["job.status"], "deliveries": []}
    data = aiohttp.FormData({"pipeline": "lite", "webhook": "{not json"}, default_to_multipart=True)
    r = await client.post("/myspinbot/jobs", data=data)
    assert r.status == 422 and (await r.json())["error"]["details"]["field"] == "webhook"


async def test_jobs_without_a_webhook_show_null(stack, fixtures_dir):
    client, _, _ = stack
    portrait, audio = await upload_inputs(client, fixtures_dir)
    job = await (await client.post("/myspinbot/jobs", json=lite_body(portrait, audio))).json()
    assert job["webhook"] is None
    listed = await (await client.get("/myspinbot/jobs")).json()
    assert listed["jobs"][0]["webhook"] is None


async def test_webhook_fields_match_the_openapi_schemas(stack, host, aiohttp_server, fixtures_dir):
    jsonschema = pytest.importorskip("jsonschema")
    from myspinbot.server.contract.endpoints import OPEN_PATHS

    client, _, _ = stack
    spec = await (await client.get("/myspinbot/openapi.json")).json()

    def check(instance, name, valid=True):
        validator = jsonschema.Draft202012Validator({"$ref": f"#/components/schemas/{name}", "components": spec["components"]})
        assert validator.is_valid(instance) is valid, [e.message for e in validator.iter_errors(instance)]

    receiver, url = await receiver_at(aiohttp_server, webhook_secret(TOKEN), codes=(500,))
    portrait, audio = await upload_inputs(client, fixtures_dir)
    body = {**lite_body(portrait, audio), "webhook": {"url": url, "events": ["job.completed"]}}
    check(body, "JobSubmission")
    check({**body, "webhook": {"url": "ftp://x/", "events": ["job.completed"]}}, "JobSubmission", valid=False)
    check({**body, "webhook": {"url": url, "events": ["job.deleted"]}}, "JobSubmission", valid=False)
    job = await (await client.post("/myspinbot/jobs", json=body)).json()
    check(job, "Job")
    await client.post(job["urls"]["cancel"])

    async def retried_then_delivered():
        body = await (await client.get(job["urls"]["self"])).json()
        return body if [d["status"] for d in body["webhook"]["deliveries"]] == ["retry", "delivered"] else None

    job = await eventually(retried_then_delivered)
    check(job, "Job")
    check(json.loads(receiver.requests[-1][1]), "WebhookEvent")
    check(await (await client.get("/myspinbot/webhooks/secret")).json(), "WebhookSecret")
    assert set(spec["webhooks"]) == {"job.status", "job.completed"}
    assert spec["components"]["securitySchemes"]["bearerAuth"] == {**spec["components"]["securitySchemes"]["bearerAuth"],
                                                                   "type": "http", "scheme": "bearer"}
    for path, item in spec["paths"].items():
        for operation in item.values():
            if path in OPEN_PATHS:
                assert operation["security"] == []
            else:
                assert operation["responses"]["401"] == {"$ref": "#/components/responses/Unauthorized"}


async def test_expiring_a_job_prunes_its_finished_deliveries(stack, host, service, aiohttp_server, fixtures_dir):
    from myspinbot.server.retention import Retention

    client, webhooks, _ = stack
    receiver, url = await receiver_at(aiohttp_server, webhook_secret(TOKEN))
    job = await submit(client, fixtures_dir, {"url": url, "events": ["job.status"]})
    host.emit("execution_start", prompt_id=job["id"])
    host.emit("execution_error", prompt_id=job["id"], exception_message="[no_face_detected] no face")
    host.emit("executing", node=None, prompt_id=job["id"])
    await eventually(lambda: _all_delivered(client, job["id"], 2))
    assert len(webhooks.store.deliveries(job["id"])) == 2

    Retention(service, days=30).expire(service.get(job["id"]))
    # the two delivered rows (and their attempts) are gone; the 'expired' status change is still sent
    await eventually(lambda: len(receiver.requests) == 3)
    assert json.loads(receiver.requests[-1][1])["data"]["status"] == "expired"
    deliveries = webhooks.store.deliveries(job["id"])
    assert [d.event for d in deliveries] == ["job.status"] and len(webhooks.store.attempts(job["id"])) <= 1


def test_signatures_verify_with_the_standardwebhooks_package():
    """An independent implementation of Standard Webhooks accepts what we sign and refuses what ours refuses."""
    import time as _time

    from standardwebhooks.webhooks import Webhook, WebhookVerificationError

    secret = webhook_secret(TOKEN)
    body = b'{"type":"job.completed","data":{"id":"x"}}'
    now = int(_time.time())
    headers = {"webhook-id": "msg_1", "webhook-timestamp": str(now), "webhook-signature": sign(secret, "msg_1", now, body)}
    reference = Webhook(secret)
    assert reference.verify(body, headers) is not None and verify(secret, headers, body)
    for tampered_body, tampered in ((body + b" ", headers), (body, {**headers, "webhook-id": "msg_2"}),
                                    (body, {**headers, "webhook-signature": "v1,AAAA"})):
        with pytest.raises(WebhookVerificationError):
            reference.verify(tampered_body, tampered)
        assert not verify(secret, tampered, tampered_body)
