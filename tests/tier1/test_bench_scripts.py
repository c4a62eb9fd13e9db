"""Tier 1: the benchmark scripts stay runnable (no timings here: targets live in bench/).

Every ``bench/*.py`` compiles, ``bench/gpu.sh`` passes ``bash -n``, the result rows survive the
``BENCH_ROWS`` line, and ``run_all.py`` lists its jobs, turns a plain-text benchmark's ratio and
verdict lines into rows and prints one table.
"""

from __future__ import annotations

import py_compile
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"


@pytest.fixture(scope="module")
def bench_modules():
    sys.path.insert(0, str(BENCH))
    try:
        import _report
        import run_all

        yield _report, run_all
    finally:
        sys.path.remove(str(BENCH))


@pytest.mark.parametrize("script", sorted(p.name for p in BENCH.glob("*.py")))
def test_bench_script_compiles(script, tmp_path):
    py_compile.compile(str(BENCH / script), cfile=str(tmp_path / "x.pyc"), doraise=True)


@pytest.mark.skipif(shutil.which("bash") is None, reason="no bash")
def test_gpu_script_syntax():
    subprocess.run(["bash", "-n", str(BENCH / "gpu.sh")], check=True)


def test_rows_round_trip_through_the_output_line(bench_modules, capsys):
    report, _ = bench_modules
    rows = [report.row("stage", "1.0 fps", "0.9 fps", 1.11, ">= 1.0", ok=True), report.skipped("other", "why")]
    report.emit(rows)
    out = "some log line\n" + capsys.readouterr().out
    assert report.parse(out) == rows
    assert report.parse("no rows here") is None
    assert report.median([3.0, 1.0, 2.0]) == 2.0 and report.median([1.0, 2.0]) == 1.5


def test_run_all_lists_its_jobs_and_formats_a_table(bench_modules):
    report, run_all = bench_modules
    listed = subprocess.run([sys.executable, str(BENCH / "run_all.py"), "--list"], capture_output=True, text=True,
                            check=True).stdout
    assert "bench_upscale_speed.py" in listed and "bench_animate_memory.py" in listed
    assert "bench_wav2lip.py" in listed and "bench_wav2lip_memory.py --seconds 10 120" in listed
    gpu = subprocess.run([sys.executable, str(BENCH / "run_all.py"), "--list", "--gpu"], capture_output=True, text=True,
                         check=True).stdout
    assert "gpu_infinitetalk.py" in gpu and "--device cuda" in gpu
    rows = run_all.rows_from_text("bench_job_api.py", "  ratio p99 job API / core: 1.25\nlist p99 3 ms -> PASS\n", 0)
    assert [(r["ratio"], r["ok"]) for r in rows] == [(1.25, None), (None, True)]
    table = run_all.format_table(rows + [report.row("x", "2 fps", "1 fps", 2.0, ">= 1", ok=False)])
    assert "1.250" in table and "PASS" in table and "FAIL" in table
    assert run_all.format_table(rows, markdown=True).startswith("| stage |")
