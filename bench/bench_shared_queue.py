"""Benchmark: throughput of N lite jobs on one ComfyUI and on three sharing one PostgreSQL queue.

Needs ``COMFYUI_DIR`` (a ComfyUI 0.33 checkout; ``main.py --cpu`` through
``scripts/comfy_process.py``), PostgreSQL's server binaries (``initdb``, ``pg_ctl``: Debian's
``postgresql`` package) and psycopg. In the same run it:

1. starts a throwaway PostgreSQL (``tests/pg_server.py``) on a loopback port and moto's S3
   server (``tests/s3_standin.py``; the servers' inputs and outputs cross through its bucket);
2. starts one ComfyUI on a fresh database, submits ``--jobs`` lite jobs (the 1.5 s speech
   fixture and the astronaut portrait), times first submit → last job finished;
3. does the same with three ComfyUIs on another fresh database (each its own input and output
   folders), the jobs submitted round-robin to the three;
4. prints jobs/minute of each, the ratio three / one, and per server: jobs run, busy time
   (sum of the jobs' started → completed) over the wall time, and the CPU seconds its process used.

How to read it: the three servers run on this one machine, so the ratio is near 3 only when the
jobs wait on something other than its CPUs (I/O, a GPU per server); where they compete for the
same cores it stays lower. The utilisation lines tell the queue's share (were the servers kept
busy?) from the machine's (CPU seconds per server: a server busy 90 % of the time on a fraction of
a core was waiting for the CPU). CPU seconds count the ComfyUI process only, not its children.
One run on the 2-core development machine (shared with other work), before inputs and outputs
went through object storage (the servers then shared their folders): 12 jobs, 43.7 jobs/min on
one server, 58.0 on three (1.33x), each server busy about 90 % of the wall time.

Usage: ``COMFYUI_DIR=/path/to/ComfyUI python bench/bench_shared_queue.py [--jobs N]``
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

import requests

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "scripts"))
sys.path.insert(0, str(REPO / "tests"))
sys.path.insert(0, str(REPO / "custom_nodes"))

from comfy_process import ComfyProcess, comfyui_dir  # noqa: E402

FIXTURES = REPO.parent / "shared" / "fixtures"
TERMINAL = ("succeeded", "failed", "canceled")


def _seconds(stamp: str | None) -> float | None:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp() if stamp else None


def run(count: int, servers: int, url: str, scratch: Path, s3_endpoint: str) -> dict:
    import psutil
    import psycopg

    procs = []
    for n in range(servers):
        proc = ComfyProcess("clone", scratch / f"comfy-{servers}-{n}", comfyui_dir(), env={
            "OLLAMA_HOST": "http://127.0.0.1:9", "MYSPINBOT_DATABASE_URL": url, "MYSPINBOT_SERVER_ID": f"s{n}",
            "MYSPINBOT_CLAIM_POLL_S": "0.5", "MYSPINBOT_S3_ENDPOINT": s3_endpoint, "MYSPINBOT_S3_ACCESS_KEY": "bench",
            "MYSPINBOT_S3_SECRET_KEY": "bench-secret", "MYSPINBOT_S3_REGION": "us-east-1",
            "MYSPINBOT_S3_BUCKET": f"bench-{servers}"})
        proc.scratch.mkdir(parents=True, exist_ok=True)
        procs.append(proc)
    try:
        for proc in procs:
            proc.start()
        cpu0 = [psutil.Process(p.proc.pid).cpu_times() for p in procs]
        files = {"portrait": ("portrait.png", (FIXTURES / "portrait_astronaut.png").read_bytes(), "image/png"),
                 "audio": ("speech.wav", (FIXTURES / "speech_front_left.wav").read_bytes(), "audio/wav")}
        started = time.monotonic()
        ids = []
        for n in range(count):
            r = requests.post(procs[n % servers].url + "/myspinbot/jobs", data={"pipeline": "lite"}, files=files, timeout=60)
            r.raise_for_status()
            ids.append(r.json()["id"])
        done: dict[str, dict] = {}
        while len(done) < count:
            for job_id in ids:
                if job_id not in done:
                    job = requests.get(f"{procs[0].url}/myspinbot/jobs/{job_id}", timeout=10).json()
                    if job["status"] in TERMINAL:
                        done[job_id] = job
            time.sleep(0.2)
        wall = time.monotonic() - started
        cpu = [sum(psutil.Process(p.proc.pid).cpu_times()[:2]) - sum(c[:2]) for p, c in zip(procs, cpu0)]
        with psycopg.connect(url) as conn:
            worker = dict(conn.execute("SELECT id, worker FROM jobs").fetchall())
    finally:
        for proc in procs:
            proc.stop()
    busy = {f"s{n}": 0.0 for n in range(servers)}
    for job in done.values():
        begin, end = _seconds(job.get("started_at")), _seconds(job.get("completed_at"))
        if begin and end:
            busy[worker[job["id"]]] += end - begin
    failed = [j["id"] for j in done.values() if j["status"] != "succeeded"]
    return {"wall": wall, "per_min": 60.0 * count / wall, "failed": failed, "busy": busy, "cpu": cpu,
            "jobs": {w: list(worker.values()).count(w) for w in busy}}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=12)
    opts = parser.parse_args()
    if comfyui_dir() is None:
        print("COMFYUI_DIR is not set: nothing to measure")
        return 2
    import logging

    from pg_server import PostgresServer
    from s3_standin import S3StandIn

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # moto's request log
    server, s3 = PostgresServer().start(), S3StandIn().start()
    try:
        with tempfile.TemporaryDirectory(prefix="bench-shared-") as tmp:
            results = {n: run(opts.jobs, n, server.create_database(), Path(tmp), s3.endpoint) for n in (1, 3)}
    finally:
        server.stop()
        s3.stop()
    for n, result in results.items():
        print(f"{n} server(s): {opts.jobs} jobs in {result['wall']:.1f} s = {result['per_min']:.1f} jobs/min"
              + (f"; FAILED: {result['failed']}" if result["failed"] else ""))
        for name in sorted(result["busy"]):
            index = int(name[1:])
            print(f"  {name}: {result['jobs'][name]} jobs, busy {100 * result['busy'][name] / result['wall']:.0f} % "
                  f"of the wall time, {result['cpu'][index]:.1f} CPU s")
    ratio = results[3]["per_min"] / results[1]["per_min"]
    print(f"throughput ratio 3 servers / 1 server: {ratio:.2f}x (the three share this machine's CPUs: near 3x only "
          "when the jobs do not compete for them; read the busy and CPU lines)")
    return 1 if any(r["failed"] for r in results.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
