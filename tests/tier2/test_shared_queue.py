"""Tier 2: three real ComfyUI processes with the pack on one PostgreSQL job queue.

Each has its own ComfyUI folders (input, output: nothing on a shared disk); they share one
database (``MYSPINBOT_DATABASE_URL``, a throwaway PostgreSQL started by the tests) and one bucket
of moto's S3 server (``MYSPINBOT_S3_*``), through which the inputs and outputs cross servers.
Lite jobs on 1.5 s of real speech, submitted round-robin to the three servers, all succeed
exactly once with one history seen from every server and every output served by every server;
a server SIGKILLed while running a job has that job reclaimed and finished by another; a server
paused (SIGSTOP) past its lease has its late writes refused.

``MYSPINBOT_T2_SHARED_JOBS`` sets the number of jobs of the first test (default 30).
"""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path

import pytest
import requests

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))
from comfy_process import ComfyProcess, comfyui_dir  # noqa: E402
from conftest import S3_ACCESS_KEY, S3_SECRET_KEY  # noqa: E402

LEASE_S = 4.0
BUCKET = "shared-queue-t2"
POLL_S = 0.5
TERMINAL = ("succeeded", "failed", "canceled")


@pytest.fixture(scope="module")
def shared(tmp_path_factory, postgres_server, s3_standin):
    url = postgres_server.create_database()
    procs = []
    for n in range(3):  # each its own ComfyUI folders
        proc = ComfyProcess("clone", tmp_path_factory.mktemp(f"comfy-shared-{n}"), comfyui_dir(), env={
            "OLLAMA_HOST": "http://127.0.0.1:9", "MYSPINBOT_DATABASE_URL": url, "MYSPINBOT_SERVER_ID": f"s{n}",
            "MYSPINBOT_LEASE_S": str(LEASE_S), "MYSPINBOT_CLAIM_POLL_S": str(POLL_S),
            "MYSPINBOT_S3_ENDPOINT": s3_standin.endpoint, "MYSPINBOT_S3_ACCESS_KEY": S3_ACCESS_KEY,
            "MYSPINBOT_S3_SECRET_KEY": S3_SECRET_KEY, "MYSPINBOT_S3_REGION": "us-east-1",
            "MYSPINBOT_S3_BUCKET": BUCKET, "MYSPINBOT_S3_RETRIES": "2", "MYSPINBOT_S3_BACKOFF_S": "0.1"})
        procs.append(proc)
    assert len({p.input_dir for p in procs}) == 3 and len({p.output_dir for p in procs}) == 3
    try:
        for proc in procs:
            proc.start()
        yield url, procs
    finally:
        for proc in procs:
            if proc.proc is not None and proc.proc.poll() is None:
                os.kill(proc.proc.pid, signal.SIGCONT)
            proc.stop()
        postgres_server.drop_database(url)


def rows(url: str, *job_ids: str) -> dict[str, tuple]:
    """job id → (status, attempt, worker) straight from the database."""
    import psycopg

    with psycopg.connect(url) as conn:
        found = conn.execute("SELECT id, status, attempt, worker FROM jobs WHERE id = ANY(%s)", (list(job_ids),)).fetchall()
    return {r[0]: r[1:] for r in found}


def submit(proc: ComfyProcess, fixtures_dir: Path, seconds: int = 1) -> str:
    audio = (fixtures_dir / "speech_front_left.wav").read_bytes()
    if seconds > 1:  # a longer job: the recording again and again
        from myspinbot.speech import load_audio, write_wav
        import numpy as np

        samples, rate = load_audio(fixtures_dir / "speech_front_left.wav")
        path = Path(proc.scratch) / f"long-{seconds}.wav"
        write_wav(path, np.tile(samples, int(np.ceil(seconds * rate / samples.shape[-1])))[..., : seconds * rate], rate)
        audio = path.read_bytes()
    r = requests.post(proc.url + "/myspinbot/jobs", data={"pipeline": "lite"}, timeout=60, files={
        "portrait": ("portrait.png", (fixtures_dir / "portrait_astronaut.png").read_bytes(), "image/png"),
        "audio": ("speech.wav", audio, "audio/wav")})
    assert r.status_code == 202, r.text
    return r.json()["id"]


