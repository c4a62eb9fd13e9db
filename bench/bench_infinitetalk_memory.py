"""Benchmark: is "MySpinBot InfiniteTalk" memory flat in clip length?

Runs the node (window loop over core's WanInfiniteTalkToVideo, sampler and VAE, frames streamed
into an MP4) on 12 s and on 36 s of speech, each in a fresh subprocess that imports ComfyUI
from ``COMFYUI_DIR`` in CPU mode, and compares their peak memory growth.

Models: tiny random ones built by ``tests/tier2/tiny_wan.py`` (Wan2.1 I2V DiT dim 160 / 1 head
/ 2 blocks, matching InfiniteTalk patch, random full-size wav2vec2-base, Wan2.1 VAE of width
4), loaded with core's loader nodes. Speech: the fixture recordings ``speech_front_left.wav`` /
``speech_front_right.wav`` from ``../shared/fixtures`` with pauses, repeated to length.
Portrait: ``portrait_astronaut.png``. 25 fps, 1 sampling step, 81-frame windows with 9 motion
frames (12 s = 5 windows, 36 s = 13 windows).

What is measured (per child): resident set size sampled every 5 ms by a thread while the
node runs; "growth" = max(sampled peak, kernel ``ru_maxrss`` after) minus the RSS just before
the node (models loaded, inputs in memory). Also printed: RSS after each window (should level
off) and the total peaks.

Usage: ``COMFYUI_DIR=/path/to/ComfyUI python bench/bench_infinitetalk_memory.py [--size 32]
[--sequential] [--models DIR]`` - prints both growths and the ratio (36 s / 12 s) and PASS when
it is below 1.25, else FAIL with exit code 1. The two children run side by side with one
thread each unless ``--sequential``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _report import emit, row, skipped

REPO = Path(__file__).resolve().parents[1]
TINY = REPO / "tests" / "tier2" / "tiny_wan.py"
DURATIONS_S = (12.0, 36.0)
MAX_RATIO = 1.25
MiB = 2**20


def _child(models: Path, seconds: float, size: int, threads: int | None) -> subprocess.Popen:
    env = dict(os.environ)
    if threads:
        env.update(OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    return subprocess.Popen([sys.executable, str(TINY), "run", str(models), "--seconds", str(seconds), "--size", str(size)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)


def _result(proc: subprocess.Popen) -> dict:
    out, err = proc.communicate()
    if proc.returncode != 0:
        raise SystemExit(f"child failed ({proc.returncode}):\n{err[-4000:]}")
    return json.loads(out.strip().splitlines()[-1])


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=32, help="frame width = height (multiple of 16)")
    parser.add_argument("--models", type=Path, default=None, help="models tree to (re)use; default: a temporary one")
    parser.add_argument("--sequential", action="store_true", help="run the two children one after the other")
    parser.add_argument("--seconds", type=float, nargs=2, default=DURATIONS_S, metavar=("SHORT", "LONG"),
                        help="the two audio lengths compared (default 12 36)")
    parser.add_argument("--limit", type=float, default=MAX_RATIO, help="largest passing growth ratio LONG/SHORT")
    parser.add_argument("--json", action="store_true", help="end with a BENCH_ROWS line for run_all.py")
    a = parser.parse_args(argv)
    stage = "Memory: InfiniteTalk windows (tiny Wan)"
    if not os.environ.get("COMFYUI_DIR"):
        print("COMFYUI_DIR is not set: point it at a ComfyUI 0.33 checkout", file=sys.stderr)
        if a.json:
            emit([skipped(stage, "COMFYUI_DIR unset", f"<= {a.limit}")])
            return 0
        return 2
    with tempfile.TemporaryDirectory(prefix="bench_infinitetalk_") as tmp:
        models = a.models or Path(tmp) / "models"
        t0 = time.perf_counter()
        subprocess.run([sys.executable, str(TINY), "build", str(models)], check=True, stdout=subprocess.DEVNULL)
        print(f"tiny models ready in {models} ({time.perf_counter() - t0:.0f} s)")
        jobs = {}
        if a.sequential:
            for s in a.seconds:
                jobs[s] = _result(_child(models, s, a.size, None))
        else:
            procs = {s: _child(models, s, a.size, 1) for s in a.seconds}
            jobs = {s: _result(p) for s, p in procs.items()}
    growth = {}
    for s, job in jobs.items():
        if "error" in job:
            print(f"{s:.0f} s: node failed: {job['error']}: {job.get('error_message')}")
            return 1
        growth[s] = max(job["rss_peak"], job["maxrss_after"]) - job["rss_before"]
        per_window = " ".join(f"{r / MiB:.0f}" for r in job["window_rss"])
        print(f"{s:4.0f} s audio: {len(job['windows_done']):2d} windows, {job['elapsed_s']:6.1f} s; RSS before "
              f"{job['rss_before'] / MiB:.0f} MiB, peak {job['rss_peak'] / MiB:.0f} MiB, growth {growth[s] / MiB:.1f} MiB; "
              f"after each window (MiB): {per_window}")
        print(f"        {job['info']}")
    short, long = a.seconds
    ratio = growth[long] / growth[short]
    total_ratio = jobs[long]["rss_peak"] / jobs[short]["rss_peak"]
    print(f"growth ratio {long:.0f} s / {short:.0f} s = {ratio:.3f} (total peak ratio {total_ratio:.3f}); "
          f"threshold {a.limit}")
    ok = 1 / a.limit < ratio < a.limit
    plateau = jobs[long]["window_rss"][1:]  # RSS after windows 2..n of the long run
    if plateau:
        print(f"RSS after windows 2-{len(plateau) + 1} of the {long:g} s run: {min(plateau) / MiB:.0f}-"
              f"{max(plateau) / MiB:.0f} MiB (first half max {max(plateau[:len(plateau) // 2 or 1]) / MiB:.0f}, "
              f"second half max {max(plateau[len(plateau) // 2:]) / MiB:.0f})")
    if a.json:
        note = (f"RSS after windows 2-{len(plateau) + 1} of the {long:g} s run: {min(plateau) / MiB:.0f}-"
                f"{max(plateau) / MiB:.0f} MiB" if plateau else "")
        emit([row(f"{stage}: peak RSS growth {long:g} s / {short:g} s", f"{growth[long] / MiB:.1f} MiB ({long:g} s)",
                  f"{growth[short] / MiB:.1f} MiB ({short:g} s)", ratio, f"<= {a.limit}", ok=ok, note=note)])
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
