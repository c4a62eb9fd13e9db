"""Tier 2: what the token protects in a real ComfyUI 0.33.

- With a non-loopback ``--listen`` and a generated token, ComfyUI's unauthenticated
  ``/internal/logs`` (which serves everything written to the console) never holds the token.
- On loopback, a DNS-rebound name in ``Host`` cannot drive the job API.
- ``MYSPINBOT_PROTECT_COMFYUI=1`` puts the token in front of ComfyUI's own routes (history, jobs,
  view, upload, the websocket, the frontend); the page's session cookie carries it.

Requests go to 127.0.0.1 even when ComfyUI listens on 0.0.0.0.
"""

from __future__ import annotations

import asyncio
import io
import time

import aiohttp
import pytest
import requests
from PIL import Image

from comfy_process import ComfyProcess, comfyui_dir

pytestmark = pytest.mark.tier2


def _start(tmp_path_factory, name: str, **kwargs) -> ComfyProcess:
    return ComfyProcess("clone", tmp_path_factory.mktemp(name), comfyui_dir(), **kwargs).start()


def _token(proc: ComfyProcess) -> str:
    path = proc.user_dir / "myspinbot" / "api_token"
    deadline = time.monotonic() + 30
    while not path.exists() and time.monotonic() < deadline:
        time.sleep(0.2)
    return path.read_text().strip()


@pytest.fixture(scope="module")
def exposed(tmp_path_factory):
    """ComfyUI on 0.0.0.0 with no MYSPINBOT_API_TOKEN: the documented default that generates one."""
    proc = _start(tmp_path_factory, "exposed", listen="0.0.0.0", env={"MYSPINBOT_API_TOKEN": ""})
    yield proc
    proc.stop()


@pytest.fixture(scope="module")
def protected(tmp_path_factory):
    proc = _start(tmp_path_factory, "protected", listen="0.0.0.0",
                  env={"MYSPINBOT_API_TOKEN": "", "MYSPINBOT_PROTECT_COMFYUI": "1"})
    yield proc
    proc.stop()


def test_the_generated_token_is_not_in_comfyuis_log_endpoints(exposed):
    token = _token(exposed)
    assert len(token) >= 40
    for path in ("/internal/logs", "/internal/logs/raw"):
        r = requests.get(exposed.url + path, timeout=10)
        assert r.status_code == 200, path  # core serves them without authentication
        assert token not in r.text, f"{path} leaks the API token"
        assert "api_token" in r.text  # the log says where the token file is instead
    assert token not in exposed.log_text()
    assert requests.get(exposed.url + "/myspinbot/webhooks/secret", timeout=10).status_code == 401
    auth = {"Authorization": f"Bearer {token}"}
    assert requests.get(exposed.url + "/myspinbot/jobs", headers=auth, timeout=10).status_code == 200


def test_a_rebound_host_cannot_drive_the_api_on_loopback(comfy_basedir):
    port = comfy_basedir.port
    rebound = {"Host": f"rebind.evil.example:{port}", "Origin": f"http://rebind.evil.example:{port}"}
    png = io.BytesIO()
    Image.new("RGB", (64, 64), (200, 150, 120)).save(png, "PNG")
    r = requests.post(comfy_basedir.url + "/myspinbot/jobs", headers=rebound, timeout=10,
                      data={"pipeline": "lite", "script": "Hello."}, files={"portrait": ("p.png", png.getvalue())})
    assert r.status_code == 401 and r.json()["error"]["details"]["reason"] == "host_not_loopback"
    for path in ("/myspinbot/jobs", "/myspinbot/webhooks/secret", "/api/myspinbot/jobs"):
        assert requests.get(comfy_basedir.url + path, headers=rebound, timeout=10).status_code == 401, path
    assert requests.get(comfy_basedir.url + "/myspinbot/jobs", timeout=10).status_code == 200
    assert requests.get(comfy_basedir.url + "/myspinbot/jobs", timeout=10,
                        headers={"Host": f"localhost:{port}"}).status_code == 200


def test_protection_puts_the_token_in_front_of_comfyuis_own_routes(protected):
    url, token = protected.url, _token(protected)
    for method, path in (("GET", "/history"), ("GET", "/api/jobs"), ("GET", "/queue"), ("GET", "/object_info"),
                         ("GET", "/view?filename=x.png&type=input"), ("GET", "/internal/logs"),
                         ("POST", "/upload/image"), ("POST", "/prompt"), ("POST", "/interrupt")):
        r = requests.request(method, url + path, timeout=10)
        assert r.status_code == 401 and r.json()["error"]["code"] == "unauthorized", (method, path)
    front = requests.get(url + "/", headers={"Accept": "text/html"}, allow_redirects=False, timeout=10)
    assert front.status_code == 303 and front.headers["Location"] == "/myspinbot/?next=%2F"
    assert requests.get(url + "/myspinbot/", timeout=10).status_code == 200  # the sign-in page is open
    assert requests.get(url + "/myspinbot/health", timeout=10).status_code == 200

    with requests.Session() as browser:
        assert browser.post(url + "/myspinbot/session", json={"token": token + "x"}, timeout=10).status_code == 401
        assert browser.post(url + "/myspinbot/session", json={"token": token}, timeout=10).status_code == 204
        assert browser.get(url + "/history", timeout=10).status_code == 200
        assert browser.get(url + "/", headers={"Accept": "text/html"}, timeout=10).status_code == 200
        assert browser.get(url + "/myspinbot/jobs", timeout=10).status_code == 200
        cookie = browser.cookies.get("myspinbot_token")
    assert requests.get(url + "/history", headers={"Authorization": f"Bearer {token}"}, timeout=10).status_code == 200
    assert asyncio.run(_ws_status(url, None)) == 401
    assert asyncio.run(_ws_status(url, cookie)) == 101


async def _ws_status(url: str, cookie: str | None) -> int:
    cookies = {"myspinbot_token": cookie} if cookie else None
    async with aiohttp.ClientSession(cookies=cookies) as session:
        try:
            async with session.ws_connect(url.replace("http", "ws") + "/ws?clientId=security-test",
                                          timeout=aiohttp.ClientWSTimeout(ws_close=10)) as ws:
                await ws.close()
                return 101
        except aiohttp.WSServerHandshakeError as err:
            return err.status
