"""Tier 1: the page shows a finished job's lip-sync score under its video (headless Chromium, fake host).

With the SyncNet model file in the fake model folder, the job service adds a score node to the
job's prompt; the fake host finishes the job at once with the score node's history block; the
page, showing the job from its history, prints LSE-D, LSE-C and the offset under the video.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from browser import browser, wait  # noqa: F401
from fake_host import FakeHost, place_models
from myspinbot.server.pipelines import node_by_title
from test_page_browser_ci import BackgroundServer, page_ready, submit_finished_job

BLOCK = {"metric": "syncnet", "model": "syncnet_v2.model", "offset_frames": 1, "lse_d": 7.25, "lse_c": 2.5,
         "windows": 32, "frames": 38, "faceless_frames": 0, "fps": 25.0, "conf_per_second": [2.5],
         "dist_per_second": [7.25]}


class ScoredHost(FakeHost):
    """Finishes every prompt at once: a few bytes of video, and the score node's block in the history."""

    async def enqueue(self, prompt_id: str, prompt: dict[str, Any]) -> None:
        await super().enqueue(prompt_id, prompt)
        asyncio.get_running_loop().call_later(0.05, self.finish, prompt_id, prompt)

    def finish(self, prompt_id: str, prompt: dict[str, Any]) -> None:
        sub = Path("myspinbot") / prompt_id
        (self.output_dir / sub).mkdir(parents=True, exist_ok=True)
        (self.output_dir / sub / "output_00001_.mp4").write_bytes(b"mp4")
        self.emit("execution_start", prompt_id=prompt_id)
        self.histories[prompt_id] = {"outputs": {
            node_by_title(prompt, "Save video"): {
                "images": [{"filename": "output_00001_.mp4", "subfolder": sub.as_posix(), "type": "output"}]},
            node_by_title(prompt, "Lip sync score: video"): {"myspinbot_quality": [BLOCK]},
        }, "status": {"status_str": "success", "completed": True}}
        self.emit("executing", node=None, prompt_id=prompt_id)

    def log_tail(self) -> str:
        return "(scored host)"


@pytest.fixture
def scored_server(tmp_path):
    host = ScoredHost(tmp_path / "comfy")
    place_models(host, ["syncnet_v2"])
    server = BackgroundServer(host, tmp_path).start()
    yield server
    server.stop()


def test_page_shows_the_lip_sync_score_under_the_video(scored_server, browser, fixtures_dir):  # noqa: F811
    driver, server = browser, scored_server
    job_id = submit_finished_job(server, fixtures_dir)
    page_ready(driver, server, f"{server.url}/myspinbot/")
    show = wait(driver, lambda: driver.execute_script(
        "const r = document.querySelector(`#history tbody tr[data-job-id='${arguments[0]}']`);"
        " return r && r.querySelector('button.show');", job_id), 30, "the job's row", server)
    driver.execute_script("arguments[0].click()", show)
    text = wait(driver, lambda: driver.execute_script(
        "const q = document.getElementById('quality'); return !q.hidden && q.textContent;"), 20, "the score line", server)
    assert text == ("Lip sync (SyncNet): LSE-D 7.25 (lower is better), LSE-C 2.50 (higher is better), "
                    "offset +1 frames"), text
