"""Tier 1: the page's Profiles card in headless Chromium against the real job API on a fake host.

The fake host finishes every prompt at once: a train_profile job's "Save reference" writes a few
bytes (the reference crop), a video job's "Save video" a few bytes of MP4. The test creates a
profile with the form (the real portrait fixture + a mirrored copy, a voice joined from the real
speech fixtures), sees it become ready in the list (the page polls while it trains), picks it
in the "New video" form for an f5 job (the portrait, voice and transcript fields hide; the job
is submitted with ``profile`` and none of them), then deletes it from the list.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import requests
from PIL import Image

from browser import browser, select, wait  # noqa: F401
from fake_host import FakeHost, place_models
from test_page_browser_ci import BackgroundServer, page_ready
from test_profiles_api import voice_wav

from myspinbot.server.pipelines import node_by_title


class TrainingHost(FakeHost):
    """Finishes every enqueued prompt at once, whichever node saves its output."""

    async def enqueue(self, prompt_id: str, prompt: dict[str, Any]) -> None:
        await super().enqueue(prompt_id, prompt)
        title = "Save reference" if any(n["_meta"]["title"] == "Save reference" for n in prompt.values()) else "Save video"
        save = node_by_title(prompt, title)
        asyncio.get_running_loop().call_later(0.05, lambda: self.run_success(prompt_id, {save: b"bytes"}))

    def log_tail(self) -> str:
        return "(training host)"


@pytest.fixture
def profile_server(tmp_path):
    host = TrainingHost(tmp_path / "comfy")
    place_models(host, ["sd15_pruned_emaonly_fp16"])  # the default base checkpoint (the preflight looks for it)
    server = BackgroundServer(host, tmp_path).start()
    yield server
    server.stop()


def rows(driver) -> list[dict]:
    return driver.execute_script(
        "return [...document.querySelectorAll('#profiles tbody tr')].map(r => ({id: r.dataset.profileId, "
        "status: r.dataset.status, text: r.textContent}));")


def test_profiles_card_creates_trains_offers_and_deletes(profile_server, browser, fixtures_dir, tmp_path):  # noqa: F811
    driver, server = browser, profile_server
    page_ready(driver, server, f"{server.url}/myspinbot/")
    options = driver.execute_script("return [...document.getElementById('pipeline').options].map(o => o.value);")
    assert "train_profile" not in options and "f5" in options
    assert wait(driver, lambda: driver.execute_script("return !document.getElementById('profiles-empty').hidden;"),
                10, "the empty profile list", server)

    mirrored = tmp_path / "mirrored.png"
    Image.open(fixtures_dir / "portrait_astronaut.png").transpose(Image.FLIP_LEFT_RIGHT).save(mirrored)
    voice = tmp_path / "voice.wav"
    voice.write_bytes(voice_wav(fixtures_dir))
    driver.find_element("id", "profile-name").send_keys("Eileen")
    driver.find_element("id", "profile-photos").send_keys(f"{fixtures_dir / 'portrait_astronaut.png'}\n{mirrored}")
    driver.find_element("id", "profile-voice").send_keys(str(voice))
    driver.find_element("id", "profile-transcript").send_keys("Front left. Front right. Front left.")
    driver.find_element("id", "profile-steps").send_keys("3")
    driver.find_element("id", "profile-create").click()
    ready = wait(driver, lambda: [r for r in rows(driver) if r["status"] == "ready"], 20, "a ready profile", server)
    [row] = ready
    assert "Eileen" in row["text"] and "2 photo(s), with voice" in row["text"]
    profile = requests.get(f"{server.url}/myspinbot/profiles/{row['id']}", timeout=10).json()
    assert profile["options"] == {"steps": 3} and profile["voice"]["transcript"] == "Front left. Front right. Front left."

    select(driver, "pipeline", "f5")
    assert driver.execute_script("return !document.querySelector('[data-field=profile]').hidden;")
    select(driver, "profile", row["id"])
    hidden = driver.execute_script(
        "return ['portrait', 'recording', 'transcript'].map(f => document.querySelector(`[data-field=${f}]`).hidden);")
    assert hidden == [True, True, True]
    driver.execute_script("document.getElementById('speech').value = 'espeak';")
    driver.find_element("id", "script").send_keys("Hello, I am the astronaut.")
    driver.find_element("id", "submit").click()

    def f5_job():
        jobs = requests.get(f"{server.url}/myspinbot/jobs?pipeline=f5", timeout=10).json()["jobs"]
        return jobs[0] if jobs and jobs[0]["status"] == "succeeded" else None

    job = wait(driver, f5_job, 20, "the f5 job with the profile", server)
    submitted = server.call(lambda: server.service.get(job["id"]).params)
    assert submitted["profile"] == row["id"] and submitted["speech"] == "espeak"
    assert submitted["portrait"] == f"myspinbot/profiles/{row['id']}/reference.png"

    driver.execute_script("document.querySelector('#profiles tbody tr button.danger').click();")
    wait(driver, lambda: rows(driver) == [], 10, "the profile to be deleted", server)
    assert requests.get(f"{server.url}/myspinbot/profiles/{row['id']}", timeout=10).status_code == 404
    assert not (server.host.input_dir / "myspinbot" / "profiles" / row["id"]).exists()


def test_profiles_card_sends_voice_clips_for_fine_tuning(profile_server, browser, fixtures_dir, tmp_path):  # noqa: F811
    from test_profiles_voice_finetune import clip_wav, said

    driver, server = browser, profile_server
    place_models(server.host, ["F5TTS_v1_Base", "vocos_mel_24khz"])  # the fine-tune's preflight
    page_ready(driver, server, f"{server.url}/myspinbot/")
    clips = []
    for name in ("b_take.wav", "a_take.wav"):  # sent in file-name order: a, then b
        path = tmp_path / name
        path.write_bytes(clip_wav(fixtures_dir, 5 if name.startswith("a") else 4))
        clips.append(path)
    driver.find_element("id", "profile-name").send_keys("Eileen")
    driver.find_element("id", "profile-photos").send_keys(str(fixtures_dir / "portrait_astronaut.png"))
    driver.execute_script("document.querySelector('#profile-form details').open = true;")
    driver.find_element("id", "profile-clips").send_keys("\n".join(str(p) for p in clips))
    driver.find_element("id", "profile-clip-transcripts").send_keys(f"{said(5)}\n{said(4)}")
    driver.find_element("id", "profile-fine-tune").click()
    driver.find_element("id", "profile-steps").send_keys("3")
    driver.find_element("id", "profile-create").click()
    [row] = wait(driver, lambda: [r for r in rows(driver) if r["status"] == "ready"], 20, "a ready profile", server)
    assert "with a fine-tuned voice" in row["text"]
    profile = requests.get(f"{server.url}/myspinbot/profiles/{row['id']}", timeout=10).json()
    assert profile["options"] == {"steps": 3, "fine_tune_voice": True}
    assert profile["voice_model"] == f"myspinbot/profile_{row['id']}"
    metadata = server.host.input_dir / "myspinbot" / "profiles" / row["id"] / "voice_clips" / "metadata.csv"
    assert metadata.read_text().splitlines() == [f"clip_001.wav|{said(5)}", f"clip_002.wav|{said(4)}"]
