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


def trim_heap() -> None:
    """Collect garbage and hand the heap's free pages back to the OS (glibc ``malloc_trim``; a
    no-op elsewhere), so an RSS baseline taken next holds no freed-but-kept memory that the
    measured run could reuse unseen (how much is kept varies from process to process)."""
    import ctypes
    import gc
    import sys

    gc.collect()
    if sys.platform.startswith("linux"):
        try:
            ctypes.CDLL("libc.so.6").malloc_trim(0)
        except (OSError, AttributeError):
            pass


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


#: Peak growths this close (MiB) count as flat whatever their ratio: at that scale the readings
#: are allocator and codec-buffer noise (e.g. 4.6 vs 5.7 MiB for a 64² upscale, a ratio of 1.23).
NOISE_MIB = 8.0


def flat(short_mib: float, long_mib: float, limit: float) -> bool:
    """Is a peak growth of ``long_mib`` (long clip) flat against ``short_mib`` (short clip)?
    Yes when the ratio is at most ``limit`` or the two are within :data:`NOISE_MIB`."""
    return long_mib / max(short_mib, 1e-6) <= limit or long_mib - short_mib <= NOISE_MIB


def growth_verdict(short: dict, long: dict, short_label: str, long_label: str, limit: float) -> int:
    """Compare the peak growth of two runs (the larger of the sampled and the kernel peak of each),
    print the ratio against ``limit`` and return the exit code (0 PASS, 1 FAIL)."""
    a, b = (max(r["peak_growth_mb"], r["maxrss_growth_mb"]) for r in (short, long))
    ratio = b / max(a, 1e-6)
    verdict = "PASS" if flat(a, b, limit) else "FAIL"
    print(f"peak growth {short_label}: {a:.1f} MiB, {long_label}: {b:.1f} MiB, "
          f"ratio {long_label}/{short_label} = {ratio:.3f} (limit {limit}, or at most {NOISE_MIB:g} MiB apart) "
          f"-> {verdict}")
    return 0 if verdict == "PASS" else 1


def growth_row(stage: str, short: dict, long: dict, short_label: str, long_label: str, limit: float) -> dict:
    """The ``run_all.py`` table row of :func:`growth_verdict`'s comparison."""
    from _report import row

    a, b = (max(r["peak_growth_mb"], r["maxrss_growth_mb"]) for r in (short, long))
    ratio = b / max(a, 1e-6)
    return row(f"{stage}: peak RSS growth {long_label} / {short_label}", f"{b:.1f} MiB ({long_label})",
               f"{a:.1f} MiB ({short_label})", ratio, f"<= {limit} (or <= {NOISE_MIB:g} MiB apart)",
               ok=flat(a, b, limit))
