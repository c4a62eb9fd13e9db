"""Peak-memory measurement shared by the benchmarks: resident set size sampled in a thread."""

from __future__ import annotations

import os
import threading
import time


def rss_bytes() -> int:
    """This process's resident set size in bytes (psutil if installed, else /proc)."""
    try:
        import psutil

        return int(psutil.Process().memory_info().rss)
    except ImportError:
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


class PeakSampler:
    """Context manager sampling RSS every ``period_s`` seconds; ``peak`` is the highest value seen (bytes)."""

    def __init__(self, period_s: float = 0.002):
        self.period_s = period_s
        self.peak = rss_bytes()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, rss_bytes())
            time.sleep(self.period_s)

    def __enter__(self) -> "PeakSampler":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, rss_bytes())


def run_child(argv: list[str], label: str) -> dict | None:
    """Run one measurement in a fresh process; returns the JSON object its last stdout line holds,
    or None (after printing why) when it crashed."""
    import json
    import subprocess

    proc = subprocess.run(argv, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        import sys

        print(proc.stdout + proc.stderr, file=sys.stderr)
        print(f"FAIL: the {label} run crashed (exit {proc.returncode})")
        return None
    return json.loads(proc.stdout.strip().splitlines()[-1])


def growth_verdict(short: dict, long: dict, short_label: str, long_label: str, limit: float) -> int:
    """Compare the peak growth of two runs (the larger of the sampled and the kernel peak of each),
    print the ratio against ``limit`` and return the exit code (0 PASS, 1 FAIL)."""
    a, b = (max(r["peak_growth_mb"], r["maxrss_growth_mb"]) for r in (short, long))
    ratio = b / max(a, 1e-6)
    verdict = "PASS" if ratio < limit else "FAIL"
    print(f"peak growth {short_label}: {a:.1f} MiB, {long_label}: {b:.1f} MiB, "
          f"ratio {long_label}/{short_label} = {ratio:.3f} (limit {limit}) -> {verdict}")
    return 0 if verdict == "PASS" else 1


def growth_row(stage: str, short: dict, long: dict, short_label: str, long_label: str, limit: float) -> dict:
    """The ``run_all.py`` table row of :func:`growth_verdict`'s comparison."""
    from _report import row

    a, b = (max(r["peak_growth_mb"], r["maxrss_growth_mb"]) for r in (short, long))
    ratio = b / max(a, 1e-6)
    return row(f"{stage}: peak RSS growth {long_label} / {short_label}", f"{b:.1f} MiB ({long_label})",
               f"{a:.1f} MiB ({short_label})", ratio, f"<= {limit}", ok=ratio <= limit)
