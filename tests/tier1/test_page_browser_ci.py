"""Tier 1: the page (``GET /myspinbot/``) in headless Chromium against the real job API on a fake host.

CI has no ComfyUI checkout, so tests/tier2/test_page_browser.py is skipped there; this test runs
the same browser flow (tests/browser.py) in CI. The job API, composed by the plugin's own
``server.app.compose``, is served by a plain aiohttp app on 127.0.0.1 (its own event loop in a
background thread). The fake host
"executes" an enqueued prompt in a worker thread the way ComfyUI would: ``execution_start``, the
nodes with progress over about two seconds, a REAL MP4 from the lite engine
(``myspinbot.animate.animate_portrait`` on the uploaded portrait and speech) written where the
SaveVideo node writes it, then the success and the history. Every event reaches the job service
on the app's loop (``call_soon_threadsafe``), as ComfyUI's do.

The other tests check what the page's JavaScript does, on a host that finishes each job at once: its
requests stay below the path it is served at (``/myspinbot/``, the ``/api`` mirror, a proxy prefix),
ComfyUI's sidebar tab (``web/js``) shows it in an iframe, it stops following an expired job, and its
status sets match the job API's contract. The server logs every request it gets.

Screenshots are kept under ``$MYSPINBOT_SCREENSHOT_DIR`` when it is set.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from pathlib import Path
from typing import Any

import cv2
import pytest
import requests
from aiohttp import web

from browser import browser, run_lite_job, wait  # noqa: F401
from fake_host import FakeHost, compose_app, lite_body

from myspinbot.paths import REPO_DIR
from myspinbot.server.pipelines import node_by_title

PROXY_PREFIX = "/proxy/prefix"  # a reverse proxy's path in front of ComfyUI
SIDEBAR_JS = REPO_DIR / "web" / "js" / "myspinbot_sidebar.js"

log = logging.getLogger(__name__)


class ExecutingHost(FakeHost):
    """A fake host that runs what is enqueued: events on the app's loop, the engine in a thread."""

    def __init__(self, root: Path, stage_s: float = 0.4):
        super().__init__(root)
        self.stage_s = stage_s  # how long each node "runs" before the animation (the bar is seen moving)
        self.loop: asyncio.AbstractEventLoop | None = None
        self.workers: list[threading.Thread] = []
        self.failures: list[str] = []

    async def enqueue(self, prompt_id: str, prompt: dict[str, Any]) -> None:
        await super().enqueue(prompt_id, prompt)
        self.loop = asyncio.get_running_loop()
        worker = threading.Thread(target=self._execute, args=(prompt_id,), name=f"fake-comfy-{prompt_id}", daemon=True)
        self.workers.append(worker)
        worker.start()

    def _post(self, event: str, **data: Any) -> None:
        self.loop.call_soon_threadsafe(lambda: self.emit(event, **data))

    def _execute(self, prompt_id: str) -> None:
        from myspinbot.animate import animate_portrait
        from myspinbot.speech import load_audio

        prompt = self.prompts[prompt_id]
        by_class = {node["class_type"]: node_id for node_id, node in prompt.items()}
        image_node, audio_node = by_class["LoadImage"], by_class["LoadAudio"]
        animate_node, save_node = by_class["MySpinBotAnimatePortraitLite"], by_class["SaveVideo"]
        try:
            time.sleep(0.2)
            self._post("execution_start", prompt_id=prompt_id)
            self._post("executing", node=image_node, prompt_id=prompt_id)
            bgr = cv2.imread(str(self.input_dir / prompt[image_node]["inputs"]["image"]), cv2.IMREAD_COLOR)
            portrait = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
            time.sleep(self.stage_s)
            self._post("executing", node=audio_node, prompt_id=prompt_id)
            audio, rate = load_audio(self.input_dir / prompt[audio_node]["inputs"]["audio"])
            time.sleep(self.stage_s)
            self._post("executing", node=animate_node, prompt_id=prompt_id)
            for step in range(1, 4):  # a few steps before the engine's own progress
                time.sleep(self.stage_s)
                self._post("progress", node=animate_node, value=step, max=10, prompt_id=prompt_id)
            settings = prompt[animate_node]["inputs"]
            prefix = prompt[save_node]["inputs"]["filename_prefix"]  # myspinbot/<job id>/output
            sub = Path(prefix).parent
            (self.output_dir / sub).mkdir(parents=True, exist_ok=True)
            filename = f"{Path(prefix).name}_00001_.mp4"
            animate_portrait(portrait, audio, rate, self.output_dir / sub / filename,
                             fps=float(settings.get("fps", 25.0)), seed=int(settings.get("seed", 0)),
                             on_progress=lambda done, total: self._post(
                                 "progress", node=animate_node, value=3 + 7 * done / max(total, 1), max=10, prompt_id=prompt_id))
            self._post("executing", node=save_node, prompt_id=prompt_id)
            time.sleep(self.stage_s)
            outputs = {save_node: {"images": [{"filename": filename, "subfolder": sub.as_posix(), "type": "output"}],
                                   "animated": [True]}}

            def finish() -> None:
                self.emit("execution_success", prompt_id=prompt_id)
                self.histories[prompt_id] = {"outputs": outputs, "status": {"status_str": "success", "completed": True}}
                self.emit("executing", node=None, prompt_id=prompt_id)

            self.loop.call_soon_threadsafe(finish)
        except Exception as exc:  # noqa: BLE001 - reported as ComfyUI would, and kept for the test's failure message
            log.exception("fake host: prompt %s failed", prompt_id)
            self.failures.append(f"{prompt_id}: {exc!r}")
            self._post("execution_error", prompt_id=prompt_id, node_id=animate_node, node_type="MySpinBotAnimatePortraitLite",
                       exception_type=f"{type(exc).__module__}.{type(exc).__qualname__}", exception_message=str(exc))
            self._post("executing", node=None, prompt_id=prompt_id)

    def log_tail(self) -> str:  # for the browser helpers' failure messages
        return "\n".join(self.failures) or "(the fake host recorded no failure)"


