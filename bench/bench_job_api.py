"""Benchmark: the job API's submit and list latency in a real ComfyUI, beside core's own routes.

Needs ``COMFYUI_DIR`` (a ComfyUI 0.33 checkout; ``main.py --cpu`` is started through
``scripts/comfy_process.py``). What it does, in one ComfyUI process:

1. Before ComfyUI starts, writes ``--history`` (default 100,000) finished jobs into the job
   database in its user directory (succeeded 80 %, failed 15 %, canceled 5 %; pipelines lite,
   animate, infinitetalk; created over the last 10 days, so retention keeps them).
2. Holds ComfyUI's worker with a core prompt whose ``LoadImage`` reads a named pipe (it waits
   in ``open()`` without using the CPU, so no running job competes with the routes for the GIL),
   uploads a generated portrait and submits ``--queued`` (default 1,000) ``lite`` jobs, which wait.
3. Submit latency: ``--samples`` ``POST /myspinbot/jobs`` (JSON, asset id, a short script)
   interleaved with as many core ``POST /prompt`` of the very prompt a job queues (read back from
   the job database), so both see the same queue (1,000 waiting and growing).
4. List latency: ``GET /myspinbot/jobs?limit=50`` unfiltered, by status, by status and pipeline
   (several of each), with a cursor, and of the queued jobs, interleaved with core ``GET /queue``.
5. After ComfyUI stopped: the same lists in the database alone (``JobStore.page`` on the file),
   which tells the query's share from the rendering's.

Latency is the client's wall time of one request over a kept-alive connection (``requests``),
in milliseconds; p50 and p99 of each series and the p99 ratios job API / core are printed.
Every list is expected under 50 ms p99 (issue 10), over HTTP and in the database: the script
prints PASS or FAIL for each and exits 1 on a FAIL. Takes a few minutes on a 2-core machine.

Usage: ``COMFYUI_DIR=/path/to/ComfyUI python bench/bench_job_api.py [--history N] [--queued N] [--samples N]``
"""

from __future__ import annotations

import argparse
import io
import json
import os
import random
import sqlite3
import sys
import tempfile
import time
import uuid
from pathlib import Path

import requests

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "scripts"))
sys.path.insert(0, str(REPO / "custom_nodes"))

from comfy_process import ComfyProcess, comfyui_dir  # noqa: E402

LIST_LIMIT_MS = 50.0
BLOCKER = "bench-blocker.png"  # a named pipe in ComfyUI's input folder
DB_FILE = ("myspinbot", "jobs.sqlite3")  # plugin.STORE_FILE, under ComfyUI's user directory


def fill_history(path: Path, count: int, now: float) -> None:
    """Write ``count`` finished jobs through the pack's own store (one transaction)."""
    from myspinbot.server.model import Job
    from myspinbot.server.store import JobStore

    rnd = random.Random(10)
    statuses = ["succeeded"] * 16 + ["failed"] * 3 + ["canceled"]
    store = JobStore(path)
    span = 10 * 86400.0
    with store.db.transaction():
        for n in range(count):
            created = now - span + span * n / count
            store.save(Job(id=str(uuid.UUID(int=rnd.getrandbits(128), version=4)), status=rnd.choice(statuses),
                           pipeline=rnd.choice(("lite", "lite", "animate", "infinitetalk")), created_at=created,
                           started_at=created + 1, completed_at=created + 90, progress=1.0,
                           params={"portrait": "myspinbot/assets/x.png", "seed": n}, message="done",
                           progress_detail={"stage_index": 2, "stages": 3}))
    store.close()


def portrait_png() -> bytes:
    """A 256 px gradient PNG (the jobs never run, so it needs no face)."""
    from PIL import Image

    image = Image.new("RGB", (256, 256))
    image.putdata([(x, y, (x + y) // 2) for y in range(256) for x in range(256)])
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


def hold_worker(http: requests.Session, comfy: ComfyProcess) -> None:
    """Queue the blocking prompt and wait until ComfyUI's worker has taken it."""
    prompt = {"1": {"class_type": "LoadImage", "inputs": {"image": BLOCKER}},
              "2": {"class_type": "PreviewImage", "inputs": {"images": ["1", 0]}}}
    r = http.post(comfy.url + "/prompt", json={"prompt": prompt}, timeout=60)
    assert r.status_code == 200, r.text
    deadline = time.monotonic() + 60
    while not http.get(comfy.url + "/queue", timeout=60).json()["queue_running"]:
        assert time.monotonic() < deadline, "the blocking prompt never started"
        time.sleep(0.2)


def timed(call) -> tuple[float, requests.Response]:
    start = time.perf_counter()
    response = call()
    return (time.perf_counter() - start) * 1000.0, response


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, int(round(q * len(ordered))) - 1))]


