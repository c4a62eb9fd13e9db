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

from browser import browser, run_lite_job  # noqa: F401
from fake_host import FakeHost, compose_app

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


class BackgroundServer:
    """The pack's routes (jobs, models, page) on a plain aiohttp app, served from a thread with its own loop."""

    def __init__(self, host: ExecutingHost, tmp_path: Path):
        self.host, self.tmp_path = host, tmp_path
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="myspinbot-page-server", daemon=True)
        self.runner: web.AppRunner | None = None
        self.url = ""

    async def _start(self) -> str:
        api = compose_app(self.host)  # as the plugin composes it; loopback: the page needs no token
        self.service = api.service
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


@pytest.fixture
def page_server(tmp_path):
    server = BackgroundServer(ExecutingHost(tmp_path / "comfy"), tmp_path).start()
    yield server
    server.stop()


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
