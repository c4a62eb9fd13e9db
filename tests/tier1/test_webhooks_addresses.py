"""Webhooks cannot be pointed at the server's own network (tier 1, issue #9 item 4).

Each attack of the issue is reproduced: internal addresses in every spelling are refused when the
job is submitted (422 ``webhook_address_refused``); a stored URL or a DNS name that resolves to
an internal address is refused when the delivery connects, and the receiver there is never
contacted; attempt records carry coarse errors only; redirects are not followed; a slow receiver
does not hold up deliveries to other hosts. Receivers are aiohttp servers on 127.0.0.1, reached
only where a test turns the allow-list on; DNS is a stub resolver (no network here).
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import socket
import time

import pytest
from aiohttp import web
from aiohttp.abc import AbstractResolver

from fake_host import lite_body, upload_inputs  # noqa: F401
from myspinbot.server.model import Job
from myspinbot.server.settings import Settings
from myspinbot.server.webhooks import WebhookService, WebhookSpec, WebhookStore, webhook_secret
from test_auth import AUTH, TOKEN, guarded_api
from test_webhooks import LOOPBACK_OK, bare_service, eventually, receiver_at  # noqa: F401

FAST = {"backoff_s": (30.0,), "then_s": 30.0}


class StubResolver(AbstractResolver):
    """DNS without a network: ``names`` maps a host name to the addresses it resolves to."""

    def __init__(self, names: dict[str, list[str]]):
        self.names = names
        self.asked: list[str] = []

    async def resolve(self, host, port=0, family=socket.AF_INET):
        self.asked.append(host)
        if host not in self.names:
            raise OSError(f"stub: no such host {host}")
        return [{"hostname": host, "host": a, "port": port, "family": socket.AF_INET6 if ":" in a else socket.AF_INET,
                 "proto": 0, "flags": socket.AI_NUMERICHOST} for a in self.names[host]]

    async def close(self):
        pass


class Hits:
    """An aiohttp app that counts the requests it gets (a stand-in for ComfyUI or a receiver)."""

    def __init__(self, delay_s: float = 0.0, status: int = 204, headers: dict | None = None):
        self.delay_s, self.status, self.headers = delay_s, status, headers or {}
        self.requests: list[str] = []
        self.arrived: list[float] = []
        self.active = self.peak = 0

    async def handle(self, request: web.Request) -> web.Response:
        self.requests.append(request.path)
        self.arrived.append(time.monotonic())
        self.active += 1
        self.peak = max(self.peak, self.active)
        try:
            await asyncio.sleep(self.delay_s)
        finally:
            self.active -= 1
        return web.Response(status=self.status, headers=self.headers)

    async def serve(self, aiohttp_server) -> str:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self.handle)
        server = await aiohttp_server(app)  # on 127.0.0.1
        return str(server.make_url("/"))


def make_service(service, **kwargs) -> WebhookService:
    webhooks = WebhookService(WebhookStore(service.store.path), webhook_secret(TOKEN), **{**FAST, **kwargs})
    webhooks.listen(service.events)
    return webhooks


def cancel_job(service, webhooks, job_id: str, url: str) -> None:
    """A job whose webhook is ``url`` (stored as is: no submit-time check), canceled → one delivery."""
    webhooks.register(job_id, WebhookSpec(url, ("job.completed",)))
    service.store.save(Job(id=job_id, pipeline="lite", status="queued", created_at=1.0))
    service.cancel(job_id)


async def one_attempt(webhooks, job_id: str) -> dict:
    hook = await eventually(lambda: (w := webhooks.job_webhook(job_id))["deliveries"] and w)
    return hook["deliveries"][0]


# --- at submission -----------------------------------------------------------------------------

REFUSED = [
    "http://169.254.169.254/latest/meta-data/iam/", "http://10.0.0.5/hook", "http://172.16.0.1/", "http://172.31.255.254/",
    "http://192.168.1.10:8080/", "http://[fc00::1]/", "http://[fd12:3456::1]/", "http://[fe80::1]/",
    "http://[fe80::1%25eth0]/", "http://[::1]:8188/interrupt", "http://127.0.0.1:8188/interrupt", "http://0.0.0.0:8188/",
    "http://2130706433:8188/interrupt", "http://0x7f000001/", "http://127.1/", "http://0177.0.0.1/", "http://0/",
    "http://localhost:8188/interrupt", "http://LOCALHOST./", "http://api.localhost/", "http://[::ffff:127.0.0.1]/",
    "http://[::ffff:a9fe:a9fe]/", "http://[::]/", "http://224.0.0.1/", "http://[ff02::1]/", "http://240.0.0.1/",
    "http://100.64.0.1/", "http://255.255.255.255/", "http://metadata.google.internal/", "http://comfyui:8188/",
    "http://printer.local/", "http://[2002:7f00:1::1]/",
]


@pytest.fixture
def api(host):
    """The composed API, webhooks under the default policy (no allow-list)."""
    return guarded_api(host, listen="0.0.0.0", settings=Settings.defaults(), deliver_webhooks=False)  # never sent


@pytest.fixture
async def submit_client(aiohttp_client, api):
    return await aiohttp_client(api.app, headers=AUTH)


async def post_job(client, fixtures_dir, url: str):
    portrait, audio = await upload_inputs(client, fixtures_dir)
    return await client.post("/myspinbot/jobs", json={**lite_body(portrait, audio), "webhook": {"url": url}})


@pytest.mark.parametrize("url", REFUSED)
async def test_internal_targets_are_refused_at_submission(submit_client, service, fixtures_dir, url):
    r = await post_job(submit_client, fixtures_dir, url)
    assert r.status == 422, await r.text()
    error = (await r.json())["error"]
    assert error["code"] == "webhook_address_refused"
    assert error["details"]["field"] == "webhook.url" and error["details"]["setting"] == "MYSPINBOT_WEBHOOK_ALLOW"
    assert service.list_jobs()[0] == []


@pytest.mark.parametrize("url", ["http://user:pass@example.org/hook", "https://token@example.org/", "http://:@example.org/"])
async def test_urls_with_credentials_are_refused(submit_client, service, fixtures_dir, url):
    r = await post_job(submit_client, fixtures_dir, url)
    assert r.status == 422, await r.text()
    error = (await r.json())["error"]
    assert error["code"] == "webhook_address_refused" and error["details"]["reason"] == "userinfo"
    assert service.list_jobs()[0] == []


@pytest.mark.parametrize("url", ["http://999.1.1.1/", "http://1.2.3.4.5/", "http://%6c%6fcalhost/", "http://exa mple.org/"])
async def test_malformed_hosts_are_invalid(submit_client, fixtures_dir, url):
    r = await post_job(submit_client, fixtures_dir, url)
    assert r.status == 422 and (await r.json())["error"]["code"] == "invalid_webhook"


@pytest.mark.parametrize("url", ["https://example.org/hook", "http://8.8.8.8/h", "http://[2606:4700:4700::1111]/h",
                                 "https://hooks.example.com:8443/x?y=1", "http://EXAMPLE.org./h"])
async def test_public_targets_are_accepted(submit_client, fixtures_dir, url):
    r = await post_job(submit_client, fixtures_dir, url)
    assert r.status == 202, await r.text()


async def test_the_allow_list_opts_hosts_and_ranges_back_in(aiohttp_client, host, fixtures_dir):
    settings = Settings(webhook_allow=("10.0.0.0/8", "hooks.lan", "127.0.0.1:9000", "[::1]:9001", "not a host!"))
    api = guarded_api(host, listen="0.0.0.0", settings=settings, deliver_webhooks=False)  # recorded, never sent
    client = await aiohttp_client(api.app, headers=AUTH)
    for url, status in [("http://10.1.2.3/h", 202), ("http://hooks.lan/h", 202), ("http://HOOKS.LAN.:8080/h", 202),
                        ("http://127.0.0.1:9000/h", 202), ("http://[::1]:9001/h", 202), ("http://[::ffff:10.0.0.1]/", 202),
                        ("http://192.168.0.1/h", 422), ("http://127.0.0.1:8188/interrupt", 422),
                        ("http://[::1]:8188/", 422), ("http://other.lan/h", 422), ("http://user:pw@hooks.lan/", 422)]:
        r = await post_job(client, fixtures_dir, url)
        assert r.status == status, (url, await r.text())


def test_legacy_numeric_forms_read_like_inet_aton():
    from myspinbot.server.webhook_policy import legacy_ipv4

    for text, address in [("2130706433", "127.0.0.1"), ("0x7f000001", "127.0.0.1"), ("127.1", "127.0.0.1"),
                          ("0177.0.0.1", "127.0.0.1"), ("0x7f.1", "127.0.0.1"), ("10.0x10.1", "10.16.0.1"), ("0", "0.0.0.0")]:
        assert legacy_ipv4(text) == ipaddress.IPv4Address(address) == ipaddress.IPv4Address(socket.inet_aton(text))
    for text in ("256.1.1.1", "1.2.3.4.5", "08.1.1.1", "0x1g", "a.b", "", "4294967296"):
        assert legacy_ipv4(text) is None


# --- at delivery -------------------------------------------------------------------------------

async def test_a_stored_webhook_to_comfyuis_interrupt_is_never_sent(bare_service, aiohttp_server):
    """The issue's attack: a canceled job's webhook at http://127.0.0.1:PORT/interrupt canceled
    another running job. Stored without the submit-time check (as before the fix), it is still refused."""
    comfyui = Hits()
    base = await comfyui.serve(aiohttp_server)
    webhooks = make_service(bare_service)  # the defaults: no allow-list
    webhooks.start()
    try:
        cancel_job(bare_service, webhooks, "job-i", base + "interrupt")
        attempt = await one_attempt(webhooks, "job-i")
        assert attempt["status"] == "abandoned" and attempt["error"] == "address_refused"
        assert attempt["response_code"] is None and attempt["next_attempt_at"] is None
        await asyncio.sleep(0.2)
        assert comfyui.requests == [] and webhooks.pending_count() == 0
    finally:
        await webhooks.close()


@pytest.mark.parametrize("spelling", ["localhost", "127.1", "0x7f000001", "[::ffff:127.0.0.1]"])
async def test_stored_loopback_spellings_are_never_contacted(bare_service, aiohttp_server, spelling):
    receiver = Hits()
    port = int((await receiver.serve(aiohttp_server)).rsplit(":", 1)[1].strip("/"))
    webhooks = make_service(bare_service)
    webhooks.start()
    try:
        cancel_job(bare_service, webhooks, "job-l", f"http://{spelling}:{port}/hook")
        attempt = await one_attempt(webhooks, "job-l")
        assert attempt["error"] == "address_refused" and attempt["status"] == "abandoned"
        await asyncio.sleep(0.2)
        assert receiver.requests == []
    finally:
        await webhooks.close()


async def test_a_name_resolving_to_loopback_is_refused_when_connecting(bare_service, aiohttp_server):
    """DNS rebinding: the name looks public at submission, but resolves to 127.0.0.1 when the
    delivery connects. The resolver hook refuses it; with 127.0.0.1 allow-listed it goes through."""
    receiver = Hits()
    port = int((await receiver.serve(aiohttp_server)).rsplit(":", 1)[1].strip("/"))
    url = f"http://hooks.example.com:{port}/hook"
    for job_id, settings, expected in [("job-r1", Settings.defaults(), "address_refused"), ("job-r2", LOOPBACK_OK, None),
                                       ("job-r3", Settings(webhook_allow=("hooks.example.com",)), None)]:
        resolver = StubResolver({"hooks.example.com": ["127.0.0.1"]})
        webhooks = make_service(bare_service, settings=settings, resolver=resolver)
        webhooks.policy.check_url(url)  # passes at submission: a public-looking name
        webhooks.start()
        try:
            cancel_job(bare_service, webhooks, job_id, url)
            attempt = await one_attempt(webhooks, job_id)
            assert attempt["error"] == expected, (job_id, attempt)
            assert resolver.asked == ["hooks.example.com"]
        finally:
            await webhooks.close()
            bare_service.events.unlisten(webhooks.on_job_event)
    assert len(receiver.requests) == 2  # only the two allow-listed deliveries


async def test_the_resolver_drops_internal_answers_and_keeps_public_ones():
    from myspinbot.server.webhook_policy import AddressPolicy, AddressRefused, GuardedResolver

    stub = StubResolver({"mixed.example": ["10.0.0.1", "93.184.216.34", "fe80::1"], "inside.example": ["192.168.0.9"],
                         "nat.example": ["::ffff:169.254.169.254"]})
    guarded = GuardedResolver(AddressPolicy(), stub)
    assert [a["host"] for a in await guarded.resolve("mixed.example", 443)] == ["93.184.216.34"]
    for name in ("inside.example", "nat.example"):
        with pytest.raises(AddressRefused):
            await guarded.resolve(name, 443)
    allowed = GuardedResolver(AddressPolicy(["192.168.0.0/16"]), stub)
    assert [a["host"] for a in await allowed.resolve("inside.example", 443)] == ["192.168.0.9"]


# --- what a failure tells the submitter --------------------------------------------------------

async def test_errors_are_coarse_and_the_detail_stays_in_the_log(bare_service, aiohttp_server, unused_tcp_port_factory, caplog):
    closed = unused_tcp_port_factory()  # nothing listens: the old error text named the port and "Connect call failed"
    slow = Hits(delay_s=3.0)
    slow_url = await slow.serve(aiohttp_server)
    failing = Hits(status=503)
    failing_url = await failing.serve(aiohttp_server)
    webhooks = make_service(bare_service, settings=LOOPBACK_OK, timeout_s=0.5)
    webhooks.start()
    caplog.set_level(logging.INFO, logger="myspinbot.webhooks")
    try:
        cancel_job(bare_service, webhooks, "job-c", f"http://127.0.0.1:{closed}/hook")
        cancel_job(bare_service, webhooks, "job-t", slow_url + "hook")
        cancel_job(bare_service, webhooks, "job-h", failing_url + "hook")
        errors = {job: (await one_attempt(webhooks, job))["error"] for job in ("job-c", "job-t", "job-h")}
        assert errors == {"job-c": "connect_failed", "job-t": "timeout", "job-h": "http_503"}
        assert str(closed) in caplog.text  # the operator still sees what happened
    finally:
        await webhooks.close()


def test_error_texts_stored_before_the_fix_are_shown_coarse():
    from myspinbot.server.webhook_client import public_error

    assert [public_error(e) for e in (None, "HTTP 503", "http_429", "address_refused", "TimeoutError",
                                      "ClientConnectorError: Cannot connect to host 127.0.0.1:6379 ssl:default")] == \
        [None, "http_503", "http_429", "address_refused", "timeout", "connect_failed"]


async def test_redirects_are_not_followed(bare_service, aiohttp_server):
    comfyui = Hits()
    interrupt = await comfyui.serve(aiohttp_server) + "interrupt"
    redirector = Hits(status=307, headers={"Location": interrupt})
    url = await redirector.serve(aiohttp_server)
    webhooks = make_service(bare_service, settings=LOOPBACK_OK)
    webhooks.start()
    try:
        cancel_job(bare_service, webhooks, "job-3xx", url + "hook")
        attempt = await one_attempt(webhooks, "job-3xx")
        assert attempt["error"] == "http_307" and attempt["status"] == "retry"
        await asyncio.sleep(0.2)
        assert len(redirector.requests) == 1 and comfyui.requests == []
    finally:
        await webhooks.close()


# --- one slow receiver ----------------------------------------------------------------------------

async def test_a_slow_receiver_does_not_delay_other_hosts(bare_service, aiohttp_server):
    """The issue: a receiver taking 12 s made another job's job.completed arrive 33 s late. Here
    receiver A takes 3 s per request and has 24 deliveries queued (more than all slots); B's one
    delivery, queued after them, still arrives within a few hundred ms."""
    slow, fast = Hits(delay_s=3.0), Hits()
    slow_url, fast_url = await slow.serve(aiohttp_server), await fast.serve(aiohttp_server)
    settings = Settings(webhook_allow=("127.0.0.1",), webhook_per_host=2, webhook_concurrency=16)
    webhooks = make_service(bare_service, settings=settings)
    webhooks.start()
    try:
        for i in range(24):
            cancel_job(bare_service, webhooks, f"job-a{i}", slow_url + "hook")
        await eventually(lambda: slow.requests)
        queued = time.monotonic()
        cancel_job(bare_service, webhooks, "job-b", fast_url + "hook")
        await eventually(lambda: fast.requests, timeout=2.5)
        assert fast.arrived[0] - queued < 0.5
        assert slow.peak <= 2  # per-host limit
    finally:
        await webhooks.close()


async def test_connecting_gives_up_after_the_connect_timeout(bare_service):
    """A receiver that never completes the TCP handshake (its accept queue is full) costs the
    connect timeout, not the whole request timeout."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    port = listener.getsockname()[1]
    filler = socket.create_connection(("127.0.0.1", port))  # fills the queue; further handshakes hang
    settings = Settings(webhook_allow=("127.0.0.1",), webhook_connect_timeout_s=0.3, webhook_timeout_s=10.0)
    webhooks = make_service(bare_service, settings=settings)
    webhooks.start()
    try:
        started = time.monotonic()
        cancel_job(bare_service, webhooks, "job-ct", f"http://127.0.0.1:{port}/hook")
        attempt = await one_attempt(webhooks, "job-ct")
        assert attempt["error"] == "timeout" and time.monotonic() - started < 3.0
    finally:
        await webhooks.close()
        filler.close()
        listener.close()