def header(title: str) -> str:
    return f"\n{title:<84} {'p50 ms':>8} {'p99 ms':>8}"


def row(label: str, values: list[float]) -> str:
    return f"  {label:<82} {pct(values, 0.5):8.2f} {pct(values, 0.99):8.2f}   (n={len(values)})"


LISTS = {  # label → query of GET /myspinbot/jobs (the cursor of "page 2" is filled in at run time)
    "?limit=50": {"limit": 50},
    "?status=succeeded&limit=50": {"status": "succeeded", "limit": 50},
    "?status=failed&pipeline=animate&limit=50": {"status": "failed", "pipeline": "animate", "limit": 50},
    "?status=succeeded,canceled&pipeline=lite,infinitetalk&limit=50": {"status": "succeeded,canceled",
                                                                      "pipeline": "lite,infinitetalk", "limit": 50},
    "?status=succeeded&limit=50&cursor=(page 2)": {"status": "succeeded", "limit": 50, "cursor": None},
    "?status=queued&limit=50": {"status": "queued", "limit": 50},
}


def verdict(label: str, worst: float) -> bool:
    ok = worst < LIST_LIMIT_MS
    print(f"{label} p99 (worst query) {worst:.1f} ms, limit {LIST_LIMIT_MS:g} ms -> {'PASS' if ok else 'FAIL'}")
    return ok


def fill_queue(http: requests.Session, url: str, queued: int) -> tuple:
    """Upload the portrait and queue ``queued`` jobs; returns ``submit(script, seed)`` and the last job id."""
    r = http.post(url + "/myspinbot/assets", files={"file": ("portrait.png", portrait_png(), "image/png")}, timeout=60)
    r.raise_for_status()
    portrait = r.json()["asset_id"]

    def submit(script: str, seed: int) -> requests.Response:
        body = {"pipeline": "lite", "inputs": {"portrait": {"asset_id": portrait}, "script": script}, "options": {"seed": seed}}
        return http.post(url + "/myspinbot/jobs", json=body, timeout=60)

    print(f"filling ComfyUI's queue with {queued} jobs behind a blocked prompt ...", flush=True)
    last = None
    for n in range(queued):
        r = submit(f"Hello, I am job {n}.", n + 1)
        assert r.status_code == 202, r.text
        last = r.json()["id"]
    return submit, last


def measure_submits(http: requests.Session, url: str, db_path: Path, queued: int, samples: int) -> None:
    submit, last = fill_queue(http, url, queued)
    with sqlite3.connect(f"file:{db_path}?mode=ro", uri=True) as db:  # the prompt the job API queued
        prompt = json.loads(db.execute("SELECT prompt FROM job_prompts WHERE job_id = ?", (last,)).fetchone()[0])
    ours, core = [], []
    for n in range(samples):
        ms, r = timed(lambda: submit(f"Hello again, {n}.", 10_000 + n))
        assert r.status_code == 202, r.text
        ours.append(ms)
        ms, r = timed(lambda: http.post(url + "/prompt", json={"prompt": prompt, "prompt_id": str(uuid.uuid4())}, timeout=60))
        assert r.status_code == 200, r.text
        core.append(ms)
    print(header(f"submit, {queued}..{queued + 2 * samples} prompts waiting in ComfyUI's queue"))
    print(row("POST /myspinbot/jobs (JSON, asset id)", ours))
    print(row("POST /prompt (core, the same prompt)", core))
    print(f"  ratio p99 job API / core: {pct(ours, 0.99) / pct(core, 0.99):.2f}")


