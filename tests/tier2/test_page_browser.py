"""Tier 2: the page (``GET /myspinbot/``) in headless Chromium against a real ComfyUI.

Chromium and chromedriver are Debian's (``apt-get install chromium chromium-driver``, as .ci/run
does), driven with selenium; nothing is downloaded. The main test submits the fixture portrait and
speech with the page's form, watches the progress bar, plays the video and takes a screenshot.
"""

from __future__ import annotations

import io
import os
import shutil
import time
from pathlib import Path

import pytest
import requests
from PIL import Image, ImageStat

SPEECH_S = 1.48  # speech_front_left.wav
SCREENSHOT_DIR_ENV = "MYSPINBOT_SCREENSHOT_DIR"  # set it to keep the screenshots (e.g. as CI artifacts)


def _browser_paths() -> tuple[str | None, str | None]:
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
    chromium, chromedriver = _browser_paths()
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


def _console(driver) -> str:
    try:
        return "\n".join(f"{e['level']}: {e['message']}" for e in driver.get_log("browser"))
    except Exception:  # noqa: BLE001 - diagnostics only
        return "(no browser log)"


def _wait(driver, condition, timeout: float, what: str, comfy=None, poll: float = 0.1):
    """Poll ``condition()`` until it returns something truthy; fail with the page's state and logs."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(poll)
    state = driver.execute_script(
        "return {form: document.getElementById('form-error')?.textContent, job: document.getElementById('job-error')?.textContent,"
        " status: document.getElementById('job-status')?.textContent, stage: document.getElementById('stage')?.textContent}")
    pytest.fail(f"timed out after {timeout}s waiting for {what}; page: {state}\nbrowser log:\n{_console(driver)}"
                + (f"\nComfyUI log:\n{comfy.log_tail()}" if comfy else ""))


def _open_page(driver, url: str):
    driver.get(url)
    _wait(driver, lambda: driver.execute_script(
        "return document.body.dataset.ready === 'true' && [...document.getElementById('pipeline').options].some(o => o.value === 'lite')"),
        30, "the page to load its pipelines")


def _snapshot(driver) -> dict:
    return driver.execute_script("""
        const $ = (id) => document.getElementById(id);
        const box = $('progress');
        return {visible: !!box && !box.hidden && box.offsetHeight > 0, status: $('job-status').textContent,
                stage: $('stage').textContent, percent: $('percent').textContent, eta: $('eta').textContent,
                fill: $('progress-fill').style.width, error: $('job-error').hidden ? '' : $('job-error').textContent,
                jobId: $('job-id').title};""")


def _keep(path: Path) -> None:
    target = os.environ.get(SCREENSHOT_DIR_ENV)
    if target:
        Path(target).mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, Path(target) / path.name)


def _select(driver, element_id: str, value: str) -> None:
    from selenium.webdriver.support.ui import Select

    Select(driver.find_element("id", element_id)).select_by_value(value)


def test_page_submits_the_fixtures_shows_progress_and_plays_the_video(comfy_clone, browser, fixtures_dir, tmp_path):
    driver = browser
    _open_page(driver, comfy_clone.url + "/myspinbot/")
    _select(driver, "pipeline", "lite")
    assert driver.find_element("id", "recording").is_displayed()
    assert not driver.find_element("id", "prompt").is_displayed()  # lite takes no prompt
    driver.find_element("id", "portrait").send_keys(str(fixtures_dir / "portrait_astronaut.png"))
    driver.find_element("id", "recording").send_keys(str(fixtures_dir / "speech_front_left.wav"))
    driver.find_element("id", "submit").click()

    # The progress bar appears with a stage; remember what it showed on the way.
    seen: list[dict] = []
    progress_shot = tmp_path / "myspinbot_page_progress.png"

    def progressing():
        snap = _snapshot(driver)
        if snap["visible"] and snap["stage"]:
            seen.append(snap)
            if snap["status"] == "running" and not progress_shot.exists():
                driver.save_screenshot(str(progress_shot))  # the bar mid-job (kept with MYSPINBOT_SCREENSHOT_DIR)
                _keep(progress_shot)
        return snap["status"] in ("succeeded", "failed", "canceled") and snap

    final = _wait(driver, progressing, 300, "the job to finish", comfy_clone, poll=0.05)
    assert final["status"] == "succeeded", (final, seen[-5:], _console(driver), comfy_clone.log_tail())
    assert seen, "the progress bar never showed a stage"
    assert all(s["visible"] for s in seen)
    stages = [s["stage"] for s in seen]
    assert any(s in ("queued", "starting", "speech", "animate", "encode", "store") or s.startswith("queued") for s in stages), stages
    assert final["percent"] == "100%" and final["fill"] == "100%"
    job_id = final["jobId"]
    job = requests.get(f"{comfy_clone.url}/myspinbot/jobs/{job_id}", timeout=10).json()
    assert job["status"] == "succeeded"

    # The video element plays the job's MP4.
    video = _wait(driver, lambda: driver.execute_script(
        "const v = document.getElementById('video'); return v.readyState >= 2 && !document.getElementById('player').hidden"
        " && {src: v.currentSrc, duration: v.duration, width: v.videoWidth, height: v.videoHeight};"),
        60, "the video to load", comfy_clone)
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
    _wait(driver, lambda: driver.execute_script(
        "const r = document.querySelector(`#history tbody tr[data-job-id='${arguments[0]}']`);"
        " return r && r.dataset.status === 'succeeded';", job_id), 30, "the history row")

    shot = tmp_path / "myspinbot_page.png"
    assert driver.save_screenshot(str(shot))
    _keep(shot)
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


def test_page_shows_api_errors_and_retries_a_failed_job(comfy_clone, browser, fixtures_dir, tmp_path):
    """An API error from the form is shown as text; a job that fails (no face) can be retried from the history."""
    driver = browser
    _open_page(driver, comfy_clone.url + "/api/myspinbot/")  # the /api mirror works too
    _select(driver, "pipeline", "lite")
    driver.find_element("id", "script").send_keys("Hello there.")
    driver.find_element("id", "submit").click()
    error = _wait(driver, lambda: driver.execute_script(
        "const e = document.getElementById('form-error'); return !e.hidden && e.textContent;"), 30, "the form error")
    assert error.startswith("missing_portrait:"), error

    blank = tmp_path / "no_face.png"
    Image.new("RGB", (320, 240), (120, 160, 200)).save(blank)
    driver.find_element("id", "portrait").send_keys(str(blank))
    driver.find_element("id", "submit").click()
    final = _wait(driver, lambda: (s := _snapshot(driver))["status"] in ("succeeded", "failed", "canceled") and s,
                  300, "the faceless job to finish", comfy_clone)
    assert final["status"] == "failed", final
    assert "no_face_detected" in final["error"], final
    first = final["jobId"]

    retry = _wait(driver, lambda: driver.execute_script(
        "return document.querySelector(`#history tbody tr[data-job-id='${arguments[0]}'] button.retry`);", first),
        30, "the retry button")
    assert retry.is_enabled()
    driver.execute_script("arguments[0].click()", retry)
    second = _wait(driver, lambda: (s := _snapshot(driver))["jobId"] not in ("", first) and s["jobId"], 30, "the retried job")
    final = _wait(driver, lambda: (s := _snapshot(driver))["status"] in ("succeeded", "failed", "canceled") and s,
                  300, "the retried job to finish", comfy_clone)
    assert final["jobId"] == second and final["status"] == "failed"
    assert requests.get(f"{comfy_clone.url}/myspinbot/jobs/{second}", timeout=10).json()["pipeline"] == "lite"
    _wait(driver, lambda: driver.execute_script(
        "return !!document.querySelector(`#history tbody tr[data-job-id='${arguments[0]}']`);", second), 30, "the new row")


def test_page_cancels_a_queued_and_a_running_job(comfy_clone, browser, fixtures_dir):
    """A long script job runs while a second one waits: both are canceled from the history."""
    driver = browser
    _open_page(driver, comfy_clone.url + "/myspinbot/")
    _select(driver, "pipeline", "lite")
    driver.find_element("id", "portrait").send_keys(str(fixtures_dir / "portrait_astronaut.png"))
    driver.find_element("id", "script").send_keys("This sentence is long enough to keep the animator busy for a while. " * 12)
    driver.find_element("id", "submit").click()
    running = _wait(driver, lambda: _snapshot(driver)["jobId"], 60, "the first job")
    driver.find_element("id", "submit").click()
    queued = _wait(driver, lambda: (j := _snapshot(driver)["jobId"]) not in ("", running) and j, 60, "the second job")

    def cancel(job_id: str, status: str) -> None:
        button = _wait(driver, lambda: driver.execute_script(
            "const r = document.querySelector(`#history tbody tr[data-job-id='${arguments[0]}']`);"
            " return r && r.dataset.status === arguments[1] && r.querySelector('button.cancel');", job_id, status),
            120, f"a cancel button on the {status} job", comfy_clone)
        driver.execute_script("arguments[0].click()", button)
        _wait(driver, lambda: requests.get(f"{comfy_clone.url}/myspinbot/jobs/{job_id}", timeout=10).json()["status"]
              == "canceled", 120, f"job {job_id} to be canceled", comfy_clone, poll=0.5)
        _wait(driver, lambda: driver.execute_script(
            "const r = document.querySelector(`#history tbody tr[data-job-id='${arguments[0]}']`);"
            " return r && r.dataset.status === 'canceled' && !!r.querySelector('button.retry');", job_id),
            30, "the canceled row with a retry button")

    cancel(queued, "queued")
    cancel(running, "running")


def test_sidebar_tab_opens_the_page_inside_comfyui(comfy_clone, browser, tmp_path):
    """ComfyUI's own frontend loads web/js/myspinbot_sidebar.js; its tab shows the page in an iframe."""
    listed = requests.get(comfy_clone.url + "/extensions", timeout=10).json()
    assert any(p.endswith("/myspinbot_sidebar.js") for p in listed), listed
    driver = browser
    driver.get(comfy_clone.url + "/")
    button = _wait(driver, lambda: driver.execute_script("return document.querySelector('.myspinbot-tab-button');"),
                   120, "the myspinbot sidebar button", comfy_clone, poll=0.5)
    driver.execute_script("arguments[0].click()", button)
    frame = _wait(driver, lambda: driver.execute_script("return document.querySelector('iframe[title=myspinbot]');"),
                  30, "the sidebar iframe")
    assert frame.get_attribute("src") == comfy_clone.url + "/myspinbot/"
    driver.switch_to.frame(frame)
    _wait(driver, lambda: driver.execute_script(
        "return document.body && document.body.dataset.ready === 'true'"
        " && [...document.getElementById('pipeline').options].some(o => o.value === 'lite');"), 30, "the page in the tab")
    driver.switch_to.default_content()
    # Close whatever first-run dialog the frontend opened (the template browser) before the screenshot.
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.keys import Keys

    for _ in range(3):
        if not driver.execute_script("return !!document.querySelector('[role=dialog]');"):
            break
        ActionChains(driver).send_keys(Keys.ESCAPE).perform()
        time.sleep(0.5)
    shot = tmp_path / "myspinbot_sidebar.png"
    assert driver.save_screenshot(str(shot))
    _keep(shot)