class InstantHost(FakeHost):
    """A fake host that finishes every enqueued prompt at once (its video is a few bytes)."""

    async def enqueue(self, prompt_id: str, prompt: dict[str, Any]) -> None:
        await super().enqueue(prompt_id, prompt)
        save = node_by_title(prompt, "Save video")
        asyncio.get_running_loop().call_later(0.05, lambda: self.run_success(prompt_id, {save: b"mp4"}))

    def log_tail(self) -> str:
        return "(instant host)"


# ComfyUI's frontend as far as the sidebar extension sees it: ``scripts/app.js`` with
# ``registerExtension`` and ``extensionManager.registerSidebarTab``, and a page that loads the
# extension from ``extensions/<pack>/``, runs its ``setup`` and renders its tab.
FRONTEND_APP_JS = """
window.myspinbotTabs = []; window.myspinbotExtensions = [];
export const app = {
  extensionManager: { registerSidebarTab(tab) { window.myspinbotTabs.push(tab); } },
  registerExtension(extension) { window.myspinbotExtensions.push(extension); },
};
"""
FRONTEND_HTML = """<!doctype html><html><body><div id="sidebar" style="height:700px"></div>
<script type="module">
import "./scripts/app.js";
await import("./extensions/myspinbot/myspinbot_sidebar.js");
for (const extension of window.myspinbotExtensions) if (extension.setup) await extension.setup();
for (const tab of window.myspinbotTabs) tab.render(document.getElementById("sidebar"));
document.body.dataset.ready = "true";
</script></body></html>"""


def frontend_routes() -> web.RouteTableDef:
    routes = web.RouteTableDef()

    @routes.get("/frontend.html")
    async def frontend(request):
        return web.Response(text=FRONTEND_HTML, content_type="text/html")

    @routes.get("/scripts/app.js")
    async def app_js(request):
        return web.Response(text=FRONTEND_APP_JS, content_type="text/javascript")

    @routes.get("/extensions/myspinbot/myspinbot_sidebar.js")
    async def sidebar_js(request):
        return web.Response(text=SIDEBAR_JS.read_text(encoding="utf-8"), content_type="text/javascript")

    return routes


class BackgroundServer:
    """The pack's routes (jobs, models, page) on a plain aiohttp app, served from a thread with its own loop.

    They answer at ``/myspinbot/...``, mirrored under ``/api`` (as ComfyUI does) and under
    :data:`PROXY_PREFIX` (as behind a reverse proxy); ``requests`` lists every ``(method, path)`` received."""

    def __init__(self, host: FakeHost, tmp_path: Path):
        self.host, self.tmp_path = host, tmp_path
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="myspinbot-page-server", daemon=True)
        self.runner: web.AppRunner | None = None
        self.url = ""
        self.requests: list[tuple[str, str]] = []

    async def _start(self) -> str:
        api = compose_app(self.host)  # as the plugin composes it; loopback: the page needs no token
        self.service = api.service

        @web.middleware
        async def log_request(request, handler):
            self.requests.append((request.method, request.path))
            return await handler(request)

        api.app.middlewares.insert(0, log_request)
        api.app.add_routes(frontend_routes())
        proxied = web.Application()  # what a reverse proxy serving ComfyUI at PROXY_PREFIX passes on
        proxied.add_routes(api.routes)
        proxied.add_routes(frontend_routes())
        api.app.add_subapp(PROXY_PREFIX, proxied)
        self.runner = web.AppRunner(api.app)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        host, port = self.runner.addresses[0][:2]
        return f"http://{host}:{port}"

    def start(self) -> "BackgroundServer":
        self.thread.start()
        self.url = asyncio.run_coroutine_threadsafe(self._start(), self.loop).result(30)
        return self

    def stop(self) -> None:
        if self.runner is not None:
            asyncio.run_coroutine_threadsafe(self.runner.cleanup(), self.loop).result(30)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()

    def log_tail(self) -> str:
        return self.host.log_tail()

    def call(self, fn):
        """``fn()`` run on the server's loop (where the job service lives); returns its result."""
        async def run():
            return fn()

        return asyncio.run_coroutine_threadsafe(run(), self.loop).result(30)


