"""Run every benchmark, each in its own subprocess, and print one table.

Columns: stage, our figure, the baseline measured in the same run (same process, same inputs),
the ratio, the target and PASS/FAIL. Each benchmark is a script in ``bench/`` run with
``--json``; it prints its rows as the last ``BENCH_ROWS`` line (see ``_report.py``). A
benchmark that crashes or times out gives an ``error`` row (its output goes to stderr); one
that needs what is missing here (``COMFYUI_DIR``, f5-tts, the Wav2Lip reference code) gives
``skipped: ...`` rows. ``bench_job_api.py`` (the job-API latency, from another branch) is run
when it exists.

Made to finish within 15 minutes on a 2-core CPU: small clips, tiny or random models, few
reps. ``--gpu`` runs the full-size random-weight GPU set instead (see ``gpu.sh``).
``--only WORD`` runs the benchmarks whose file name contains WORD; ``--markdown`` prints
the table as Markdown (for the README); ``--list`` shows what would run.

Usage: ``COMFYUI_DIR=/path/to/ComfyUI python bench/run_all.py [--only upscale] [--markdown]``
Exit code: 0 when no row failed its target (skipped rows do not fail), else 1.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

from _report import parse, row

BENCH = Path(__file__).resolve().parent

#: (script, extra arguments, time limit in seconds). Speed first, then memory.
JOBS: list[tuple[str, list[str], int]] = [
    ("bench_animate_speed.py", [], 120),
    ("bench_upscale_speed.py", ["--frames", "4", "--reps", "6"], 300),
    ("bench_f5_speed.py", [], 180),
    ("bench_infinitetalk_speed.py", [], 240),
    ("bench_wav2lip.py", [], 180),
    ("bench_sadtalker.py", ["--size", "128"], 300),
    ("bench_job_api.py", [], 300),
    ("bench_animate_memory.py", [], 180),
    ("bench_upscale_memory.py", ["--seconds", "10", "120", "--limit", "1.2"], 300),
    ("bench_infinitetalk_memory.py", ["--seconds", "10", "120", "--limit", "1.2", "--size", "16"], 420),
    # 5 fps: 50 vs 600 frames per source through the full-size generator (3-7 minutes here)
    ("bench_wav2lip_memory.py", ["--seconds", "10", "120", "--fps", "5", "--limit", "1.2"], 600),
]

#: ``--gpu`` (what ``bench/gpu.sh`` runs): full-size random-weight runs on one CUDA device.
GPU_JOBS: list[tuple[str, list[str], int]] = [
    ("bench_f5_speed.py", ["--device", "cuda", "--full", "--nfe", "32", "--sentences", "12", "--reps", "3"], 150),
    ("bench_upscale_speed.py", ["--gpu", "--filters", "64", "--blocks", "23", "--size", "512", "--frames", "16",
                                "--reps", "3", "--threads", "8"], 150),
    ("bench_wav2lip.py", ["--device", "cuda", "--seconds", "8", "--batch", "128", "--reps", "3", "--threads", "8"], 120),
    ("bench_sadtalker.py", ["--device", "cuda", "--size", "256", "--frames", "8", "--reps", "2"], 60),
    ("bench_sadtalker.py", ["--device", "cuda", "--size", "512", "--frames", "4", "--reps", "2"], 60),
    ("gpu_infinitetalk.py", ["--steps", "4"], 330),
]


def rows_from_text(script: str, stdout: str, returncode: int) -> list[dict]:
    """Rows for a benchmark without ``--json`` (e.g. ``bench_job_api.py``): one per printed line
    that states a ratio (``... ratio ...: 1.23``) or a verdict (``... -> PASS``/``FAIL``)."""
    name = script.removeprefix("bench_").removesuffix(".py")
    rows = []
    for line in stdout.splitlines():
        text = line.strip()
        if text.endswith(("PASS", "FAIL")):
            rows.append(row(f"{name}: {text.rsplit('->', 1)[0].strip()}", "(see left)", "-", None, "as printed",
                            ok=text.endswith("PASS")))
        elif "ratio" in text and ":" in text:
            label, _, value = text.rpartition(":")
            try:
                rows.append(row(f"{name}: {label.strip()}", "-", "-", float(value), "(record)"))
            except ValueError:
                continue
    return rows or [row(script, f"exit {returncode} (no ratio or verdict printed)", "-", None, "",
                        ok=returncode == 0)]


def run_job(script: str, extra: list[str], limit: int) -> tuple[list[dict], float]:
    """Run one benchmark (with ``--json`` when it takes it); its rows (or one error row) and its wall time."""
    t0 = time.perf_counter()
    source = (BENCH / script).read_text(encoding="utf-8")
    speaks_json = "BENCH_ROWS" in source or "from _report import" in source
    try:
        proc = subprocess.run([sys.executable, str(BENCH / script), *extra, *(["--json"] if speaks_json else [])],
                              capture_output=True, text=True, timeout=limit, cwd=BENCH.parent, check=False)
    except subprocess.TimeoutExpired as exc:
        sys.stderr.write((exc.stdout or b"").decode(errors="replace")[-3000:] if isinstance(exc.stdout, bytes)
                         else (exc.stdout or "")[-3000:])
        return [row(script, f"error: timed out after {limit} s", "-", None, "")], time.perf_counter() - t0
    if not speaks_json:
        return rows_from_text(script, proc.stdout, proc.returncode), time.perf_counter() - t0
    rows = parse(proc.stdout)
    if rows is None:
        sys.stderr.write(f"--- {script} (exit {proc.returncode}) ---\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}\n")
        why = f"exit {proc.returncode}" if proc.returncode else "no BENCH_ROWS line"
        return [row(script, f"error: {why} (output on stderr)", "-", None, "")], time.perf_counter() - t0
    return rows, time.perf_counter() - t0


def _ratio(r: dict) -> str:
    return "-" if r.get("ratio") is None else f"{r['ratio']:.3f}"


def _verdict(r: dict) -> str:
    return {True: "PASS", False: "FAIL"}.get(r.get("ok"), "-")


def format_table(rows: list[dict], markdown: bool = False) -> str:
    """The rows as a plain-text (or Markdown) table."""
    head = ["stage", "ours", "baseline (same run)", "ratio", "target", ""]
    body = [[r["stage"], r["ours"], r["baseline"], _ratio(r), r["target"], _verdict(r)] for r in rows]
    if markdown:
        lines = ["| " + " | ".join(head[:5]) + " | ok |", "|" + "---|" * 6]
        lines += ["| " + " | ".join(c.replace("|", "/") for c in b) + " |" for b in body]
        return "\n".join(lines)
    widths = [max(len(str(c)) for c in col) for col in zip(head, *body)]
    fmt = "  ".join(f"{{:{'<' if i in (0, 1, 2) else '>'}{w}}}" for i, w in enumerate(widths))
    lines = [fmt.format(*head), "  ".join("-" * w for w in widths)] + [fmt.format(*b) for b in body]
    notes = [f"  {r['stage'].strip()}: {r['note']}" for r in rows if r.get("note")]
    return "\n".join(lines + (["notes:"] + notes if notes else []))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--only", action="append", default=[], help="run the scripts whose name contains this (repeatable)")
    p.add_argument("--markdown", action="store_true", help="print the table as Markdown")
    p.add_argument("--list", action="store_true", help="list the benchmarks and exit")
    p.add_argument("--gpu", action="store_true", help="the full-size GPU runs (bench/gpu.sh) instead of the CPU set")
    a = p.parse_args(argv)
    jobs = [j for j in (GPU_JOBS if a.gpu else JOBS) if (BENCH / j[0]).is_file() and (not a.only or any(w in j[0] for w in a.only))]
    if a.list:
        for script, extra, limit in jobs:
            print(f"{script} {' '.join(extra)} (limit {limit} s)")
        return 0
    env_note = f"COMFYUI_DIR={os.environ.get('COMFYUI_DIR') or '(unset)'}; {os.cpu_count()} CPUs"
    print(f"running {len(jobs)} benchmarks, one subprocess each; {env_note}", flush=True)
    rows: list[dict] = []
    t0 = time.perf_counter()
    for script, extra, limit in jobs:
        got, took = run_job(script, extra, limit)
        print(f"  {script}: {len(got)} row(s) in {took:.0f} s", flush=True)
        rows += got
    print(f"\nall benchmarks in {time.perf_counter() - t0:.0f} s ({env_note})\n")
    print(format_table(rows, a.markdown))
    return 1 if any(r.get("ok") is False or r["ours"].startswith("error") for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
