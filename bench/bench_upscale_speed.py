"""Benchmark: Upscale Video (file to file) vs core's ImageUpscaleWithModel + CreateVideo/SaveVideo.

Same process, same spandrel model, same frames, same torch thread count:

* ours: ``UpscaleVideo.execute(video=VideoFromFile(clip))`` - decode, tiled upscale and H.264
  encode one frame at a time, audio remuxed; the result is a file.
* core: ``VideoFromFile(clip).get_components()`` (all frames decoded into one float batch),
  ``ImageUpscaleWithModel``, ``CreateVideo`` (with the clip's audio) and ``SaveVideo`` (mp4,
  codec auto) - the workflow a user would build from core nodes; the result is a file too.

Model: spandrel's ESRGAN (RRDBNet) with random weights, ``--filters`` 16, ``--blocks`` 2,
x``--scale`` 4, saved as .safetensors and loaded by core's ``UpscaleModelLoader``. Clip:
``--frames`` frames of ``--size`` px squares at 25 fps (moving gradients) with a stereo AAC
tone, written beforehand. Both paths are warmed up once on a 2-frame clip, then run
``--reps`` times, alternating which goes first; the ratio is the median over reps of
(our fps / core fps) from back-to-back pairs, so load from other processes hits both alike.

Also printed: main-thread CPU seconds and minor page faults per frame of both paths. With
glibc's default thresholds the model's large activations are mmapped and trimmed every frame
(15-70 thousand faults per frame at 192² x4, 5-20 % of a frame, varying with the heap's state);
the node runs its frame loop on a steady heap (``nodes/_heap.py``: 1-7 thousand). Core's loop
benefits partly too once the node has run in the same process (glibc's thresholds are left at
the values its dynamic scheme settles on).

Also printed (the root cause of #15's slowdown): the model forward alone on one frame in the
three layouts a frame can reach the model in - core's (NHWC batch + movedim: channels-last,
canonical strides), the node's before the fix (``from_numpy(hwc).movedim(-1, 0)[None]``:
batch stride 3, which PyTorch does not take for channels-last, so the net runs NCHW) and plain
NCHW-contiguous - as CPU seconds of the calling thread per forward.

``--gpu`` runs ComfyUI in its normal (GPU) mode instead of ``--cpu`` (used by ``bench/gpu.sh``
with the full RealESRGAN_x4plus size: ``--filters 64 --blocks 23 --size 512``).

Usage: ``COMFYUI_DIR=/path/to/ComfyUI python bench/bench_upscale_speed.py [--gpu] [--json]`` - prints
fps of both paths per rep, the median ratio against the target (>= 1.0) and exits 1 below it.
Without ``COMFYUI_DIR`` prints a skipped row and exits 0.
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from pathlib import Path

from _comfy import comfy_dir, import_comfy, node
from _report import emit, median, row, skipped

FPS, RATE = 25.0, 44100
TARGET = 1.0


def make_clip(path: Path, frames: int, size: int) -> Path:
    """Moving-gradient ``size``² frames at 25 fps with a stereo tone (uint8 RGB -> H.264/AAC)."""
    import numpy as np

    from myspinbot.video import Mp4Writer

    t = np.arange(int(round((frames / FPS + 0.1) * RATE))) / RATE
    audio = np.stack([0.3 * np.sin(2 * np.pi * 440 * t), 0.2 * np.sin(2 * np.pi * 554 * t)]).astype(np.float32)
    y, x = np.mgrid[0:size, 0:size]
    with Mp4Writer(path, size, size, FPS, audio, RATE) as writer:
        for i in range(frames):
            f = np.empty((size, size, 3), np.uint8)
            f[..., 0], f[..., 1], f[..., 2] = (x * 4 + i * 3) % 256, (y * 4 + i * 5) % 256, ((x + y) * 2 + i) % 256
            writer.write(f)
    return path


def load_model(folder: Path, filters: int, blocks: int, scale: int):
    """Random ESRGAN saved to ``folder`` and loaded by core's ``UpscaleModelLoader``."""
    import folder_paths
    import safetensors.torch
    import torch
    from comfy_extras.nodes_upscale_model import UpscaleModelLoader
    from spandrel.architectures.ESRGAN import ESRGAN

    torch.manual_seed(0)
    net = ESRGAN(num_filters=filters, num_blocks=blocks, scale=scale)
    folder.mkdir(parents=True, exist_ok=True)
    safetensors.torch.save_file({k: v.contiguous() for k, v in net.state_dict().items()},
                                str(folder / "bench_esrgan.safetensors"))
    folder_paths.add_model_folder_path("upscale_models", str(folder), is_default=True)
    return UpscaleModelLoader.execute("bench_esrgan.safetensors").result[0]


