"""Access control of the ``/myspinbot`` routes (tier 1, fake host): the bearer token, loopback vs
non-loopback listening, the token file, and path parameters / upload names that try to leave
the pack's folders.

``guarded_api`` builds the app with the plugin's own composition root (``server.app.compose``):
every route of the pack (jobs, webhooks, metrics, models, page, session) mirrored under ``/api``
as ComfyUI does, and the guard, opening exactly what it opens in production. The route checks
iterate over the app's router, so a route added later is covered without touching these tests."""

from __future__ import annotations

import io
import logging
import os
import re
import stat

import aiohttp
import pytest
from aiohttp import web
from yarl import URL

from fake_host import compose_app, lite_body, upload, upload_inputs  # noqa: F401
from myspinbot.server.auth import ApiAuth, ApiToken, is_loopback_listen, load_token, token_path
from myspinbot.server.guard import HEALTH_PATH, SESSION_PATH
from myspinbot.server.page import PAGE_ROUTES
from myspinbot.server.settings import Settings
from myspinbot.server.pipelines import node_by_title

TOKEN = "tier1-token-0123456789abcdefghijklmnopqrstuvwxyz"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
JOB_UUID = "00000000-0000-4000-8000-000000000000"


def guarded_api(host, *, listen: str, token: str = TOKEN, settings: Settings | None = None, **options):
    """The job API over ``host`` as the plugin composes it, ComfyUI listening on ``listen``, the
    API token ``token`` (``settings.api_token``; other settings from ``settings``); ``options``:
    more ``compose`` keyword arguments. Returns the ``Api`` (its ``app`` is not started)."""
    base = settings if settings is not None else Settings()
    return compose_app(host, base.model_copy(update={"api_token": token}), listen=listen, **options)


def concrete(path: str) -> str:
    """A request path for a route template: a well-formed id for every parameter."""
    return re.sub(r"\{(\w+)(:[^}]*)?\}", lambda m: JOB_UUID if m.group(1) == "job_id" else "abc", path)


def pack_requests(app: web.Application) -> list[tuple[str, str, str]]:
    """(method, template, path) of every route of the app under /myspinbot or /api/myspinbot."""
    found = []
    for route in app.router.routes():
        template = route.resource.canonical if route.resource is not None else ""
        bare = template[len("/api"):] if template.startswith("/api/") else template
        if bare == "/myspinbot" or bare.startswith("/myspinbot/"):
            found.append((route.method, bare, concrete(template)))
    return found


@pytest.fixture
async def open_client(aiohttp_client, host):
    """ComfyUI on a non-loopback address: the token is required."""
    return await aiohttp_client(guarded_api(host, listen="0.0.0.0,::").app)


@pytest.fixture
async def local_client(aiohttp_client, host):
    """ComfyUI on loopback: the token is optional, a wrong one is refused."""
    return await aiohttp_client(guarded_api(host, listen="127.0.0.1").app)


OPEN_ROUTES = frozenset({HEALTH_PATH, SESSION_PATH, *PAGE_ROUTES})
"""What the production guard opens (``guard.setup_access``): checked in the page and session tests."""


def assert_unauthorized(response, body=None) -> None:
    assert response.status == 401
    assert response.headers["WWW-Authenticate"].startswith('Bearer realm="myspinbot"')
    if body is not None:
        assert body["error"]["code"] == "unauthorized" and body["error"]["message"]


# --- where ComfyUI listens -----------------------------------------------------------------

@pytest.mark.parametrize("listen, loopback", [
    (None, True), ("", True), ("127.0.0.1", True), ("127.2.2.2,127.3.3.3", True), ("::1", True), ("[::1]", True),
    ("localhost", True), (" 127.0.0.1 , ::1 ", True), (["127.0.0.1", "::1"], True),
    ("0.0.0.0", False), ("::", False), ("0.0.0.0,::", False), ("127.0.0.1,192.168.1.5", False),
    ("10.0.0.7", False), ("comfy.example.org", False), ("fe80::1%eth0", False),
])
def test_loopback_is_decided_from_every_listen_address(listen, loopback):
    assert is_loopback_listen(listen) is loopback


# --- non-loopback: the token is required -----------------------------------------------------

