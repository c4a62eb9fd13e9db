"""Benchmark: is video upscaling memory flat in clip length?

Upscales a synthetic 10 s and a 60 s video (64x64 @ 25 fps by default, ``--size`` to change
it; moving gradient, stereo AAC tone) with a tiny random upscale model, each in a fresh subprocess, and compares the peak
memory growth of the two runs.

Model: built with spandrel's own architecture class and random weights, saved to a scratch
``upscale_models`` folder as ``.safetensors``. ``--arch compact`` (default) is RealESRGAN's
SRVGGNetCompact (num_feat 16, 2 convs, x2), fast enough for 1750 frames on a CPU in about a
minute; ``--arch esrgan`` is a one-block RRDBNet x2 (much slower on a CPU: ~0.3-1 s/frame).

Path measured: with ``COMFYUI_DIR`` set, the real node - ComfyUI's modules in-process with
``--cpu`` semantics, the model loaded by core's ``UpscaleModelLoader``, then
``UpscaleVideo.execute`` on a ``VideoFromFile`` (tiled_scale, progress bar, file-backed MP4
in a scratch temp folder, audio remuxed). Without it, the engine alone:
``map_video_frames`` with the spandrel model called on each whole frame.

What is measured (per child): resident set size sampled every 2 ms by a thread (psutil if
present, else /proc/self/statm) while the upscale runs; "growth" = peak RSS during the call
minus RSS just before it. Before measuring, the child upscales a 1 s clip once (warm-up), so
one-time costs (model load, x264/FFmpeg initialisation, torch's allocator) are in the
baseline and do not mask a per-frame leak. The kernel's ``ru_maxrss`` growth is printed as a
cross-check for spikes shorter than the sampling period; the larger reading is compared.

With ``--arch esrgan`` use frames of 160 px or more (``--size 160``): at 64x64 the per-frame
working set is so small that a one-off allocator spike of a few MiB dominates the ratio.

Usage: ``python bench/bench_upscale_memory.py [--arch compact|esrgan] [--size PX] [--seconds 10 60]
[--limit 1.25] [--json]`` - prints both growths and the ratio (long / short); PASS when the ratio
is below the limit, else FAIL with exit code 1.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

from _memory import PeakSampler, growth_row, growth_verdict, rss_bytes, run_child
from _report import emit

REPO = Path(__file__).resolve().parents[1]
CUSTOM_NODES = REPO / "custom_nodes"
DURATIONS_S = (10.0, 60.0)
WARMUP_S = 1.0
MAX_RATIO = 1.25
FPS, RATE = 25.0, 44100
DEFAULT_SIZE = 64  # frame side in px


def make_clip(path: Path, seconds: float, size: int) -> Path:
    """Write the synthetic input: moving gradient frames and a stereo tone, streamed."""
    sys.path.insert(0, str(CUSTOM_NODES))
    import numpy as np

    from myspinbot.video import Mp4Writer

    n = int(round(seconds * FPS))
    t = np.arange(int(round(seconds * RATE))) / RATE
    audio = np.stack([0.3 * np.sin(2 * np.pi * 440 * t), 0.2 * np.sin(2 * np.pi * 554 * t)]).astype(np.float32)
    y, x = np.mgrid[0:size, 0:size]
    with Mp4Writer(path, size, size, FPS, audio, RATE) as writer:
        for i in range(n):
            frame = np.empty((size, size, 3), np.uint8)
            frame[..., 0] = (x * 4 + i * 3) % 256
            frame[..., 1] = (y * 4 + i * 5) % 256
            frame[..., 2] = ((x + y) * 2 + i) % 256
            writer.write(frame)
    return path


def _build_model(arch: str, folder: Path) -> Path:
    import safetensors.torch
    import torch

    torch.manual_seed(0)
    if arch == "esrgan":
        from spandrel.architectures.ESRGAN import ESRGAN

        net = ESRGAN(num_filters=8, num_blocks=1, scale=2)
    else:
        from spandrel.architectures.Compact import Compact

        net = Compact(num_feat=16, num_conv=2, upscale=2)
    path = folder / f"bench_{arch}_x2.safetensors"
    safetensors.torch.save_file({k: v.contiguous() for k, v in net.state_dict().items()}, str(path))
    return path


def _node_runner(model_file: Path, scratch: Path):
    """The real node inside ComfyUI's modules (COMFYUI_DIR, --cpu)."""
    comfy_dir = os.environ["COMFYUI_DIR"]
    sys.path.insert(0, comfy_dir)
    from comfy.cli_args import args

    args.cpu = True
    import folder_paths
    from comfy_api.latest import InputImpl
    from comfy_extras.nodes_upscale_model import UpscaleModelLoader

    from myspinbot.nodes.upscale_video import UpscaleVideo

    folder_paths.add_model_folder_path("upscale_models", str(model_file.parent), is_default=True)
    folder_paths.set_temp_directory(str(scratch / "temp"))
    model = UpscaleModelLoader.execute(model_file.name).result[0]

    def run(clip: Path) -> str:
        video, _ = UpscaleVideo.execute(upscale_model=model, video=InputImpl.VideoFromFile(str(clip))).result
        return video.get_stream_source()

    return run, "node (ComfyUI in-process, --cpu: UpscaleModelLoader + UpscaleVideo.execute)"