def wait_all(proc: ComfyProcess, job_ids: list[str], timeout: float) -> dict[str, dict]:
    deadline, done = time.monotonic() + timeout, {}
    while time.monotonic() < deadline and len(done) < len(job_ids):
        for job_id in job_ids:
            if job_id not in done:
                job = requests.get(f"{proc.url}/myspinbot/jobs/{job_id}", timeout=10).json()
                if job.get("status") in TERMINAL:  # (a 503 envelope while the database is away)
                    done[job_id] = job
        time.sleep(0.5)
    assert len(done) == len(job_ids), f"not finished after {timeout}s: {set(job_ids) - set(done)}\n{proc.log_tail()}"
    return done


def history(proc: ComfyProcess) -> list[dict]:
    jobs, cursor = [], None
    while True:
        page = requests.get(f"{proc.url}/myspinbot/jobs", params={"limit": 100, **({"cursor": cursor} if cursor else {})},
                            timeout=10).json()
        jobs += page["jobs"]
        cursor = page.get("next_cursor")
        if not cursor:
            return jobs


def test_jobs_submitted_across_three_servers_all_succeed_once_with_one_history(shared, fixtures_dir):
    url, procs = shared
    count = int(os.environ.get("MYSPINBOT_T2_SHARED_JOBS", "30"))
    ids = [submit(procs[n % 3], fixtures_dir) for n in range(count)]
    done = wait_all(procs[0], ids, timeout=60.0 + 20.0 * count)
    assert {j["status"] for j in done.values()} == {"succeeded"}, {k: j["error"] for k, j in done.items() if j["error"]}
    found = rows(url, *ids)
    assert {attempt for _, attempt, _ in found.values()} == {1}  # each ran once
    workers = [worker for _, _, worker in found.values()]
    print(f"jobs per server: {({w: workers.count(w) for w in sorted(set(workers))})}")
    assert len(set(workers)) >= 2, workers  # the queue really was shared
    views = [history(p) for p in procs]
    assert views[0] == views[1] == views[2]
    servers = requests.get(f"{procs[1].url}/myspinbot/capabilities", timeout=60).json()["servers"]
    assert [s["id"] for s in servers] == ["s0", "s1", "s2"] and all(s["live"] for s in servers), servers
    for job_id in ids[:3]:  # every server serves any job's video (stored under its attempt's prefix)
        uri = done[job_id]["outputs"][0]["storage"]["uri"]
        assert uri.startswith(f"s3://{BUCKET}/jobs/{job_id}/attempt-1/"), uri
        for proc in procs:
            video = requests.get(f"{proc.url}/myspinbot/jobs/{job_id}/outputs/video", timeout=30)
            assert video.status_code == 200 and video.content[:12].find(b"ftyp") >= 0


def test_a_killed_servers_job_is_reclaimed_and_finished_by_another(shared, fixtures_dir):
    url, procs = shared
    job_id = submit(procs[0], fixtures_dir, seconds=12)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        status, attempt, worker = rows(url, job_id)[job_id]
        if status == "running":
            break
        time.sleep(0.2)
    assert status == "running", status
    victim = next(p for p in procs if p.extra_env["MYSPINBOT_SERVER_ID"] == worker)
    victim.kill()  # SIGKILL, mid-run
    killed_at = time.monotonic()
    survivor = next(p for p in procs if p is not victim and p.proc.poll() is None)
    while time.monotonic() < killed_at + LEASE_S + POLL_S + 5.0:  # reclaimed within lease + a poll (+ slack)
        status, attempt, new_worker = rows(url, job_id)[job_id]
        if attempt == 2:
            break
        time.sleep(0.2)
    assert attempt == 2 and new_worker != worker, (status, attempt, new_worker)
    job = wait_all(survivor, [job_id], timeout=240.0)[job_id]
    assert job["status"] == "succeeded", job["error"]
    assert rows(url, job_id)[job_id] == ("succeeded", 2, new_worker)