async def test_every_route_but_health_is_401_without_the_token_and_open_with_it(open_client):
    requests = pack_requests(open_client.server.app)
    templates = {t for _, t, _ in requests}
    # the routes the issue names are all there (and anything added later is checked too)
    assert {HEALTH_PATH, "/myspinbot/jobs", "/myspinbot/jobs/{job_id}", "/myspinbot/jobs/{job_id}/events",
            "/myspinbot/jobs/{job_id}/outputs/{name}", "/myspinbot/assets", "/myspinbot/assets/{asset_id}",
            "/myspinbot/openapi.json", "/myspinbot/metrics", "/myspinbot/webhooks/secret",
            "/myspinbot/models", "/myspinbot/capabilities"} <= templates
    assert any(p.startswith("/api/") for _, _, p in requests)
    for method, template, path in requests:
        for headers in ({}, {"Authorization": "Bearer wrong-token"}, {"Authorization": f"Basic {TOKEN}"}):
            r = await open_client.request(method, path, headers=headers, allow_redirects=False)
            if template == HEALTH_PATH:
                assert r.status == 200, (method, path)
                continue
            if template in OPEN_ROUTES:  # the page's static files and the sign-in route: no job data
                continue
            assert_unauthorized(r, await r.json() if method != "HEAD" else None)
        r = await open_client.request(method, path, headers=AUTH, allow_redirects=False)
        assert r.status != 401 or (template, method) == (SESSION_PATH, "POST"), (method, path, r.status)  # no body: no token
        assert r.status < 500, (method, path, r.status, await r.text())
    for path in ("/myspinbot/health", "/myspinbot/jobs", "/myspinbot/openapi.json", "/myspinbot/metrics",
                 "/myspinbot/webhooks/secret", "/myspinbot/models", "/myspinbot/capabilities",
                 "/api/myspinbot/jobs"):
        r = await open_client.get(path, headers=AUTH)
        assert r.status in (200, 404) if path.endswith(("/metrics", "/secret")) else r.status == 200, (path, r.status)


async def test_an_unknown_path_under_the_prefix_is_401_too(open_client):
    r = await open_client.get("/myspinbot/no-such-route")
    assert_unauthorized(r, await r.json())
    assert (await open_client.get("/myspinbot/no-such-route", headers=AUTH)).status == 404


async def test_the_token_is_checked_in_constant_time_and_scheme_is_case_insensitive(open_client):
    assert (await open_client.get("/myspinbot/jobs", headers={"Authorization": f"bearer {TOKEN}"})).status == 200
    assert (await open_client.get("/myspinbot/jobs", headers={"Authorization": f"Bearer  {TOKEN} "})).status == 200
    for value in ("Bearer", "Bearer ", f"Bearer {TOKEN}x", f"Bearer {TOKEN[:-1]}", TOKEN, "Bearer \u00e9"):
        r = await open_client.get("/myspinbot/jobs", headers={"Authorization": value.encode().decode("latin-1")})
        assert_unauthorized(r, await r.json())
    auth = ApiAuth(TOKEN, required=True)
    assert auth.matches(TOKEN) and not auth.matches(TOKEN + "x") and not auth.matches("")


async def test_other_routes_of_the_app_are_left_alone(aiohttp_client, host):
    app = guarded_api(host, listen="0.0.0.0").app
    async def prompt(request: web.Request) -> web.Response:
        return web.json_response({"comfy": True})

    app.router.add_get("/prompt", prompt)
    c = await aiohttp_client(app)
    assert (await c.get("/prompt")).status == 200


# --- loopback: optional, but never wrong -------------------------------------------------------

async def test_loopback_needs_no_token_but_refuses_a_wrong_one(local_client, fixtures_dir):
    assert (await local_client.get("/myspinbot/jobs")).status == 200
    assert (await local_client.get("/myspinbot/jobs", headers=AUTH)).status == 200
    r = await local_client.get("/myspinbot/jobs", headers={"Authorization": "Bearer not-the-token"})
    assert_unauthorized(r, await r.json())
    assert 'error="invalid_token"' in r.headers["WWW-Authenticate"]
    r = await local_client.get("/api/myspinbot/jobs", headers={"Authorization": "Basic dXNlcjpwdw=="})
    assert_unauthorized(r, await r.json())
    # a wrong token on a write is refused before anything happens
    portrait, audio = await upload_inputs(local_client, fixtures_dir)
    r = await local_client.post("/myspinbot/jobs", json=lite_body(portrait, audio), headers={"Authorization": "Bearer x"})
    assert r.status == 401
    assert (await (await local_client.get("/myspinbot/jobs")).json())["jobs"] == []


