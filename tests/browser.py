"""Shared helpers of the page's browser tests (tier 1 against a fake host, tier 2 against a real ComfyUI).

Chromium and chromedriver are Debian's (``apt-get install chromium chromium-driver``, as .ci/run
does), driven with selenium; nothing is downloaded. A test module imports the ``browser`` fixture
(``from browser import browser``) and the helpers it needs. ``run_lite_job`` is the page's main
flow: submit the fixture portrait and speech with the form, watch the progress bar, play the video
and take a screenshot.
"""

from __future__ import annotations

import io
import os
import shutil
import time
from pathlib import Path

import pytest
from PIL import Image, ImageStat

SPEECH_S = 1.48  # speech_front_left.wav
SCREENSHOT_DIR_ENV = "MYSPINBOT_SCREENSHOT_DIR"  # set it to keep the screenshots (e.g. as CI artifacts)


def browser_paths() -> tuple[str | None, str | None]:
    chromium = next((p for p in map(shutil.which, ("chromium", "chromium-browser", "google-chrome")) if p), None)
    driver = shutil.which("chromedriver") or ("/usr/bin/chromedriver" if os.path.exists("/usr/bin/chromedriver") else None)
    return chromium, driver


@pytest.fixture
def browser(tmp_path):
    """A fresh headless Chromium (own profile, no background network) under chromedriver."""
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        pytest.skip("PAGE TEST SKIPPED: the selenium package is not installed (it is in requirements-test.txt)")
    chromium, chromedriver = browser_paths()
    if chromium is None or chromedriver is None:
        pytest.skip("PAGE TEST SKIPPED: Chromium or chromedriver is missing; install Debian's "
                    "'chromium chromium-driver' (.ci/run does)")
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-quic",
                 "--no-first-run", "--no-default-browser-check", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--disable-extensions", "--mute-audio",
                 "--window-size=1280,1100", f"--user-data-dir={tmp_path / 'chromium-profile'}"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    service = Service(executable_path=chromedriver, log_output=str(tmp_path / "chromedriver.log"))
    driver = webdriver.Chrome(options=options, service=service)
    driver.set_script_timeout(30)
    yield driver
    driver.quit()


def console(driver) -> str:
    try:
        return "\n".join(f"{e['level']}: {e['message']}" for e in driver.get_log("browser"))
    except Exception:  # noqa: BLE001 - diagnostics only
        return "(no browser log)"


