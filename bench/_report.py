"""Result rows shared by the speed/memory benchmarks and ``run_all.py``.

A benchmark run with ``--json`` ends its output with one line ``BENCH_ROWS <json list>``;
each row is a dict made by :func:`row`. ``run_all.py`` collects those lines and prints one
table. Ratios are always "ours relative to the baseline measured in the same run", oriented
so that bigger is better for speed rows (our fps / baseline fps) and as written for memory
rows (growth 120 s / growth 10 s, smaller is better).
"""

from __future__ import annotations

import json

PREFIX = "BENCH_ROWS "


def row(stage: str, ours: str, baseline: str, ratio: float | None, target: str, *, ok: bool | None = None,
        note: str = "") -> dict:
    """One table row. ``ours``/``baseline``: figures with units as text (e.g. ``"1.32 fps"``);
    ``ratio``: the number compared with ``target`` (text such as ``">= 1.0"``); ``ok``: whether
    the target is met (``None``: no target, or not measured)."""
    return {"stage": stage, "ours": ours, "baseline": baseline, "ratio": ratio, "target": target, "ok": ok,
            "note": note}


def skipped(stage: str, why: str, target: str = "") -> dict:
    """A row for a stage that could not run here (``why`` says what is missing)."""
    return row(stage, f"skipped: {why}", "-", None, target)


def emit(rows: list[dict]) -> None:
    """Print the rows as the last line, for ``run_all.py``."""
    print(PREFIX + json.dumps(rows), flush=True)


def parse(stdout: str) -> list[dict] | None:
    """The rows from a benchmark's stdout (the last ``BENCH_ROWS`` line), or ``None``."""
    for line in reversed(stdout.splitlines()):
        if line.startswith(PREFIX):
            return json.loads(line[len(PREFIX):])
    return None


def median(values: list[float]) -> float:
    """The median of a non-empty list (mean of the two middle values for an even count)."""
    s = sorted(values)
    m = len(s) // 2
    return s[m] if len(s) % 2 else (s[m - 1] + s[m]) / 2
