"""Tier 2, issue #9 item 3: with every limit at its default, a real ComfyUI refuses the four small
inputs that used to expand into gigabytes, each with a 4xx envelope naming the limit, and its
resident memory grows by less than 200 MB while it does.

The inputs are made here (``attack_inputs``): a 13000 x 13000 PNG (~160 KB), an hour of silent
FLAC (~650 KB), a 100 KB script, and 600 text fields of 1 MB each (sent as a stream that stalls
after a few fields, so the answer must come before the rest is sent). ComfyUI's RSS is sampled
every 20 ms from a thread while the requests run; the peak is compared with the RSS just before.
"""

from __future__ import annotations

import asyncio
import io
import os
import threading
import time

import aiohttp
import psutil
import pytest
from PIL import Image

from attack_inputs import StreamedForm, huge_png, long_script, silent_flac
from comfy_process import ComfyProcess, comfyui_dir

MIB = 1 << 20
MAX_GROWTH = 200 * MIB


@pytest.fixture(scope="module")
def comfy(tmp_path_factory):
    """A fresh ComfyUI (its own process: nothing else has run in it) with no MYSPINBOT_MAX_* set."""
    with pytest.MonkeyPatch.context() as mp:
        for name in [k for k in os.environ if k.upper().startswith("MYSPINBOT_MAX")]:
            mp.delenv(name)
        proc = ComfyProcess("clone", tmp_path_factory.mktemp("comfy-limits"), comfyui_dir(),
                            env={"OLLAMA_HOST": "http://127.0.0.1:9"}).start()
    yield proc
    proc.stop()


class PeakRss:
    """Samples a process's RSS every ``interval`` seconds in a thread; ``peak`` is the largest seen."""

    def __init__(self, pid: int, interval: float = 0.02):
        self.process = psutil.Process(pid)
        self.interval = interval
        self.peak = self.process.memory_info().rss
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self.process.memory_info().rss)
            time.sleep(self.interval)

    def __enter__(self) -> "PeakRss":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self.process.memory_info().rss)


def form(*parts: tuple[str, bytes | str, str | None]) -> aiohttp.FormData:
    data = aiohttp.FormData()
    for name, value, filename in parts:
        if filename is None:
            data.add_field(name, value)
        else:
            data.add_field(name, io.BytesIO(value), filename=filename, content_type="application/octet-stream")
    return data


def small_png() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (64, 64), (200, 150, 120)).save(buf, "PNG")
    return buf.getvalue()


async def expect_refusal(response: aiohttp.ClientResponse, code: str, limit: str) -> dict:
    text = await response.text()
    assert 400 <= response.status < 500, (response.status, text)
    error = (await response.json())["error"]
    assert error["code"] == code and error["details"]["limit"] == limit, error
    return error


async def attacks(url: str) -> list[dict]:
    """Send the four inputs; returns their error envelopes."""
    errors = []
    async with aiohttp.ClientSession(url, timeout=aiohttp.ClientTimeout(total=120)) as session:
        portrait = small_png()
        r = await session.post("/myspinbot/jobs", data=form(("pipeline", "lite", None), ("script", "Hello.", None),
                                                             ("portrait", huge_png(), "big.png")))
        errors.append(await expect_refusal(r, "image_too_large", "MYSPINBOT_MAX_IMAGE_SIDE"))
        r = await session.post("/myspinbot/jobs", data=form(("pipeline", "lite", None), ("portrait", portrait, "me.png"),
                                                             ("audio", silent_flac(3600.0), "hour.flac")))
        errors.append(await expect_refusal(r, "audio_too_long", "MYSPINBOT_MAX_AUDIO_S"))
        r = await session.post("/myspinbot/jobs", data=form(("pipeline", "lite", None), ("portrait", portrait, "me.png"),
                                                             ("script", long_script(100_000), None)))
        errors.append(await expect_refusal(r, "script_too_long", "MYSPINBOT_MAX_SCRIPT_CHARS"))
        megabyte = b"x" * MIB
        fields = StreamedForm([("pipeline", b"lite", None)] + [(f"field{i}", megabyte, None) for i in range(600)],
                              stall_after=4)
        try:
            r = await asyncio.wait_for(session.post("/myspinbot/jobs", data=fields.body(),
                                                    headers={"Content-Type": fields.content_type}), timeout=60)
            errors.append(await expect_refusal(r, "text_too_large", "MYSPINBOT_MAX_TEXT_BYTES"))
        finally:
            fields.release()
        assert fields.sent_parts <= 4, "the server waited for more fields than the limit needed"
    return errors


def test_small_inputs_that_expand_are_refused_without_growing_comfyui(comfy):
    import requests

    # Warm up what a refusal uses (Pillow, PyAV, the multipart reader) so the baseline includes it.
    r = requests.post(comfy.url + "/myspinbot/assets", files={"file": ("a.png", small_png())}, timeout=60)
    assert r.status_code in (200, 201), r.text
    r = requests.post(comfy.url + "/myspinbot/assets", files={"file": ("a.flac", silent_flac(2.0))}, timeout=60)
    assert r.status_code in (200, 201), r.text
    jobs_before = requests.get(comfy.url + "/myspinbot/jobs", timeout=10).json()["jobs"]
    baseline = psutil.Process(comfy.proc.pid).memory_info().rss

    with PeakRss(comfy.proc.pid) as rss:
        errors = asyncio.run(attacks(comfy.url))

    growth = rss.peak - baseline
    print(f"ComfyUI RSS {baseline / MIB:.0f} MB before, peak {rss.peak / MIB:.0f} MB (+{growth / MIB:.0f} MB)")
    assert [e["code"] for e in errors] == ["image_too_large", "audio_too_long", "script_too_long", "text_too_large"]
    assert growth < MAX_GROWTH, f"ComfyUI grew by {growth / MIB:.0f} MB refusing the inputs"
    assert requests.get(comfy.url + "/myspinbot/jobs", timeout=10).json()["jobs"] == jobs_before
    assert "Traceback" not in comfy.log_text()