def _engine_runner(model_file: Path, scratch: Path):
    """The engine alone with the spandrel model called on whole frames (no ComfyUI)."""
    import torch
    from spandrel import ModelLoader

    from myspinbot.video.frame_map import map_video_frames

    model = ModelLoader().load_from_file(str(model_file)).eval()

    @torch.inference_mode()
    def upscale(frame):
        x = torch.from_numpy(frame).movedim(-1, 0)[None].float() / 255.0
        y = model(x)[0].movedim(0, -1)
        return (y * 255.0 + 0.5).clamp(0, 255).to(torch.uint8).numpy()

    def run(clip: Path) -> str:
        return str(map_video_frames(clip, scratch / f"out_{clip.stem}.mp4", upscale).path)

    return run, "engine only (COMFYUI_DIR not set: map_video_frames + spandrel model per frame)"


def child(clip: Path, warmup: Path, arch: str) -> dict:
    """Run one measurement in this process; returns the numbers as a dict."""
    sys.path.insert(0, str(CUSTOM_NODES))
    from myspinbot.video import probe_media

    with tempfile.TemporaryDirectory() as tmp:
        scratch = Path(tmp)
        (scratch / "models").mkdir()
        model_file = _build_model(arch, scratch / "models")
        use_node = bool(os.environ.get("COMFYUI_DIR"))
        run, path_desc = (_node_runner if use_node else _engine_runner)(model_file, scratch)
        os.remove(run(warmup))  # warm-up: one-time costs go into the baseline
        gc.collect()
        before = rss_bytes()
        maxrss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        t0 = time.perf_counter()
        with PeakSampler() as sampler:
            out = run(clip)
        elapsed = time.perf_counter() - t0
        maxrss_after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        info = probe_media(out)
        size = os.path.getsize(out)
        os.remove(out)
    return {
        "frames": info["video"]["frame_count"],
        "out_size": f"{info['video']['width']}x{info['video']['height']}",
        "audio": info["audio"]["codec"] if info["audio"] else None,
        "elapsed_s": elapsed,
        "rss_before_mb": before / 2**20,
        "peak_growth_mb": (sampler.peak - before) / 2**20,
        "maxrss_growth_mb": max(0, maxrss_after - max(maxrss_before, before)) / 2**20,
        "mp4_mb": size / 2**20,
        "path": path_desc,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--arch", choices=("compact", "esrgan"), default="compact", help="tiny random model to use")
    parser.add_argument("--size", type=int, default=DEFAULT_SIZE, help="frame width and height in px")
    parser.add_argument("--seconds", type=float, nargs=2, default=DURATIONS_S, metavar=("SHORT", "LONG"),
                        help="the two clip lengths compared (default 10 60)")
    parser.add_argument("--limit", type=float, default=MAX_RATIO, help="largest passing growth ratio LONG/SHORT")
    parser.add_argument("--json", action="store_true", help="end with a BENCH_ROWS line for run_all.py")
    parser.add_argument("--child", nargs=2, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child is not None:
        print(json.dumps(child(Path(args.child[0]), Path(args.child[1]), args.arch)))
        return 0
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        # Inputs are written here, in the parent, so their encoding leaves nothing in the children.
        warmup = make_clip(Path(tmp) / "warmup.mp4", WARMUP_S, args.size)
        for seconds in args.seconds:
            clip = make_clip(Path(tmp) / f"clip_{seconds:g}s.mp4", seconds, args.size)
            res = run_child([sys.executable, __file__, "--arch", args.arch, "--size", str(args.size), "--child", str(clip), str(warmup)],
                            f"{seconds:g} s")
            if res is None:
                return 1
            results.append(res)
            print(
                f"{seconds:5.0f} s video: {res['frames']:5d} frames -> {res['out_size']} (audio {res['audio']}) "
                f"in {res['elapsed_s']:6.1f} s | peak RSS growth {res['peak_growth_mb']:7.1f} MiB (sampled) | "
                f"ru_maxrss growth {res['maxrss_growth_mb']:7.1f} MiB | baseline RSS {res['rss_before_mb']:6.1f} MiB | "
                f"mp4 {res['mp4_mb']:.2f} MiB"
            )
    print(f"model: tiny random {args.arch} x2; input {args.size}x{args.size} @ {FPS:g} fps; path: {results[0]['path']}")
    short, long = (f"{x:g} s" for x in args.seconds)
    if args.json:
        emit([growth_row(f"Memory: Upscale Video ({args.arch} x2, {args.size}²)", results[0], results[1], short, long,
                         args.limit)])
    return growth_verdict(results[0], results[1], short, long, args.limit)


if __name__ == "__main__":
    sys.exit(main())