def test_page_asks_for_the_token_and_uses_it(comfy_clone, browser, fixtures_dir):
    """A refused token (401) opens the token form; with the right token the page polls (EventSource sends no
    header) and plays the video from memory (neither can a <video>). On loopback a wrong token is refused too."""
    token_file = comfy_clone.user_dir / "myspinbot" / "api_token"
    token = os.environ.get("MYSPINBOT_API_TOKEN") or (token_file.read_text().strip() if token_file.exists() else "")
    if not token:
        pytest.skip("no myspinbot API token on this ComfyUI (neither MYSPINBOT_API_TOKEN nor user/myspinbot/api_token)")
    driver = browser
    driver.get(comfy_clone.url + "/myspinbot/")
    driver.execute_script("localStorage.setItem('myspinbot.token.v1', 'not-the-token-0123456789')")
    driver.get(comfy_clone.url + "/myspinbot/")
    message = _wait(driver, lambda: driver.execute_script(
        "const a = document.getElementById('auth'); const e = document.getElementById('auth-error');"
        " return !a.hidden && !e.hidden && e.textContent;"), 30, "the token form")
    assert message.startswith("unauthorized:"), message
    driver.find_element("id", "token").send_keys(token)
    driver.find_element("id", "token-save").click()
    _wait(driver, lambda: driver.execute_script(
        "return document.body.dataset.ready === 'true' && document.getElementById('auth').hidden;"), 30, "the page with the token")
    assert driver.find_element("id", "token-forget").is_displayed()

    _select(driver, "pipeline", "lite")
    driver.find_element("id", "portrait").send_keys(str(fixtures_dir / "portrait_astronaut.png"))
    driver.find_element("id", "recording").send_keys(str(fixtures_dir / "speech_front_left.wav"))
    driver.find_element("id", "submit").click()
    final = _wait(driver, lambda: (s := _snapshot(driver))["status"] in ("succeeded", "failed", "canceled") and s,
                  300, "the job to finish", comfy_clone)
    assert final["status"] == "succeeded", final
    # The page fetched the MP4 with the token and plays it from memory (a blob: URL). ComfyUI's
    # Content-Security-Policy under --disable-api-nodes (as here) forbids blob: media: then the page says so.
    outcome = _wait(driver, lambda: driver.execute_script(
        "const v = document.getElementById('video'); const e = document.getElementById('job-error');"
        " if (v.readyState >= 2) return {src: v.currentSrc, duration: v.duration};"
        " return !e.hidden && e.textContent.startsWith('video_blocked') && {blocked: e.textContent};"),
        60, "the video (or the page's word that it cannot play it)", comfy_clone)
    link = driver.find_element("id", "download").get_attribute("href")
    assert link.startswith("blob:"), link
    if "blocked" in outcome:
        assert "--disable-api-nodes" in " ".join(comfy_clone.argv()), outcome
    else:
        assert outcome["src"].startswith("blob:"), outcome
        assert abs(outcome["duration"] - SPEECH_S) < 0.15, outcome