@pytest.fixture
def page_server(tmp_path):
    server = BackgroundServer(ExecutingHost(tmp_path / "comfy"), tmp_path).start()
    yield server
    server.stop()


@pytest.fixture
def instant_server(tmp_path):
    server = BackgroundServer(InstantHost(tmp_path / "comfy"), tmp_path).start()
    yield server
    server.stop()


def page_ready(driver, server, url: str) -> None:
    driver.get(url)
    wait(driver, lambda: driver.execute_script(
        "return document.body.dataset.ready === 'true' && [...document.getElementById('pipeline').options].some(o => o.value === 'lite')"),
        30, f"the page at {url} to load its pipelines", server)


def submit_finished_job(server, fixtures_dir) -> str:
    """A lite job submitted over HTTP and finished by the instant host; returns its id."""
    assets = []
    for name in ("portrait_astronaut.png", "speech_front_left.wav"):
        with open(fixtures_dir / name, "rb") as f:
            r = requests.post(f"{server.url}/myspinbot/assets", files={"file": (name, f)}, timeout=30)
        assert r.status_code in (200, 201), r.text
        assets.append(r.json()["asset_id"])
    r = requests.post(f"{server.url}/myspinbot/jobs", json=lite_body(*assets), timeout=30)
    assert r.status_code == 202, r.text
    job_id = r.json()["id"]
    deadline = time.monotonic() + 30
    while requests.get(f"{server.url}/myspinbot/jobs/{job_id}", timeout=10).json()["status"] != "succeeded":
        assert time.monotonic() < deadline, "the instant host did not finish the job"
        time.sleep(0.05)
    return job_id


def test_page_submits_the_fixtures_shows_progress_and_plays_the_video(page_server, browser, fixtures_dir, tmp_path):  # noqa: F811
    started = time.monotonic()
    result = run_lite_job(browser, page_server.url, fixtures_dir, tmp_path, server=page_server, timeout=60)
    assert page_server.host.failures == []
    # The bar was seen while the job ran, with the animate stage among what it showed.
    assert any(s["status"] == "running" for s in result["seen"]), result["seen"][-5:]
    assert "animate" in {s["stage"] for s in result["seen"]}, {s["stage"] for s in result["seen"]}
    assert result["video"]["readyState"] >= 2
    job_id = result["final"]["jobId"]
    job = requests.get(f"{page_server.url}/myspinbot/jobs/{job_id}", timeout=10).json()
    assert job["status"] == "succeeded", job
    assert [o["name"] for o in job["outputs"]] == ["video"], job["outputs"]
    written = page_server.host.output_dir / "myspinbot" / job_id / "output_00001_.mp4"  # where SaveVideo writes
    assert written.stat().st_size > 10_000
    assert result["shot"].is_file()
    assert time.monotonic() - started < 60


@pytest.mark.parametrize("prefix", ["", "/api", PROXY_PREFIX])
def test_page_requests_stay_below_the_path_it_is_served_at(instant_server, browser, prefix):  # noqa: F811
    """Served at <prefix>/myspinbot/, the page loads its modules and calls the API only below that path
    (absolute URLs would break it under /api/myspinbot/ or behind a proxy)."""
    driver, server = browser, instant_server
    page_ready(driver, server, f"{server.url}{prefix}/myspinbot/")
    driver.find_element("id", "submit").click()  # nothing chosen: the API refuses the job
    error = wait(driver, lambda: driver.execute_script(
        "const e = document.getElementById('form-error'); return !e.hidden && e.textContent;"), 30, "the form error", server)
    assert error.startswith("missing_portrait:"), error
    paths = [path for _, path in server.requests]
    below = f"{prefix}/myspinbot/"
    assert [p for p in paths if not p.startswith(below)] == [], paths
    modules = {p.rsplit("/", 1)[1] for p in paths if p.startswith(below + "page/") and p.endswith(".js")}
    assert modules == {p.name for p in (REPO_DIR / "web" / "page").glob("*.js")}, modules
    assert ("POST", below + "jobs") in server.requests and ("GET", below + "pipelines") in server.requests