def runners(model):
    """``{"ours": fn(clip), "core": fn(clip)}``; each upscales the clip file to an MP4 file."""
    import torch
    from comfy_api.latest import InputImpl
    from comfy_extras.nodes_upscale_model import ImageUpscaleWithModel
    from comfy_extras.nodes_video import CreateVideo, SaveVideo

    from myspinbot.nodes.upscale_video import UpscaleVideo

    save = node(SaveVideo)

    def core(clip: Path) -> None:
        with torch.inference_mode():  # as ComfyUI's executor runs every node
            comps = InputImpl.VideoFromFile(str(clip)).get_components()
            images = ImageUpscaleWithModel.execute(model, comps.images).result[0]
            video = CreateVideo.execute(images, float(comps.frame_rate), comps.audio).result[0]
            save.execute(video, "bench/core", "mp4")

    def ours(clip: Path) -> None:
        UpscaleVideo.execute(upscale_model=model, video=InputImpl.VideoFromFile(str(clip)))

    return {"ours": ours, "core": core}


def layouts(model, size: int, reps: int) -> dict[str, float]:
    """Seconds per model forward on one ``size``² frame, per input layout: CPU seconds of the
    calling thread on the CPU, wall seconds (synchronised) on a GPU."""
    import numpy as np
    import torch

    device = model.patcher.load_device
    on_gpu = device.type == "cuda"
    clock = time.perf_counter if on_gpu else time.thread_time

    frame = np.random.default_rng(0).integers(0, 256, (size, size, 3), dtype=np.uint8)
    batch = torch.from_numpy(frame[None]).float() / 255.0
    inputs = {
        "core (NHWC batch, movedim)": batch.movedim(-1, -3),
        "before fix (batch stride 3)": torch.from_numpy(frame).movedim(-1, 0).unsqueeze(0).float() / 255.0,
        "NCHW contiguous": batch.movedim(-1, -3).contiguous(),
    }
    inputs = {k: v.to(device) for k, v in inputs.items()}  # .to keeps the strides
    times: dict[str, list[float]] = {k: [] for k in inputs}
    with torch.inference_mode():
        for x in inputs.values():
            model(x)  # warm-up (and cuDNN's choice of kernels per layout)
        for r in range(reps):
            for name in (list(inputs) if r % 2 == 0 else list(inputs)[::-1]):
                if on_gpu:
                    torch.cuda.synchronize()
                t0 = clock()
                model(inputs[name])
                if on_gpu:
                    torch.cuda.synchronize()
                times[name].append(clock() - t0)
    return {k: median(v) for k, v in times.items()}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--frames", type=int, default=8)
    p.add_argument("--size", type=int, default=192)
    p.add_argument("--scale", type=int, default=4)
    p.add_argument("--filters", type=int, default=16)
    p.add_argument("--blocks", type=int, default=2)
    p.add_argument("--reps", type=int, default=3)
    p.add_argument("--threads", type=int, default=1, help="torch.set_num_threads")
    p.add_argument("--gpu", action="store_true", help="ComfyUI's GPU mode (default: --cpu)")
    p.add_argument("--json", action="store_true", help="end with a BENCH_ROWS line for run_all.py")
    a = p.parse_args(argv)
    where = "GPU" if a.gpu else "CPU"
    stage = f"Upscale Video ESRGAN {a.filters}f/{a.blocks}b x{a.scale}, {a.size}² {where} (decode+upscale+encode)"
    if comfy_dir() is None:
        print("skipped: COMFYUI_DIR unset")
        if a.json:
            emit([skipped(stage, "COMFYUI_DIR unset", f">= {TARGET}")])
        return 0
    import torch

    torch.set_num_threads(a.threads)
    with tempfile.TemporaryDirectory(prefix="bench_upscale_speed_") as tmp:
        scratch = Path(tmp)
        import_comfy(scratch, cpu=not a.gpu)
        model = load_model(scratch / "models", a.filters, a.blocks, a.scale)
        clip = make_clip(scratch / "clip.mp4", a.frames, a.size)
        warm = make_clip(scratch / "warm.mp4", 2, a.size)
        run = runners(model)
        for fn in run.values():
            fn(warm)
        fps: dict[str, list[float]] = {"ours": [], "core": []}
        cpu: dict[str, list[float]] = {"ours": [], "core": []}  # main-thread CPU s per frame
        faults: dict[str, list[float]] = {"ours": [], "core": []}  # main-thread minor page faults per frame
        for r in range(a.reps):
            for name in (("ours", "core") if r % 2 == 0 else ("core", "ours")):
                t0, c0 = time.perf_counter(), time.thread_time()
                f0 = resource.getrusage(resource.RUSAGE_THREAD).ru_minflt
                run[name](clip)
                fps[name].append(a.frames / (time.perf_counter() - t0))
                cpu[name].append((time.thread_time() - c0) / a.frames)
                faults[name].append((resource.getrusage(resource.RUSAGE_THREAD).ru_minflt - f0) / a.frames)
            print(f"rep {r + 1}: ours {fps['ours'][-1]:.3f} fps, core {fps['core'][-1]:.3f} fps, "
                  f"ratio {fps['ours'][-1] / fps['core'][-1]:.3f}; main-thread CPU s/frame ours "
                  f"{cpu['ours'][-1]:.3f}, core {cpu['core'][-1]:.3f}; minor page faults/frame ours "
                  f"{faults['ours'][-1]:.0f}, core {faults['core'][-1]:.0f}", flush=True)
        lay = layouts(model, a.size, a.reps)
    ratio = median([o / c for o, c in zip(fps["ours"], fps["core"])])
    cpu_ratio = median(cpu["core"]) / median(cpu["ours"])
    ok = ratio >= TARGET
    print(f"{a.frames} frames {a.size}² -> x{a.scale}, torch threads {a.threads}: ours {median(fps['ours']):.3f} fps, "
          f"core {median(fps['core']):.3f} fps, median ratio {ratio:.3f} (target >= {TARGET}) -> "
          f"{'PASS' if ok else 'FAIL'}; main-thread CPU ratio (core/ours) {cpu_ratio:.3f}")
    base = lay["core (NHWC batch, movedim)"]
    for name, sec in lay.items():
        print(f"  forward, {name}: {sec:.3f} s/frame ({base / sec:.2f}x core's speed)")
    if a.json:
        emit([
            row(stage, f"{median(fps['ours']):.3f} fps", f"{median(fps['core']):.3f} fps (core nodes)", ratio,
                f">= {TARGET}", ok=ok,
                note=f"main-thread CPU s/frame: ours {median(cpu['ours']):.3f}, core {median(cpu['core']):.3f}; "
                     f"page faults/frame: ours {median(faults['ours']):.0f}, core {median(faults['core']):.0f}"),
            row("  ESRGAN forward, frame layout before the #15 fix", f"{lay['before fix (batch stride 3)']:.3f} s/frame",
                f"{base:.3f} s/frame (core's layout)", base / lay["before fix (batch stride 3)"], "(diagnostic)"),
        ])
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
