"""Benchmark: is Wav2Lip lip sync (our engine, file to file) memory-flat in the speech's length?

Runs ``lipsync.lip_sync`` with a full-size Wav2Lip generator (random weights, batch norms
randomised, saved in the authors' checkpoint layout and loaded with ``load_wav2lip`` as the node
loads it) on 10 s and on 120 s of speech (the fixture recordings repeated, ``_media.speech``),
each in a fresh subprocess, for two face sources:

* ``still``: the fixture portrait (``portrait_astronaut.png``) scaled to ``--size`` px, repeated
  for the whole speech;
* ``video``: a ``--loop-seconds`` clip of that portrait drifting sideways (H.264, no audio),
  shorter than the speech, so the engine loops it (each source frame detected once, then replayed).

The output frame rate is ``--fps`` (the still's rate; the clip is written at it). The
generator's cost per frame does not depend on it, and the frame count still grows 12-fold from
10 s to 120 s, so ``run_all.py`` uses 5 fps (50 vs 600 frames per source) to stay inside its
time budget on a 2-core CPU; the default, 25 fps, is the real-world rate (250 vs 3000 frames).

What is measured (per child): resident set size sampled every 2 ms by a thread (psutil or
/proc) while ``lip_sync`` runs; "growth" = peak RSS during the call minus RSS just before it.
The child first runs a warm-up clip of three full batches (model load, torch's and x264's
one-time buffers, and the heap's steady state under batch-16 activations, reached after two or
three batches, go into the baseline: in ComfyUI the model stays loaded between runs); then the
heap's free pages are handed back (``malloc_trim``), so the baseline holds no freed memory the
run could reuse unseen (how much glibc keeps varies by some 30 MiB from process to process,
enough to swing the ratio). The kernel's ``ru_maxrss`` growth is the cross-check; the larger
is used.
Target (issue 11): growth(120 s) / growth(10 s) <= 1.2, or within 8 MiB (``_memory.flat``).

glibc's dynamic mmap threshold: by default glibc raises the size above which it maps (and on
free unmaps) memory to the largest block freed so far, up to 32 MiB; which of the generator's
activations (up to 47 MiB per batch of 16) then land in the heap, and stay resident there,
depends on the order of earlier frees, so the per-batch peak varied from 170 to 250 MiB between
identical processes (measured here) whatever the clip's length, swinging the ratio from 0.88
to 1.38. The children therefore run with ``MALLOC_MMAP_THRESHOLD_=131072`` (glibc's starting
value, fixed: the adaptation off), so the figure is the engine's own working set;
``--glibc-default`` measures with the adaptive default instead.

Usage: ``python bench/bench_wav2lip_memory.py [--seconds 10 120] [--fps 25] [--size 192]
[--sources still video] [--limit 1.2] [--threads N] [--glibc-default] [--json]``; exit code 1 when
a source fails.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

from _memory import PeakSampler, growth_row, growth_verdict, rss_bytes, run_child, trim_heap
from _report import emit

REPO = Path(__file__).resolve().parents[1]
CUSTOM_NODES = REPO / "custom_nodes"
WARMUP_BATCHES = 3  # full batches of 16 in the warm-up: the allocator's steady state goes into the baseline
SOURCES = ("still", "video")


def warmup_seconds(fps: float) -> float:
    """Speech long enough for :data:`WARMUP_BATCHES` full batches and one frame more."""
    return round((WARMUP_BATCHES * 16 + 1) / fps, 2)


def make_inputs(folder: Path, size: int, fps: float, loop_seconds: float, seconds: list[float]) -> dict[str, Path]:
    """The face sources (``still.png``, ``loop.mp4``) and the speech files (``speech_<s>s.wav``)."""
    sys.path.insert(0, str(CUSTOM_NODES))
    import cv2
    import numpy as np
    import soundfile
    from _media import RATE, portrait, speech

    from myspinbot.video import Mp4Writer

    image = cv2.resize(portrait()[0], (size, size), interpolation=cv2.INTER_AREA)
    paths = {"still": folder / "still.png", "video": folder / "loop.mp4"}
    cv2.imwrite(str(paths["still"]), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    n = max(2, int(round(loop_seconds * fps)))
    with Mp4Writer(paths["video"], size, size, fps, crf=12) as writer:
        for k in range(n):  # drifts right then back: the face moves, the detector runs per frame
            writer.write(np.ascontiguousarray(np.roll(image, min(k, n - k) * max(1, size // 96), axis=1)))
    for s in [warmup_seconds(fps), *seconds]:
        paths[f"speech_{s:g}"] = folder / f"speech_{s:g}s.wav"
        soundfile.write(str(paths[f"speech_{s:g}"]), speech(s)[0][0], RATE)
    return paths


def _model(folder: Path):
    """A full-size random Wav2Lip saved the authors' way and loaded as the node loads it."""
    import torch

    from myspinbot.lipsync import Wav2Lip, load_wav2lip

    torch.manual_seed(0)
    net = Wav2Lip()
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for module in net.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                c = module.num_features
                module.weight.copy_(torch.rand(c, generator=g) + 0.5)
                module.running_var.copy_(torch.rand(c, generator=g) * 1.5 + 0.5)
    path = folder / "wav2lip.pth"
    torch.save({"state_dict": {"module." + k: v for k, v in net.state_dict().items()}, "global_step": 1}, path)
    del net
    return load_wav2lip(path)