def wait(driver, condition, timeout: float, what: str, server=None, poll: float = 0.1):
    """Poll ``condition()`` until it returns something truthy; fail with the page's state and logs
    (and ``server.log_tail()`` when a server is given)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(poll)
    state = driver.execute_script(
        "return {form: document.getElementById('form-error')?.textContent, job: document.getElementById('job-error')?.textContent,"
        " status: document.getElementById('job-status')?.textContent, stage: document.getElementById('stage')?.textContent}")
    pytest.fail(f"timed out after {timeout}s waiting for {what}; page: {state}\nbrowser log:\n{console(driver)}"
                + (f"\nserver log:\n{server.log_tail()}" if server else ""))


def open_page(driver, url: str):
    driver.get(url)
    wait(driver, lambda: driver.execute_script(
        "return document.body.dataset.ready === 'true' && [...document.getElementById('pipeline').options].some(o => o.value === 'lite')"),
        30, "the page to load its pipelines")


def snapshot(driver) -> dict:
    return driver.execute_script("""
        const $ = (id) => document.getElementById(id);
        const box = $('progress');
        return {visible: !!box && !box.hidden && box.offsetHeight > 0, status: $('job-status').textContent,
                stage: $('stage').textContent, percent: $('percent').textContent, eta: $('eta').textContent,
                fill: $('progress-fill').style.width, error: $('job-error').hidden ? '' : $('job-error').textContent,
                jobId: $('job-id').title};""")


def keep(path: Path) -> Path:
    """Copy a screenshot to ``$MYSPINBOT_SCREENSHOT_DIR`` when it is set; returns where it is kept."""
    target = os.environ.get(SCREENSHOT_DIR_ENV)
    if not target:
        return path
    Path(target).mkdir(parents=True, exist_ok=True)
    kept = Path(target) / path.name
    shutil.copyfile(path, kept)
    return kept


def select(driver, element_id: str, value: str) -> None:
    from selenium.webdriver.support.ui import Select

    Select(driver.find_element("id", element_id)).select_by_value(value)


def run_lite_job(driver, base_url: str, fixtures_dir: Path, tmp_path: Path, *, server=None, timeout: float = 300) -> dict:
    """The page's main flow: open ``base_url``/myspinbot/, submit the fixture portrait and speech to
    the lite pipeline, check the progress bar (visible, with a stage), that the job succeeds and that
    the <video> loads (about ``SPEECH_S`` long, the portrait's size) and plays; then save a screenshot
    with a frame of the video held and check it. Returns ``{final, seen, video, shot}``."""
    open_page(driver, base_url + "/myspinbot/")
    select(driver, "pipeline", "lite")
    assert driver.find_element("id", "recording").is_displayed()
    assert not driver.find_element("id", "prompt").is_displayed()  # lite takes no prompt
    driver.find_element("id", "portrait").send_keys(str(fixtures_dir / "portrait_astronaut.png"))
    driver.find_element("id", "recording").send_keys(str(fixtures_dir / "speech_front_left.wav"))
    driver.find_element("id", "submit").click()

    # The progress bar appears with a stage; remember what it showed on the way.
    seen: list[dict] = []
    progress_shot = tmp_path / "myspinbot_page_progress.png"

    def progressing():
        snap = snapshot(driver)
        if snap["visible"] and snap["stage"]:
            seen.append(snap)
            if snap["status"] == "running" and not progress_shot.exists():
                driver.save_screenshot(str(progress_shot))  # the bar mid-job (kept with MYSPINBOT_SCREENSHOT_DIR)
                keep(progress_shot)
        return snap["status"] in ("succeeded", "failed", "canceled") and snap

    final = wait(driver, progressing, timeout, "the job to finish", server, poll=0.05)
    assert final["status"] == "succeeded", (final, seen[-5:], console(driver), server.log_tail() if server else "")
    assert seen, "the progress bar never showed a stage"
    assert all(s["visible"] for s in seen)
    stages = [s["stage"] for s in seen]
    assert any(s in ("queued", "starting", "speech", "animate", "encode", "store") or s.startswith("queued") for s in stages), stages
    assert final["percent"] == "100%" and final["fill"] == "100%"
    job_id = final["jobId"]

    # The video element plays the job's MP4.
    video = wait(driver, lambda: driver.execute_script(
        "const v = document.getElementById('video'); return v.readyState >= 2 && !document.getElementById('player').hidden"
        " && {src: v.currentSrc, duration: v.duration, width: v.videoWidth, height: v.videoHeight, readyState: v.readyState};"),
        60, "the video to load", server)
    assert video["src"].endswith(f"/myspinbot/jobs/{job_id}/outputs/video"), video
    assert abs(video["duration"] - SPEECH_S) < 0.15, video
    with Image.open(fixtures_dir / "portrait_astronaut.png") as portrait:
        assert (video["width"], video["height"]) == portrait.size
    played = driver.execute_async_script("""
        const done = arguments[arguments.length - 1];
        const v = document.getElementById('video');
        v.pause(); v.muted = true; v.currentTime = 0;
        v.play().then(() => setTimeout(() => done({t: v.currentTime, paused: v.paused, error: null}), 700),
                      (e) => done({error: String(e)}));""")
    assert played["error"] is None, played
    assert played["t"] > 0.2, played
    # Hold a frame in the middle of the speech for the screenshot.
    driver.execute_async_script("""
        const done = arguments[arguments.length - 1];
        const v = document.getElementById('video');
        v.pause(); v.addEventListener('seeked', () => done(true), {once: true}); v.currentTime = 0.7;""")

    # The history lists the job as succeeded.
    wait(driver, lambda: driver.execute_script(
        "const r = document.querySelector(`#history tbody tr[data-job-id='${arguments[0]}']`);"
        " return r && r.dataset.status === 'succeeded';", job_id), 30, "the history row", server)

    shot = tmp_path / "myspinbot_page.png"
    assert driver.save_screenshot(str(shot))
    kept = keep(shot)
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(data) > 30_000, len(data)
    with Image.open(io.BytesIO(data)) as image:
        image.load()
        assert image.size[0] >= 800 and image.size[1] >= 600
        # The video's area shows a picture (the portrait), not a blank box.
        rect = driver.execute_script("const r = document.getElementById('video').getBoundingClientRect();"
                                     " return [r.left, r.top, r.right, r.bottom].map(Math.round);")
        scale = image.size[0] / driver.execute_script("return window.innerWidth")
        crop = image.convert("RGB").crop(tuple(int(v * scale) for v in rect))
        assert crop.size[0] > 100 and crop.size[1] > 100, rect
        assert max(ImageStat.Stat(crop).stddev) > 20, "the video area of the screenshot is flat"
    return {"final": final, "seen": seen, "video": video, "played": played, "shot": kept}
