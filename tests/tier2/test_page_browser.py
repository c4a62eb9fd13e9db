"""Tier 2: the page (``GET /myspinbot/``) in headless Chromium against a real ComfyUI.

Chromium and chromedriver are Debian's (``apt-get install chromium chromium-driver``, as .ci/run
does), driven with selenium; nothing is downloaded. The main test submits the fixture portrait and
speech with the page's form, watches the progress bar, plays the video and takes a screenshot.
"""

from __future__ import annotations

import os
import time

import pytest
import requests
from PIL import Image

from browser import SPEECH_S, browser, keep, open_page, run_lite_job, select, snapshot, wait  # noqa: F401


def test_page_submits_the_fixtures_shows_progress_and_plays_the_video(comfy_clone, browser, fixtures_dir, tmp_path):
    result = run_lite_job(browser, comfy_clone.url, fixtures_dir, tmp_path, server=comfy_clone)
    job_id = result["final"]["jobId"]
    job = requests.get(f"{comfy_clone.url}/myspinbot/jobs/{job_id}", timeout=10).json()
    assert job["status"] == "succeeded"


def test_page_shows_api_errors_and_retries_a_failed_job(comfy_clone, browser, fixtures_dir, tmp_path):
    """An API error from the form is shown as text; a job that fails (no face) can be retried from the history."""
    driver = browser
    open_page(driver, comfy_clone.url + "/api/myspinbot/")  # the /api mirror works too
    select(driver, "pipeline", "lite")
    driver.find_element("id", "script").send_keys("Hello there.")
    driver.find_element("id", "submit").click()
    error = wait(driver, lambda: driver.execute_script(
        "const e = document.getElementById('form-error'); return !e.hidden && e.textContent;"), 30, "the form error")
    assert error.startswith("missing_portrait:"), error

    blank = tmp_path / "no_face.png"
    Image.new("RGB", (320, 240), (120, 160, 200)).save(blank)
    driver.find_element("id", "portrait").send_keys(str(blank))
    driver.find_element("id", "submit").click()
    final = wait(driver, lambda: (s := snapshot(driver))["status"] in ("succeeded", "failed", "canceled") and s,
                  300, "the faceless job to finish", comfy_clone)
    assert final["status"] == "failed", final
    assert "no_face_detected" in final["error"], final
    first = final["jobId"]

    retry = wait(driver, lambda: driver.execute_script(
        "return document.querySelector(`#history tbody tr[data-job-id='${arguments[0]}'] button.retry`);", first),
        30, "the retry button")
    assert retry.is_enabled()
    driver.execute_script("arguments[0].click()", retry)
    second = wait(driver, lambda: (s := snapshot(driver))["jobId"] not in ("", first) and s["jobId"], 30, "the retried job")
    final = wait(driver, lambda: (s := snapshot(driver))["status"] in ("succeeded", "failed", "canceled") and s,
                  300, "the retried job to finish", comfy_clone)
    assert final["jobId"] == second and final["status"] == "failed"
    assert requests.get(f"{comfy_clone.url}/myspinbot/jobs/{second}", timeout=10).json()["pipeline"] == "lite"
    wait(driver, lambda: driver.execute_script(
        "return !!document.querySelector(`#history tbody tr[data-job-id='${arguments[0]}']`);", second), 30, "the new row")


def test_page_cancels_a_queued_and_a_running_job(comfy_clone, browser, fixtures_dir):
    """A long script job runs while a second one waits: both are canceled from the history."""
    driver = browser
    open_page(driver, comfy_clone.url + "/myspinbot/")
    select(driver, "pipeline", "lite")
    driver.find_element("id", "portrait").send_keys(str(fixtures_dir / "portrait_astronaut.png"))
    driver.find_element("id", "script").send_keys("This sentence is long enough to keep the animator busy for a while. " * 12)
    driver.find_element("id", "submit").click()
    running = wait(driver, lambda: snapshot(driver)["jobId"], 60, "the first job")
    driver.find_element("id", "submit").click()
    queued = wait(driver, lambda: (j := snapshot(driver)["jobId"]) not in ("", running) and j, 60, "the second job")

    def cancel(job_id: str, status: str) -> None:
        # Found and clicked in one script: the page redraws a row on every progress event of its job.
        wait(driver, lambda: driver.execute_script(
            "const r = document.querySelector(`#history tbody tr[data-job-id='${arguments[0]}']`);"
            " const b = r && r.dataset.status === arguments[1] && r.querySelector('button.cancel');"
            " if (b) b.click(); return !!b;", job_id, status),
            120, f"a cancel button on the {status} job", comfy_clone)
        wait(driver, lambda: requests.get(f"{comfy_clone.url}/myspinbot/jobs/{job_id}", timeout=10).json()["status"]
              == "canceled", 120, f"job {job_id} to be canceled", comfy_clone, poll=0.5)
        wait(driver, lambda: driver.execute_script(
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
    button = wait(driver, lambda: driver.execute_script("return document.querySelector('.myspinbot-tab-button');"),
                   120, "the myspinbot sidebar button", comfy_clone, poll=0.5)
    driver.execute_script("arguments[0].click()", button)
    frame = wait(driver, lambda: driver.execute_script("return document.querySelector('iframe[title=myspinbot]');"),
                  30, "the sidebar iframe")
    assert frame.get_attribute("src") == comfy_clone.url + "/myspinbot/"
    driver.switch_to.frame(frame)
    wait(driver, lambda: driver.execute_script(
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
    keep(shot)


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
    message = wait(driver, lambda: driver.execute_script(
        "const a = document.getElementById('auth'); const e = document.getElementById('auth-error');"
        " return !a.hidden && !e.hidden && e.textContent;"), 30, "the token form")
    assert message.startswith("unauthorized:"), message
    driver.find_element("id", "token").send_keys(token)
    driver.find_element("id", "token-save").click()
    wait(driver, lambda: driver.execute_script(
        "return document.body.dataset.ready === 'true' && document.getElementById('auth').hidden;"), 30, "the page with the token")
    assert driver.find_element("id", "token-forget").is_displayed()

    select(driver, "pipeline", "lite")
    driver.find_element("id", "portrait").send_keys(str(fixtures_dir / "portrait_astronaut.png"))
    driver.find_element("id", "recording").send_keys(str(fixtures_dir / "speech_front_left.wav"))
    driver.find_element("id", "submit").click()
    final = wait(driver, lambda: (s := snapshot(driver))["status"] in ("succeeded", "failed", "canceled") and s,
                  300, "the job to finish", comfy_clone)
    assert final["status"] == "succeeded", final
    # The page fetched the MP4 with the token and plays it from memory (a blob: URL). ComfyUI's
    # Content-Security-Policy under --disable-api-nodes (as here) forbids blob: media: then the page says so.
    outcome = wait(driver, lambda: driver.execute_script(
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
