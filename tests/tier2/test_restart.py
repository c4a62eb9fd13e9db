"""Tier 2: ComfyUI killed (SIGKILL) with one job running and three queued, then started again.

This test runs its OWN ComfyUI (clone mode), not the shared session ones: it kills it. The
second process uses the same scratch folder (base, user, input and output directories), so the
job store (SQLite in the user directory) and the uploaded inputs survive; only the port changes.

Speech: ``speech_front_left.wav`` and ``speech_front_right.wav`` (the real fixtures) repeated
with short pauses into about 8 s of audio per job, so that the first job is still animating
when ComfyUI is killed and the other three are waiting in its queue.

After the restart every job must be there; each one is queued again (once) and runs to a
terminal status; none may be ``succeeded`` without its output file, downloadable and non-empty.
"""

from __future__ import annotations

import time

import numpy as np
import pytest
import requests

from comfy_process import ComfyProcess, comfyui_dir
from myspinbot.speech import load_audio, write_wav

TERMINAL = ("succeeded", "failed", "canceled", "expired")
SPEECH_SECONDS = 8.0


@pytest.fixture(scope="module")
def long_speech(fixtures_dir, tmp_path_factory):
    left, rate = load_audio(fixtures_dir / "speech_front_left.wav")
    right, _ = load_audio(fixtures_dir / "speech_front_right.wav")
    pause = np.zeros((1, rate // 2), np.float32)
    unit = np.concatenate([left, pause, right, pause], axis=1)
    repeats = int(np.ceil(SPEECH_SECONDS * rate / unit.shape[1]))
    audio = np.concatenate([unit] * repeats, axis=1)[:, : int(SPEECH_SECONDS * rate)]
    path = tmp_path_factory.mktemp("speech") / "speech_8s.wav"
    write_wav(path, audio, rate)
    return path


def get_job(comfy: ComfyProcess, job_id: str) -> dict:
    r = requests.get(f"{comfy.url}/myspinbot/jobs/{job_id}", timeout=10)
    assert r.status_code == 200, (job_id, r.status_code, r.text)
    return r.json()


def wait_for(predicate, timeout: float, what: str, comfy: ComfyProcess):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        if comfy.proc.poll() is not None:
            raise RuntimeError(f"ComfyUI died while waiting for {what}:\n{comfy.log_tail()}")
        time.sleep(0.25)
    raise TimeoutError(f"{what} not reached after {timeout}s:\n{comfy.log_tail()}")


def test_sigkill_with_one_running_and_three_queued_loses_no_job(fixtures_dir, long_speech, tmp_path_factory):
    scratch = tmp_path_factory.mktemp("comfy-restart")
    env = {"OLLAMA_HOST": "http://127.0.0.1:9"}
    first = ComfyProcess("clone", scratch, comfyui_dir(), env=env).start()
    processes = [first]
    try:
        portrait = (fixtures_dir / "portrait_astronaut.png").read_bytes()
        speech = long_speech.read_bytes()
        ids = []
        for seed in range(4):
            r = requests.post(first.url + "/myspinbot/jobs", data={"pipeline": "lite", "seed": str(seed)},
                              files={"portrait": ("portrait.png", portrait, "image/png"),
                                     "audio": ("speech.wav", speech, "audio/wav")}, timeout=60)
            assert r.status_code == 202, r.text
            ids.append(r.json()["id"])

        # Kill while the first job is animating and the other three wait in ComfyUI's queue.
        def first_animating():
            job = get_job(first, ids[0])
            assert job["status"] not in TERMINAL, job
            return job if job["status"] == "running" and job["progress"]["stage"] == "animate" else None

        running = wait_for(first_animating, 120, "the first job animating", first)
        assert running["progress"]["stages"] == 4 and running["progress"]["stage_index"] == 1  # speech, animate, ...
        before = {i: get_job(first, i) for i in ids[1:]}
        assert [before[i]["status"] for i in ids[1:]] == ["queued"] * 3, before
        assert [before[i]["queue_position"] for i in ids[1:]] == [1, 2, 3]
        killed_at = time.monotonic()
        first.kill()
        assert first.proc.returncode == -9

        second = ComfyProcess("clone", scratch, comfyui_dir(), env=env).start()
        processes.append(second)
        assert second.port != first.port
        restarted_in = time.monotonic() - killed_at

        # Right after the restart: all four are there, queued (or already running) again, none is done.
        after = {i: get_job(second, i) for i in ids}
        for job_id, job in after.items():
            assert job["status"] in ("queued", "running"), job
            assert job["outputs"] == [] and job["error"] is None, job
        assert after[ids[0]]["progress"]["value"] < running["progress"]["value"] or after[ids[0]]["status"] == "running"

        # The first job's weighted progress, watched while it runs again: it never goes down and
        # stays below 1 until the job has succeeded.
        samples = []
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline:
            job = get_job(second, ids[0])
            samples.append((job["status"], job["progress"]))
            if job["status"] in TERMINAL:
                break
            time.sleep(0.2)
        values = [p["value"] for _, p in samples]
        assert values == sorted(values), values
        assert all(p["value"] < 1 for status, p in samples if status != "succeeded"), samples
        steps = [p for _, p in samples if p["steps"]]
        assert steps and all(0 <= p["step"] <= p["steps"] for p in steps), samples
        etas = [p["eta_seconds"] for status, p in samples if status == "running" and p["eta_seconds"] is not None]
        done = {i: second.wait_job(i, timeout=240) for i in ids}
        for job_id, job in done.items():
            assert job["status"] in TERMINAL, job
            if job["status"] == "succeeded":
                [video] = [o for o in job["outputs"] if o["name"] == "video"]
                r = requests.get(second.url + video["url"], timeout=60)
                assert r.status_code == 200 and len(r.content) == video["size_bytes"] > 0, (job, r.status_code)
            else:
                assert job["outputs"] == [] or job["status"] != "succeeded"
        # Inputs intact, requeued once: every one of them ran again to the end, in the new process.
        assert [done[i]["status"] for i in ids] == ["succeeded"] * 4, done
        for job_id in ids:
            history = requests.get(f"{second.url}/history/{job_id}", timeout=10).json()
            assert history[job_id]["status"]["status_str"] == "success"
        # The kill left no half-written second output next to the finished one.
        outputs = sorted(p.name for p in (second.output_dir / "myspinbot" / ids[0]).iterdir())
        assert len(outputs) == 1, outputs
        print(f"\nrestart: ComfyUI back in {restarted_in:.1f}s; 4 jobs re-run in "
              f"{time.monotonic() - killed_at - restarted_in:.1f}s; first job's ETAs: {etas}")
    finally:
        for proc in processes:
            proc.stop()
