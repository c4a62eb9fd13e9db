"""Benchmark: lite animator (render + H.264/AAC encode) vs raw PyAV/libx264 and vs real time.

Same process, same frames:

* ours: ``animate_portrait`` on the fixture portrait (512²) and ``--seconds`` of fixture speech
  at 25 fps, file to file (face finding, mouth drive, frame rendering, ``Mp4Writer`` with the
  AAC track).
* render only: the same call with the writer replaced by one that keeps the frames (so the
  raw encoder gets exactly the frames ours encoded).
* raw encode: those frames through plain PyAV/libx264 (``add_stream("libx264")``,
  ``VideoFrame.from_ndarray(rgb24)``, ``encode``, ``mux``) with the x264 settings our writer
  uses (crf 20, preset fast), video only.

Rows (bigger is better): our frames per CPU second / raw encode frames per CPU second (process
CPU time, all threads: x264 encodes in its own threads, and on a shared 2-core machine wall time
of such short runs varies by 2x while CPU time does not) - the price of rendering, the AAC
track and our writer relative to encoding alone, target >= 0.5 (together they cost at most as
much as the x264 encode itself); our fps (wall) / 25 fps - the real-time factor, target >= 1.0.
Reps alternate the order; the medians of the per-rep ratios are reported.

Usage: ``python bench/bench_animate_speed.py [--seconds 6] [--reps 3] [--json]``
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from _media import RATE, portrait, speech
from _report import emit, median, row

REPO = Path(__file__).resolve().parents[1]
FPS = 25.0
ENCODE_TARGET, REALTIME_TARGET = 0.5, 1.0


class _KeepFrames:
    """Stands in for ``Mp4Writer`` inside ``animate_portrait``: keeps the frames, writes nothing."""

    frames: list = []

    def __init__(self, *_args, **_kwargs):
        _KeepFrames.frames = []

    def __enter__(self):
        return self

    def __exit__(self, *_exc):
        return None

    def write(self, frame):
        _KeepFrames.frames.append(frame.copy())


def raw_encode(frames: list, path: Path, fps: float = FPS) -> float:
    """Process CPU seconds to encode uint8 ``[H, W, 3]`` frames with plain PyAV/libx264 (crf 20,
    preset fast, x264's default threads)."""
    import av

    t0 = time.process_time()
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=int(fps))
        stream.width, stream.height, stream.pix_fmt = frames[0].shape[1], frames[0].shape[0], "yuv420p"
        stream.options = {"crf": "20", "preset": "fast"}
        for frame in frames:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(stream.encode(None))
    return time.process_time() - t0


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seconds", type=float, default=6.0, help="speech length (frames = seconds x 25)")
    p.add_argument("--reps", type=int, default=3)
    p.add_argument("--json", action="store_true", help="end with a BENCH_ROWS line for run_all.py")
    a = p.parse_args(argv)
    sys.path.insert(0, str(REPO / "custom_nodes"))
    import myspinbot.animate.animator as animator

    image, image_src = portrait()
    audio, audio_src = speech(a.seconds)
    ours_fps, ours_cpu_fps, render_fps, raw_fps = [], [], [], []  # raw_fps: frames per CPU second
    with tempfile.TemporaryDirectory(prefix="bench_animate_speed_") as tmp:
        out = Path(tmp) / "ours.mp4"
        animator.animate_portrait(image, audio, RATE, out)  # warm-up (cascades, x264)
        real_writer = animator.Mp4Writer
        for r in range(a.reps):
            def ours():
                t0, c0 = time.perf_counter(), time.process_time()
                res = animator.animate_portrait(image, audio, RATE, out)
                ours_fps.append(res.frame_count / (time.perf_counter() - t0))
                ours_cpu_fps.append(res.frame_count / (time.process_time() - c0))

            def render_and_raw():
                animator.Mp4Writer = _KeepFrames
                try:
                    t0 = time.perf_counter()
                    animator.animate_portrait(image, audio, RATE, Path(tmp) / "none.mp4")
                    render_fps.append(len(_KeepFrames.frames) / (time.perf_counter() - t0))
                finally:
                    animator.Mp4Writer = real_writer
                raw_fps.append(len(_KeepFrames.frames) / raw_encode(_KeepFrames.frames, Path(tmp) / "raw.mp4"))
                _KeepFrames.frames = []

            for step in ((ours, render_and_raw) if r % 2 == 0 else (render_and_raw, ours)):
                step()
            print(f"rep {r + 1}: ours {ours_fps[-1]:.1f} fps wall, {ours_cpu_fps[-1]:.1f} frames per CPU s "
                  f"(render+encode); render only {render_fps[-1]:.1f} fps; raw PyAV encode {raw_fps[-1]:.1f} "
                  f"frames per CPU s", flush=True)
    enc_ratio = median([o / w for o, w in zip(ours_cpu_fps, raw_fps)])
    rt_ratio = median(ours_fps) / FPS
    enc_ok, rt_ok = enc_ratio >= ENCODE_TARGET, rt_ratio >= REALTIME_TARGET
    h, w = image.shape[:2]
    print(f"{image_src}, {audio_src}: ours / raw encode = {enc_ratio:.3f} (target >= {ENCODE_TARGET}) -> "
          f"{'PASS' if enc_ok else 'FAIL'}; real-time factor {rt_ratio:.2f} (target >= {REALTIME_TARGET}) -> "
          f"{'PASS' if rt_ok else 'FAIL'}")
    if a.json:
        emit([
            row(f"Lite animator render+encode, {w}x{h}, CPU cost", f"{median(ours_cpu_fps):.1f} frames/CPU s",
                f"{median(raw_fps):.1f} frames/CPU s (raw PyAV x264)", enc_ratio, f">= {ENCODE_TARGET}", ok=enc_ok,
                note=f"render alone {median(render_fps):.1f} fps (wall); ours includes the AAC track"),
            row(f"Lite animator render+encode, {w}x{h}, vs real time", f"{median(ours_fps):.1f} fps",
                f"{FPS:g} fps (real time)", rt_ratio, f">= {REALTIME_TARGET}", ok=rt_ok),
        ])
    return 0 if enc_ok and rt_ok else 1


if __name__ == "__main__":
    sys.exit(main())