def measure_lists(http: requests.Session, url: str, jobs: int, samples: int) -> bool:
    first = http.get(url + "/myspinbot/jobs", params={"status": "succeeded", "limit": 50}, timeout=60).json()
    queries = {label: {**q, "cursor": first["next_cursor"]} if "cursor" in q else q for label, q in LISTS.items()}
    times: dict[str, list[float]] = {label: [] for label in queries}
    core_queue: list[float] = []
    for _ in range(samples):
        for label, params in queries.items():
            ms, r = timed(lambda: http.get(url + "/myspinbot/jobs", params=params, timeout=60))
            assert r.status_code == 200 and r.json()["jobs"], r.text[:300]
            times[label].append(ms)
        ms, r = timed(lambda: http.get(url + "/queue", timeout=60))
        assert r.status_code == 200
        core_queue.append(ms)
    print(header(f"list over HTTP, {jobs} jobs in the database"))
    for label, values in times.items():
        print(row("GET /myspinbot/jobs" + label, values))
    print(row("GET /queue (core)", core_queue))
    worst = max(pct(v, 0.99) for v in times.values())
    print(f"  ratio p99 job API list (worst query) / core GET /queue: {worst / pct(core_queue, 0.99):.2f}")
    return verdict("HTTP list", worst)


def measure_store(db_path: Path, samples: int) -> bool:
    """The list queries alone: ``JobStore.page`` (as the service calls it, limit 51) on the same file."""
    from myspinbot.server.store import JobStore

    store = JobStore(db_path)
    first = store.page(statuses=("succeeded",), limit=50)
    after = (first[-1].created_at, first[-1].id)
    times: dict[str, list[float]] = {label: [] for label in LISTS}
    for _ in range(samples):
        for label, query in LISTS.items():
            statuses, pipelines = (tuple(query.get(k, "").split(",")) if k in query else () for k in ("status", "pipeline"))
            start = time.perf_counter()
            page = store.page(statuses=statuses, pipelines=pipelines, limit=51, after=after if "cursor" in query else None)
            times[label].append((time.perf_counter() - start) * 1000.0)
            assert page
    store.close()
    print(header("the same lists in the database alone (JobStore.page, limit 51)"))
    for label, values in times.items():
        print(row("JobStore.page " + label, values))
    return verdict("database list", max(pct(v, 0.99) for v in times.values()))


def run(comfy: ComfyProcess, db_path: Path, history: int, queued: int, samples: int) -> bool:
    http = requests.Session()
    hold_worker(http, comfy)
    measure_submits(http, comfy.url, db_path, queued, samples)
    ok = measure_lists(http, comfy.url, history + queued + samples, samples)
    http.post(comfy.url + "/queue", json={"clear": True}, timeout=60)
    return ok


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--history", type=int, default=100_000, help="finished jobs in the database (default 100000)")
    parser.add_argument("--queued", type=int, default=1000, help="jobs waiting in ComfyUI's queue (default 1000)")
    parser.add_argument("--samples", type=int, default=200, help="requests per measured series (default 200)")
    args = parser.parse_args()
    comfy_dir = comfyui_dir()
    if comfy_dir is None:
        print("set COMFYUI_DIR to a ComfyUI 0.33 checkout", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="bench-job-api-") as scratch:
        comfy = ComfyProcess("clone", Path(scratch), comfy_dir,
                             env={"MYSPINBOT_MAX_QUEUED": str(args.queued + 2 * args.samples + 10),
                                  "OLLAMA_HOST": "http://127.0.0.1:9"})
        db_path = comfy.user_dir.joinpath(*DB_FILE)
        comfy.input_dir.mkdir(parents=True, exist_ok=True)
        os.mkfifo(comfy.input_dir / BLOCKER)
        started = time.perf_counter()
        fill_history(db_path, args.history, time.time())
        print(f"{args.history} finished jobs written in {time.perf_counter() - started:.1f} s; starting ComfyUI ...",
              flush=True)
        comfy.start()
        try:
            over_http = run(comfy, db_path, args.history, args.queued, args.samples)
        except BaseException:
            print(comfy.log_tail(), file=sys.stderr)
            raise
        finally:
            comfy.stop()
        in_store = measure_store(db_path, args.samples)
    return 0 if over_http and in_store else 1


if __name__ == "__main__":
    sys.exit(main())
