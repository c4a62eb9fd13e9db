"""Attacks a web page can make on a loopback ComfyUI (tier 1, fake host): DNS rebinding, opaque
origins, CORS-enabled servers; the session cookie the page signs in with; and the opt-in guard
in front of ComfyUI's own routes (``MYSPINBOT_PROTECT_COMFYUI``)."""

from __future__ import annotations

import pytest
from aiohttp import web

from fake_host import lite_body, upload_inputs  # noqa: F401
from myspinbot.server.auth import COOKIE, host_without_port
from myspinbot.server.guard import SESSION_PATH
from myspinbot.server.settings import Settings
from test_auth import AUTH, TOKEN, guarded_api

REBOUND = "rebind.evil.example"


def app_with(host, *, listen="127.0.0.1", cors=False, protect=False) -> web.Application:
    """The job API composed as the plugin composes it, beside two stand-ins of ComfyUI's own routes."""
    api = guarded_api(host, listen=listen, cors=cors, settings=Settings(protect_comfyui=protect))

    async def history(request):  # stands in for ComfyUI's own routes
        return web.json_response({"prompt": "secret"})

    async def upload_image(request):
        return web.json_response({"name": "x.png"})

    api.app.router.add_get("/history", history)
    api.app.router.add_post("/upload/image", upload_image)
    return api.app


@pytest.fixture
async def loopback(aiohttp_client, host):
    return await aiohttp_client(app_with(host))


def host_header(client, name: str) -> dict[str, str]:
    return {"Host": f"{name}:{client.port}"}


@pytest.mark.parametrize("value, expected", [
    ("127.0.0.1:8188", "127.0.0.1"), ("[::1]:8188", "::1"), ("[::1]", "::1"), ("localhost", "localhost"),
    ("evil.example:80", "evil.example"), ("::1", "::1"),
])
def test_host_header_parsing(value, expected):
    assert host_without_port(value) == expected


async def test_dns_rebinding_is_refused_without_a_token(loopback, fixtures_dir):
    portrait, audio = await upload_inputs(loopback, fixtures_dir)
    rebound = {**host_header(loopback, REBOUND), "Origin": f"http://{REBOUND}:{loopback.port}"}
    r = await loopback.post("/myspinbot/jobs", json=lite_body(portrait, audio), headers=rebound)
    assert r.status == 401 and (await r.json())["error"]["details"]["reason"] == "host_not_loopback"
    for path in ("/myspinbot/jobs", "/myspinbot/webhooks/secret", "/api/myspinbot/jobs"):
        r = await loopback.get(path, headers=rebound)
        assert r.status == 401, path
    assert (await (await loopback.get("/myspinbot/jobs")).json())["jobs"] == []  # nothing was created
    # With the token the name does not matter (a reverse proxy on a real name).
    assert (await loopback.get("/myspinbot/jobs", headers={**rebound, **AUTH})).status == 200


@pytest.mark.parametrize("name", ["127.0.0.1", "127.0.0.2", "localhost", "[::1]"])
async def test_loopback_hosts_pass_without_a_token(loopback, name):
    assert (await loopback.get("/myspinbot/jobs", headers=host_header(loopback, name))).status == 200


@pytest.mark.parametrize("name", ["2130706433", "0x7f000001", "127.1", "localhost.evil.example", "0.0.0.0", "192.168.1.2"])
async def test_names_that_only_resolve_to_loopback_are_not_loopback(loopback, name):
    assert (await loopback.get("/myspinbot/jobs", headers=host_header(loopback, name))).status == 401


async def test_an_opaque_origin_without_fetch_metadata_needs_the_token(loopback):
    r = await loopback.get("/myspinbot/jobs", headers={"Origin": "null"})
    assert r.status == 401 and (await r.json())["error"]["details"]["reason"] == "opaque_origin"
    assert (await loopback.get("/myspinbot/jobs", headers={"Origin": "null", "Sec-Fetch-Site": "same-origin"})).status == 200
    assert (await loopback.get("/myspinbot/jobs", headers={"Origin": "null", **AUTH})).status == 200


async def test_a_cors_enabled_comfyui_needs_the_token_even_on_loopback(aiohttp_client, host):
    c = await aiohttp_client(app_with(host, cors=True))
    r = await c.get("/myspinbot/jobs")
    assert r.status == 401 and (await r.json())["error"]["details"]["reason"] == "cors_enabled"
    assert (await c.get("/myspinbot/jobs", headers=AUTH)).status == 200
    assert (await c.get("/myspinbot/health")).status == 200


async def test_the_session_cookie_carries_the_token(aiohttp_client, host):
    c = await aiohttp_client(app_with(host, listen="0.0.0.0"))
    assert (await c.get("/myspinbot/jobs")).status == 401
    wrong = await c.post(SESSION_PATH, json={"token": TOKEN + "x"})
    assert wrong.status == 401 and COOKIE not in wrong.cookies
    r = await c.post(SESSION_PATH, json={"token": TOKEN})
    assert r.status == 204
    morsel = r.cookies[COOKIE]
    assert morsel["httponly"] and morsel["samesite"] == "Strict" and morsel["path"] == "/"
    assert (await c.get("/myspinbot/jobs")).status == 200  # the client's jar sends the cookie
    assert (await c.delete(SESSION_PATH)).status == 204
    assert (await c.get("/myspinbot/jobs")).status == 401


async def test_a_stale_cookie_is_ignored_but_a_wrong_header_is_refused(loopback):
    loopback.session.cookie_jar.update_cookies({COOKIE: "stale-token-from-before"})
    assert (await loopback.get("/myspinbot/jobs")).status == 200
    assert (await loopback.get("/myspinbot/jobs", headers={"Authorization": "Bearer nope"})).status == 401


async def test_comfyui_routes_are_left_alone_unless_protection_is_opted_in(aiohttp_client, host):
    plain = await aiohttp_client(app_with(host, listen="0.0.0.0"))
    assert (await plain.get("/history")).status == 200

    guarded = await aiohttp_client(app_with(host, listen="0.0.0.0", protect=True))
    r = await guarded.get("/history")
    assert r.status == 401 and (await r.json())["error"]["code"] == "unauthorized"
    assert (await guarded.post("/upload/image", data=b"x")).status == 401
    page = await guarded.get("/?x=1", headers={"Accept": "text/html"}, allow_redirects=False)
    assert page.status == 303 and page.headers["Location"] == "/myspinbot/?next=%2F%3Fx%3D1"
    assert (await guarded.get("/history", headers=AUTH)).status == 200
    assert (await guarded.get("/myspinbot/")).status == 200  # the sign-in page itself stays open
    assert (await guarded.post(SESSION_PATH, json={"token": TOKEN})).status == 204
    assert (await guarded.get("/history")).status == 200


async def test_protection_on_loopback_refuses_rebound_names_on_comfyui_routes(aiohttp_client, host):
    c = await aiohttp_client(app_with(host, protect=True))
    assert (await c.get("/history")).status == 200
    assert (await c.get("/history", headers=host_header(c, REBOUND))).status == 401