# --- the token ---------------------------------------------------------------------------------

def test_token_is_generated_once_owner_only_and_never_printed_or_logged(tmp_path, caplog, capsys):
    caplog.set_level(logging.DEBUG)
    first = load_token(tmp_path)
    path = token_path(tmp_path)
    assert first.source == "generated" and first.path == path == tmp_path / "myspinbot" / "api_token"
    assert len(first.value) >= 43 and path.read_text().strip() == first.value
    if os.name == "posix":
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    # ComfyUI captures stdout, stderr and the log into what its unauthenticated /internal/logs serves.
    assert first.value not in "".join(capsys.readouterr())
    assert first.value not in caplog.text and str(path) in caplog.text  # the log says where it is
    again = load_token(tmp_path)
    assert again.value == first.value and again.source == "file"
    assert first.value not in "".join(capsys.readouterr()) and first.value not in caplog.text
    assert first.value not in repr(first) and first.value not in str(again)


def test_configured_token_wins_and_writes_no_file(tmp_path, capsys):
    token = load_token(tmp_path, f"  {TOKEN}\n")
    assert token == ApiToken(TOKEN, "env") and not token_path(tmp_path).exists()
    assert TOKEN not in "".join(capsys.readouterr())
    assert Settings.from_env({"MYSPINBOT_API_TOKEN": TOKEN}).api_token == TOKEN
    assert TOKEN not in repr(Settings.from_env({"MYSPINBOT_API_TOKEN": TOKEN}))


def test_a_token_file_others_can_read_is_restricted_and_an_empty_one_replaced(tmp_path):
    path = token_path(tmp_path)
    path.parent.mkdir(parents=True)
    path.write_text("kept-token-value-1234567890\n")
    os.chmod(path, 0o644)
    assert load_token(tmp_path).value == "kept-token-value-1234567890"
    if os.name == "posix":
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    path.write_text("")
    fresh = load_token(tmp_path)
    assert fresh.source == "generated" and path.read_text().strip() == fresh.value


async def test_setup_access_on_a_started_loop_never_prints_or_logs_the_token(aiohttp_client, host, caplog, capsys):
    caplog.set_level(logging.DEBUG)
    api = compose_app(host, Settings.defaults(), listen="0.0.0.0")  # the token generated into the user dir
    access, app = api.access, api.app
    token = access.auth.token.value
    assert access.auth.required and access.guard in [getattr(m, "__self__", None) for m in app.middlewares]
    c = await aiohttp_client(app)
    assert (await c.get("/myspinbot/jobs")).status == 401
    assert (await c.get("/myspinbot/jobs", headers={"Authorization": f"Bearer {token}"})).status == 200
    assert (await c.get("/myspinbot/jobs", headers={"Authorization": f"Bearer {token[:-2]}"})).status == 401
    assert token not in "".join(capsys.readouterr())
    assert token not in caplog.text and token[:-2] not in caplog.text


async def test_the_page_loads_without_a_token_but_its_api_calls_need_one(aiohttp_client, host):
    c = await aiohttp_client(guarded_api(host, listen="0.0.0.0").app)
    assert (await c.get("/myspinbot/")).status == 200
    assert (await c.get("/myspinbot/page/main.js")).status == 200
    assert (await c.get("/myspinbot/jobs")).status == 401


# --- paths that try to leave the pack's folders ------------------------------------------------

TRAVERSALS = [
    "..%2F..%2Fjobs.sqlite3", "..%2f..%2f..%2fuser%2fmyspinbot%2fapi_token", "%2Fetc%2Fpasswd", "%2fetc%2fpasswd",
    "..%5C..%5Cjobs.sqlite3", "%2e%2e%2f%2e%2e%2fjobs.sqlite3", "%2e%2e", "..", "video%00.mp4",
    "C:%5Cwindows%5Cwin.ini", "%252e%252e%252fjobs.sqlite3", "....%2F%2F....%2F%2Fjobs.sqlite3",
]