def test_a_paused_servers_late_writes_are_refused(shared, fixtures_dir):
    url, procs = shared
    alive = [p for p in procs if p.proc.poll() is None]
    assert len(alive) >= 2
    job_id = submit(alive[0], fixtures_dir, seconds=12)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        status, attempt, worker = rows(url, job_id)[job_id]
        if status == "running":
            break
        time.sleep(0.2)
    paused = next(p for p in alive if p.extra_env["MYSPINBOT_SERVER_ID"] == worker)
    os.kill(paused.proc.pid, signal.SIGSTOP)
    try:
        deadline = time.monotonic() + LEASE_S + POLL_S + 10.0
        while time.monotonic() < deadline and rows(url, job_id)[job_id][1] < 2:
            time.sleep(0.2)
        assert rows(url, job_id)[job_id][1] == 2  # another server took it over
    finally:
        os.kill(paused.proc.pid, signal.SIGCONT)  # it wakes up believing it still runs the job
    other = next(p for p in alive if p is not paused)
    job = wait_all(other, [job_id], timeout=240.0)[job_id]
    assert job["status"] == "succeeded" and rows(url, job_id)[job_id][:2] == ("succeeded", 2)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and "lost" not in paused.log_text():
        time.sleep(0.5)
    assert "claim was lost" in paused.log_text() or "lost its lease" in paused.log_text(), paused.log_tail()
    assert paused.proc.poll() is None  # and it keeps serving
    assert requests.get(f"{paused.url}/myspinbot/jobs/{job_id}", timeout=10).json()["status"] == "succeeded"


def wait_running(url: str, job_id: str, timeout: float = 60.0) -> str:
    """Wait until the job runs somewhere; returns the server id running it."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status, _, worker = rows(url, job_id)[job_id]
        if status == "running":
            return worker
        time.sleep(0.2)
    raise AssertionError(f"job {job_id} not running after {timeout}s: {rows(url, job_id)}")


def test_cancel_from_one_server_stops_the_job_running_on_another_only(shared, fixtures_dir):
    url, procs = shared
    alive = [p for p in procs if p.proc.poll() is None]
    target = submit(alive[0], fixtures_dir, seconds=30)
    runner_id = wait_running(url, target)
    runner = next(p for p in alive if p.extra_env["MYSPINBOT_SERVER_ID"] == runner_id)
    other = next(p for p in alive if p is not runner)
    bystander = submit(other, fixtures_dir)
    r = requests.post(f"{other.url}/myspinbot/jobs/{target}/cancel", timeout=10)
    assert r.status_code in (200, 202), r.text
    asked = time.monotonic()
    job = wait_all(other, [target], timeout=30.0)[target]
    assert job["status"] == "canceled", (job, runner.log_tail(40))
    # the runner's heartbeat (every MYSPINBOT_CLAIM_POLL_S) interrupts at ComfyUI's next check
    assert time.monotonic() - asked < POLL_S + 5.0
    assert wait_all(other, [bystander], timeout=120.0)[bystander]["status"] == "succeeded"


def test_the_database_down_for_10_s_answers_503_and_everything_resumes(shared, fixtures_dir, postgres_server):
    url, procs = shared
    alive = [p for p in procs if p.proc.poll() is None]
    job_id = submit(alive[0], fixtures_dir, seconds=12)
    wait_running(url, job_id)
    postgres_server.pause()
    try:
        down_at = time.monotonic()
        answers = [requests.get(f"{p.url}/myspinbot/jobs/{job_id}", timeout=30) for p in alive]
        assert {a.status_code for a in answers} == {503}, [a.text for a in answers]
        assert {a.json()["error"]["code"] for a in answers} == {"database_unavailable"}
        assert all(requests.get(f"{p.url}/system_stats", timeout=10).status_code == 200 for p in alive)  # ComfyUI runs
        time.sleep(max(0.0, 10.0 - (time.monotonic() - down_at)))
    finally:
        postgres_server.resume()
    job = wait_all(alive[-1], [job_id], timeout=300.0)[job_id]
    assert job["status"] == "succeeded", job
    status, attempt, _ = rows(url, job_id)[job_id]
    print(f"after the outage the job succeeded on attempt {attempt}")
    fresh = submit(alive[0], fixtures_dir)  # and the queue works as before
    assert wait_all(alive[0], [fresh], timeout=120.0)[fresh]["status"] == "succeeded"