def child(face: Path, speech: Path, warmup: Path, fps: float, threads: int) -> dict:
    """One measurement in this process; the numbers as a dict."""
    sys.path.insert(0, str(CUSTOM_NODES))
    import torch

    from myspinbot.lipsync import LipSyncSettings, lip_sync
    from myspinbot.video import probe_media

    if threads > 0:
        torch.set_num_threads(threads)
    settings = LipSyncSettings(still_fps=fps)
    with tempfile.TemporaryDirectory(prefix="bench_w2l_mem_") as tmp:
        scratch = Path(tmp)
        model = _model(scratch)
        lip_sync(model, face, warmup, scratch / "warmup.mp4", settings)
        os.remove(scratch / "warmup.mp4")
        trim_heap()
        before = rss_bytes()
        maxrss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        t0 = time.perf_counter()
        with PeakSampler() as sampler:
            result = lip_sync(model, face, speech, scratch / "out.mp4", settings)
        elapsed = time.perf_counter() - t0
        maxrss_after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        info = probe_media(result.path)
    return {
        "frames": result.frames,
        "decoded_frames": info["video"]["frame_count"],
        "synced": result.frames_synced,
        "source_frames": result.source_frames,
        "av_gap_s": result.video_seconds - result.audio_seconds,
        "elapsed_s": elapsed,
        "rss_before_mb": before / 2**20,
        "peak_growth_mb": (sampler.peak - before) / 2**20,
        "maxrss_growth_mb": max(0, maxrss_after - max(maxrss_before, before)) / 2**20,
    }


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seconds", type=float, nargs=2, default=(10.0, 120.0), metavar=("SHORT", "LONG"))
    p.add_argument("--fps", type=float, default=25.0, help="output frame rate (the still's; the clip's)")
    p.add_argument("--size", type=int, default=192, help="face source width and height in px")
    p.add_argument("--loop-seconds", type=float, default=2.0, help="length of the looped video source")
    p.add_argument("--sources", nargs="+", choices=SOURCES, default=list(SOURCES))
    p.add_argument("--limit", type=float, default=1.2, help="largest passing growth ratio LONG/SHORT")
    p.add_argument("--threads", type=int, default=0, help="torch threads in the children (0: torch's default)")
    p.add_argument("--glibc-default", action="store_true",
                   help="children keep glibc's adaptive mmap threshold (noisier; see the module doc)")
    p.add_argument("--json", action="store_true", help="end with a BENCH_ROWS line for run_all.py")
    p.add_argument("--child", nargs=3, default=None, help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    if a.child is not None:
        face, speech, warmup = (Path(x) for x in a.child)
        print(json.dumps(child(face, speech, warmup, a.fps, a.threads)))
        return 0
    short, long = (f"{s:g} s" for s in a.seconds)
    if not a.glibc_default:  # read by glibc when each child starts; this process is unaffected
        os.environ["MALLOC_MMAP_THRESHOLD_"] = "131072"
    malloc = "glibc adaptive mmap threshold" if a.glibc_default else "mmap threshold fixed at 128 KiB"
    rows, code = [], 0
    with tempfile.TemporaryDirectory(prefix="bench_w2l_mem_in_") as tmp:
        paths = make_inputs(Path(tmp), a.size, a.fps, a.loop_seconds, list(a.seconds))
        for source in a.sources:
            results = []
            for s in a.seconds:
                warmup = paths[f"speech_{warmup_seconds(a.fps):g}"]
                argv_child = [sys.executable, __file__, "--fps", str(a.fps), "--threads", str(a.threads), "--child",
                              str(paths[source]), str(paths[f"speech_{s:g}"]), str(warmup)]
                res = run_child(argv_child, f"{source} {s:g} s")
                if res is None:
                    return 1
                results.append(res)
                print(f"{source:5s} {s:5.0f} s speech: {res['frames']:5d} frames ({res['synced']} synced, "
                      f"{res['source_frames']} source frame(s), decoded {res['decoded_frames']}, A/V gap "
                      f"{res['av_gap_s'] * 1000:+.0f} ms) in {res['elapsed_s']:6.1f} s | peak RSS growth "
                      f"{res['peak_growth_mb']:7.1f} MiB (sampled) | ru_maxrss growth "
                      f"{res['maxrss_growth_mb']:7.1f} MiB | baseline RSS {res['rss_before_mb']:6.1f} MiB", flush=True)
            stage = f"Memory: Wav2Lip engine ({source}, {a.size}², {a.fps:g} fps, full-size random model, {malloc})"
            rows.append(growth_row(stage, results[0], results[1], short, long, a.limit))
            code |= growth_verdict(results[0], results[1], f"{source} {short}", f"{source} {long}", a.limit)
    if a.json:
        emit(rows)
    return code


if __name__ == "__main__":
    sys.exit(main())
