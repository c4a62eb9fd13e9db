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
