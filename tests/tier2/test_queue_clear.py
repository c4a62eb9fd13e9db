"""Tier 2: ComfyUI core's queue routes in a real ComfyUI (``COMFYUI_DIR``) leave no zombie jobs.

``POST /queue {"delete": [id]}`` and ``{"clear": true}`` (what ComfyUI's "Clear queue" button
sends) remove pending prompts behind the job API's back. The jobs of those prompts must end
``canceled`` (never run: no history entry) and stop counting against ``MYSPINBOT_MAX_QUEUED``;
the running job is not the queue's to clear and runs on.

This test runs its OWN ComfyUI with ``MYSPINBOT_MAX_QUEUED=3`` (the shared ones keep the
default). The running job speaks a long script (espeak-ng), so it runs well past the test's steps.
"""

from __future__ import annotations

import time

import pytest
import requests

from comfy_process import ComfyProcess, comfyui_dir

LONG_SCRIPT = " ".join(["The quick brown fox jumps over the lazy dog while the band plays on."] * 30)
MAX_QUEUED = 3


@pytest.fixture(scope="module")
def comfy(tmp_path_factory):
    proc = ComfyProcess("clone", tmp_path_factory.mktemp("comfy-queue-clear"), comfyui_dir(),
                        env={"OLLAMA_HOST": "http://127.0.0.1:9", "MYSPINBOT_MAX_QUEUED": str(MAX_QUEUED)}).start()
    yield proc
    proc.stop()


def submit(comfy: ComfyProcess, portrait: bytes, script: str, seed: int) -> requests.Response:
    return requests.post(comfy.url + "/myspinbot/jobs", data={"pipeline": "lite", "script": script, "seed": str(seed)},
                         files={"portrait": ("portrait.png", portrait, "image/png")}, timeout=60)


def accepted(comfy: ComfyProcess, portrait: bytes, seed: int) -> str:
    r = submit(comfy, portrait, f"Hello, I am job {seed}.", seed)
    assert r.status_code == 202, r.text
    return r.json()["id"]


def get(comfy: ComfyProcess, job_id: str) -> dict:
    r = requests.get(f"{comfy.url}/myspinbot/jobs/{job_id}", timeout=10)
    assert r.status_code == 200, r.text
    return r.json()


def wait_status(comfy: ComfyProcess, job_ids: list[str], status: str, timeout: float = 10.0) -> dict[str, dict]:
    deadline = time.monotonic() + timeout
    while True:
        jobs = {i: get(comfy, i) for i in job_ids}
        if all(j["status"] == status for j in jobs.values()):
            return jobs
        assert time.monotonic() < deadline, f"not all {status}: {jobs}\n{comfy.log_tail()}"
        time.sleep(0.1)


def assert_full(comfy: ComfyProcess, portrait: bytes) -> None:
    r = submit(comfy, portrait, "One too many.", 99)
    assert r.status_code == 429 and r.json()["error"]["code"] == "queue_full", r.text
    assert r.json()["error"]["details"]["queued"] == MAX_QUEUED


def core_queue(comfy: ComfyProcess, body: dict) -> None:
    r = requests.post(comfy.url + "/queue", json=body, timeout=10)
    assert r.status_code == 200, r.text


def test_core_delete_and_clear_queue_cancel_the_jobs_and_free_the_queue(comfy, fixtures_dir):
    portrait = (fixtures_dir / "portrait_astronaut.png").read_bytes()
    r = submit(comfy, portrait, LONG_SCRIPT, 1)
    assert r.status_code == 202, r.text
    long_job = r.json()["id"]
    wait_status(comfy, [long_job], "running", timeout=120)
    queued = [accepted(comfy, portrait, seed) for seed in (2, 3, 4)]
    assert [get(comfy, i)["queue_position"] for i in queued] == [1, 2, 3]
    assert_full(comfy, portrait)

    # Core's delete of one pending prompt: that job is canceled, a place is free again.
    core_queue(comfy, {"delete": [queued[1]]})
    deleted = wait_status(comfy, [queued[1]], "canceled")[queued[1]]
    assert deleted["completed_at"] and deleted["started_at"] is None and deleted["error"] is None, deleted
    assert "removed from ComfyUI's queue" in deleted["progress"]["message"], deleted
    assert [get(comfy, i)["status"] for i in (queued[0], queued[2])] == ["queued", "queued"]
    queued = [queued[0], queued[2], accepted(comfy, portrait, 5)]
    assert_full(comfy, portrait)

    # Core's Clear queue: every queued job is canceled; the running one runs on.
    core_queue(comfy, {"clear": True})
    wait_status(comfy, queued, "canceled")
    assert get(comfy, long_job)["status"] == "running"
    assert requests.get(comfy.url + "/queue", timeout=10).json()["queue_pending"] == []
    listed = requests.get(comfy.url + "/myspinbot/jobs?status=queued", timeout=10).json()
    assert listed["jobs"] == [], listed

    # None of them counts against the limit any more: three new jobs are accepted.
    fresh = [accepted(comfy, portrait, seed) for seed in (6, 7, 8)]
    assert_full(comfy, portrait)

    # Clean up through the job API; the removed jobs never ran.
    for job_id in [*fresh, long_job]:
        assert requests.post(f"{comfy.url}/myspinbot/jobs/{job_id}/cancel", timeout=10).status_code == 200
    wait_status(comfy, [*fresh, long_job], "canceled", timeout=60)
    for job_id in [deleted["id"], *queued, *fresh]:
        assert requests.get(f"{comfy.url}/history/{job_id}", timeout=10).json() == {}, job_id