async def succeeded_job(c, host, fixtures_dir) -> dict:
    portrait, audio = await upload_inputs(c, fixtures_dir)
    job = await (await c.post("/myspinbot/jobs", json=lite_body(portrait, audio), headers=AUTH)).json()
    host.run_success(job["id"], {node_by_title(host.prompts[job["id"]], "Save video"): b"the real video"})
    return job


@pytest.fixture
def api(host):
    """This module's ``service`` fixture comes from the guarded API (``authed``'s)."""
    return guarded_api(host, listen="0.0.0.0")


@pytest.fixture
async def authed(aiohttp_client, api):
    return await aiohttp_client(api.app, headers=AUTH)


@pytest.mark.parametrize("bad", TRAVERSALS)
async def test_traversal_in_output_names_and_asset_ids_is_refused(authed, host, fixtures_dir, bad):
    job = await succeeded_job(authed, host, fixtures_dir)
    (host.output_dir.parent / "secret.txt").write_bytes(b"top secret")  # beside the output folder
    good = await authed.get(f"/myspinbot/jobs/{job['id']}/outputs/video")
    assert good.status == 200 and await good.read() == b"the real video"
    for template in (f"/myspinbot/jobs/{job['id']}/outputs/{{}}", f"/api/myspinbot/jobs/{job['id']}/outputs/{{}}",
                     "/myspinbot/assets/{}", "/myspinbot/jobs/{}", "/myspinbot/jobs/{}/events",
                     "/myspinbot/models/{}", "/myspinbot/page/{}"):
        r = await authed.get(URL(template.format(bad), encoded=True))
        body = await r.read()
        # a literal ".." segment is resolved by the URL rules to the parent route (still inside the pack)
        assert r.status in (400, 404) or (bad == ".." and r.url.path != template.format(bad)), (template, bad, r.status)
        assert b"top secret" not in body and b"SQLite format" not in body and b"the real video" not in body
        if r.headers.get("Content-Type", "").startswith("application/json"):
            assert (await r.json())["error"]["code"]


@pytest.mark.parametrize("value", ["..%2F..%2Fx", "%2Fetc%2Fpasswd", "a%5Cb", "%2e%2e", "x..y", "x%00y", "x%0Ay", "c:x"])
async def test_the_guard_refuses_separators_in_any_path_parameter(authed, value):
    r = await authed.get(URL(f"/myspinbot/assets/{value}", encoded=True))
    assert r.status == 400
    assert (await r.json())["error"] == {"code": "invalid_path_parameter",
                                         "message": "path parameter 'asset_id' is not a plain name",
                                         "details": {"parameter": "asset_id"}}


def files_under(root) -> set[str]:
    return {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()}


async def test_upload_names_never_choose_where_files_go(authed, host, service, fixtures_dir, tmp_path):
    before = files_under(tmp_path)
    portrait = (fixtures_dir / "portrait_astronaut.png").read_bytes()
    speech = (fixtures_dir / "speech_front_left.wav").read_bytes()
    for name in ("../../../../evil.png", "/etc/passwd", "..\\..\\evil.png", "C:\\evil.png", "a/../../b.png"):
        r = await upload(authed, portrait, name, "image/png")
        assert r.status in (200, 201), await r.text()
    data = aiohttp.FormData()
    data.add_field("pipeline", "lite")
    data.add_field("portrait", io.BytesIO(portrait), filename="../../../../user/myspinbot/api_token")
    data.add_field("audio", io.BytesIO(speech), filename="/tmp/../../speech.wav")
    r = await authed.post("/myspinbot/jobs", data=data)
    assert r.status == 202, await r.text()
    job_id = (await r.json())["id"]
    data = aiohttp.FormData()
    data.add_field("pipeline", "lite")
    data.add_field("../../portrait", io.BytesIO(portrait), filename="p.png")
    r = await authed.post("/myspinbot/jobs", data=data)
    assert r.status == 422 and (await r.json())["error"]["code"] == "unknown_parameter"
    new = files_under(tmp_path) - before
    allowed = re.compile(rf"^(input/myspinbot/(assets/[0-9a-f]{{64}}\.png|{job_id}/(portrait\.png|speech\.wav))"
                         rf"|user/.*|models/.*)$")
    assert new and all(allowed.match(p) for p in new), sorted(new)
    assert not any("evil" in p or "passwd" in p for p in files_under(tmp_path))