@pytest.mark.parametrize("prefix", ["", PROXY_PREFIX])
def test_sidebar_tab_shows_the_page_in_an_iframe(instant_server, browser, prefix):  # noqa: F811
    """web/js/myspinbot_sidebar.js, loaded as ComfyUI's frontend loads extensions, registers a custom
    sidebar tab whose iframe (and new-tab link) show the page two levels above the extension's URL."""
    driver, server = browser, instant_server
    driver.get(f"{server.url}{prefix}/frontend.html")
    wait(driver, lambda: driver.execute_script("return document.body.dataset.ready === 'true'"), 30, "the stub frontend",
         server)
    tabs = driver.execute_script("return window.myspinbotTabs.map(t => ({id: t.id, type: t.type, title: t.title,"
                                 " render: typeof t.render}));")
    assert tabs == [{"id": "myspinbot", "type": "custom", "title": "myspinbot", "render": "function"}], tabs
    page_url = f"{server.url}{prefix}/myspinbot/"
    frame = driver.find_element("css selector", "#sidebar iframe[title=myspinbot]")
    assert frame.get_attribute("src") == page_url
    assert driver.find_element("css selector", "#sidebar a[target=_blank]").get_attribute("href") == page_url
    driver.switch_to.frame(frame)
    wait(driver, lambda: driver.execute_script(
        "return document.body && document.body.dataset.ready === 'true'"
        " && [...document.getElementById('pipeline').options].some(o => o.value === 'lite');"), 30, "the page in the tab", server)
    driver.switch_to.default_content()


@pytest.mark.parametrize("transport", ["events", "polling"])
def test_page_stops_following_an_expired_job(instant_server, browser, fixtures_dir, transport):  # noqa: F811
    """An expired job (finished, past retention) is terminal: shown from the history, the page neither
    opens its event stream nor polls it (before the fix it polled it forever)."""
    from myspinbot.server.retention import Retention

    driver, server = browser, instant_server
    job_id = submit_finished_job(server, fixtures_dir)
    later = time.time() + 10 * 86400.0
    assert server.call(lambda: Retention(server.service, days=1, clock=lambda: later).sweep()) == [job_id]
    assert requests.get(f"{server.url}/myspinbot/jobs/{job_id}", timeout=10).json()["status"] == "expired"
    if transport == "polling":  # as in browsers without EventSource (and with a token, which it cannot send)
        driver.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": "delete window.EventSource;"})
    page_ready(driver, server, f"{server.url}/myspinbot/")
    show = wait(driver, lambda: driver.execute_script(
        "const r = document.querySelector(`#history tbody tr[data-job-id='${arguments[0]}']`);"
        " return r && r.dataset.status === 'expired' && r.querySelector('button.show');", job_id), 30, "the expired row", server)
    seen = len(server.requests)
    driver.execute_script("arguments[0].click()", show)
    wait(driver, lambda: driver.execute_script(
        "return document.getElementById('job-status').textContent === 'expired'"
        " && document.getElementById('job-id').title === arguments[0];", job_id), 10, "the expired job shown", server)
    time.sleep(4.0)  # the page polls every second and would have opened the event stream at once
    followed = [r for r in server.requests[seen:] if f"/jobs/{job_id}" in r[1]]
    assert followed == [], followed
    assert driver.execute_script("return document.getElementById('current-cancel').hidden")


def test_page_statuses_match_the_contract(instant_server, browser):  # noqa: F811
    """statuses.js (the page's one definition of the statuses) lists the API's Job.status enum, and its
    terminal set is the server's."""
    from myspinbot.server.model import STATUSES, TERMINAL

    driver, server = browser, instant_server
    page_ready(driver, server, f"{server.url}/myspinbot/")
    page = driver.execute_async_script("""
        const done = arguments[arguments.length - 1];
        import(new URL("page/statuses.js", location.href).href).then(
          (m) => done({all: [...m.STATUSES], terminal: [...m.TERMINAL], active: [...m.ACTIVE]}),
          (e) => done({error: String(e)}));""")
    assert "error" not in page, page
    spec = requests.get(f"{server.url}/myspinbot/openapi.json", timeout=10).json()
    schema = spec["components"]["schemas"]["Job"]["properties"]["status"]
    while "$ref" in schema:  # an enum schema of its own
        schema = spec["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
    assert sorted(page["all"]) == sorted(schema["enum"]) == sorted(STATUSES)
    assert sorted(page["terminal"]) == sorted(TERMINAL)
    assert sorted(page["active"]) == sorted(set(STATUSES) - set(TERMINAL))
