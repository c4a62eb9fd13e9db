"""Benchmark: is animate+encode memory flat in clip length?

Runs ``animate_portrait`` (render + H.264/AAC encode to a temporary MP4) on 10 s and on
120 s of speech, each in a fresh subprocess, and compares their peak memory growth.

What is measured (per child process): resident set size (RSS, via psutil when present,
else /proc/self/statm) sampled every 2 ms by a background thread while
``animate_portrait`` runs; "growth" is the peak RSS during the call minus the RSS just
before it (after imports and after the portrait and audio are in memory, so the input
audio array itself - 23 MB for 120 s at 48 kHz - is not counted). The kernel's peak RSS
(``ru_maxrss``) growth is printed too as a cross-check that catches spikes shorter than
the sampling period; the larger of the two is compared. Both include native memory (x264, FFmpeg, OpenCV), not only Python.

Speech: the fixture recordings ``speech_front_left.wav`` / ``speech_front_right.wav``
from ``../shared/fixtures`` repeated (with short pauses) to the wanted length; if that
folder is missing, a synthetic "speech-like" signal (a 140 Hz buzz with a syllable-rate
envelope) and a drawn cartoon face are used instead.

Usage: ``python bench/bench_animate_memory.py`` - prints both peaks and the ratio
(120 s / 10 s) and PASS when the ratio is below 1.2, else FAIL with exit code 1.
"""

from __future__ import annotations

import argparse
import gc
import json
import resource
import sys
import tempfile
import time
from pathlib import Path

from _media import RATE, portrait, speech
from _memory import PeakSampler, growth_row, growth_verdict, rss_bytes, run_child
from _report import emit

REPO = Path(__file__).resolve().parents[1]
CUSTOM_NODES = REPO / "custom_nodes"
DURATIONS_S = (10.0, 120.0)
MAX_RATIO = 1.2


def child(seconds: float) -> dict:
    """Run one measurement in this process; returns the numbers as a dict."""
    sys.path.insert(0, str(CUSTOM_NODES))
    from myspinbot.animate import animate_portrait

    image, image_src = portrait()
    audio, audio_src = speech(seconds)
    gc.collect()
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "bench.mp4"
        before = rss_bytes()
        maxrss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        t0 = time.perf_counter()
        with PeakSampler() as sampler:
            result = animate_portrait(image, audio, RATE, out)
        elapsed = time.perf_counter() - t0
        maxrss_after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        size = out.stat().st_size
    return {
        "seconds": seconds,
        "frames": result.frame_count,
        "elapsed_s": elapsed,
        "rss_before_mb": before / 2**20,
        "peak_growth_mb": (sampler.peak - before) / 2**20,
        "maxrss_growth_mb": max(0, maxrss_after - max(maxrss_before, before)) / 2**20,
        "mp4_mb": size / 2**20,
        "image": image_src,
        "audio": audio_src,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--child", type=float, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--json", action="store_true", help="end with a BENCH_ROWS line for run_all.py")
    args = parser.parse_args()
    if args.child is not None:
        print(json.dumps(child(args.child)))
        return 0
    results = []
    for seconds in DURATIONS_S:
        res = run_child([sys.executable, __file__, "--child", str(seconds)], f"{seconds:g} s")
        if res is None:
            return 1
        results.append(res)
        print(
            f"{seconds:6.0f} s speech: {res['frames']:5d} frames in {res['elapsed_s']:6.1f} s | "
            f"peak RSS growth {res['peak_growth_mb']:7.1f} MiB (sampled) | "
            f"ru_maxrss growth {res['maxrss_growth_mb']:7.1f} MiB | baseline RSS {res['rss_before_mb']:6.1f} MiB | "
            f"mp4 {res['mp4_mb']:.1f} MiB"
        )
    print(f"inputs: {results[0]['image']}; {results[0]['audio']}")
    if args.json:
        emit([growth_row("Memory: lite animator render+encode", results[0], results[1], "10 s", "120 s", MAX_RATIO)])
    return growth_verdict(results[0], results[1], "10s", "120s", MAX_RATIO)


if __name__ == "__main__":
    sys.exit(main())
