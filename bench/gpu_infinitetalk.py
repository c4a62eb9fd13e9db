"""GPU benchmark: seconds per 81-frame InfiniteTalk window at 480p (fp16) and peak VRAM.

Full-size random weights, real layouts: a Wan2.1 I2V 14B DiT (dim 5120, 40 layers, 40 heads,
ffn 13824) built in memory in fp16 on the GPU and handed to core's
``comfy.sd.load_diffusion_model_state_dict`` (what ``UNETLoader`` calls after reading the
file: the 28 GB file write and read are skipped); the InfiniteTalk patch (40 audio
cross-attention blocks of dim 5120, ``audio_proj`` 512 / 768), a Wan2.1 VAE (base width 96) and
a wav2vec2-base written as fp16 safetensors and loaded with core's ``ModelPatchLoader``,
``VAELoader`` and ``AudioEncoderLoader``. Layouts come from core's module classes through
``tests/tier2/tiny_wan.py`` with its size constants set to the real ones.

Runs "MySpinBot InfiniteTalk" on 3.24 s of fixture speech (one 81-frame window) at
``--width`` x ``--height`` (832 x 480), ``--steps`` euler steps (4: the distilled-LoRA
setting; the time scales with steps), cfg 1 and audio cfg 1: once to warm up, then measured.
Prints seconds per window, seconds per step (window time minus the same run with 1 step,
divided by the extra steps, when ``--per-step``) and peak VRAM (``torch.cuda.max_memory_allocated``).

Needs CUDA, ComfyUI (``COMFYUI_DIR``), about 40 GB of GPU memory, 35 GB of RAM and 6 GB of
disk under ``--scratch``. Usage: ``python bench/gpu_infinitetalk.py [--steps 4] [--json]``
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import tempfile
import time
from pathlib import Path

from _media import portrait as media_portrait
from _media import speech as media_speech
from _report import emit, row, skipped

REPO = Path(__file__).resolve().parents[1]
FULL = {"WAN_DIM": 5120, "WAN_FFN": 13824, "WAN_LAYERS": 40, "PATCH_INTERMEDIATE": 512, "PATCH_TOKEN_DIM": 768,
        "VAE_DIM": 96}
STAGE = "InfiniteTalk 81-frame window, 14B fp16"


DEVICE = "cuda"  # "cpu" with --dry-run-cpu


def _comfy_gpu(dry_run: bool = False):
    """ComfyUI on ``sys.path`` in its normal (GPU) mode; ``tiny_wan`` with the full sizes
    (``dry_run``: CPU mode and tiny_wan's own tiny sizes, to check this script without a GPU)."""
    root = os.environ["COMFYUI_DIR"]
    sys.path[:0] = [root, str(REPO / "custom_nodes"), str(REPO / "tests" / "tier2")]
    from comfy.cli_args import args

    args.cpu = dry_run
    import tiny_wan

    tiny_wan.ensure_comfy_on_path = lambda: Path(root)  # keep the mode chosen here (tiny_wan selects --cpu)
    for name, value in ({} if dry_run else FULL).items():
        setattr(tiny_wan, name, value)
    return tiny_wan


def _random_fp16(shapes: dict, seed: int) -> dict:
    """tiny_wan's init rule (gains 1, biases 0, weights N(0, 1/fan_in)), drawn on the GPU, fp16."""
    import torch

    gen = torch.Generator(DEVICE).manual_seed(seed)
    out = {}
    for key in sorted(shapes):
        shape, leaf = tuple(shapes[key]), key.rsplit(".", 1)[-1]
        if leaf in ("bias", "beta"):
            t = torch.zeros(shape, device=DEVICE, dtype=torch.float16)
        elif leaf == "gamma" or (leaf == "weight" and len(shape) == 1):
            t = torch.ones(shape, device=DEVICE, dtype=torch.float16)
        else:
            std = 0.02 if "modulation" in key else 1.0 / math.sqrt(max(1, math.prod(shape[1:]) if len(shape) > 1 else 1))
            t = (torch.randn(shape, generator=gen, device=DEVICE) * std).to(torch.float16)
        out[key] = t
    return out


def load_models(tiny_wan, scratch: Path):
    """(model, patch, audio_encoder, vae) at full size through core's loading code."""
    import folder_paths
    import nodes
    from comfy_extras.nodes_audio_encoder import AudioEncoderLoader
    from comfy_extras.nodes_model_patch import ModelPatchLoader
    import torch
    from safetensors.torch import save_file

    import comfy.sd

    files = {"model_patch": lambda: _random_fp16(tiny_wan.infinitetalk_patch_shapes(), 2),
             "vae": lambda: _random_fp16(tiny_wan.wan_vae_shapes(), 4),
             "audio_encoder": lambda: tiny_wan.wav2vec2_base_state_dict(3)}
    for kind, build in files.items():
        folder, name = tiny_wan.FILES[kind]
        (scratch / folder).mkdir(parents=True, exist_ok=True)
        save_file({k: v.cpu().contiguous() for k, v in build().items()}, str(scratch / folder / name))
        folder_paths.add_model_folder_path(folder, str(scratch / folder), is_default=True)
    sd = _random_fp16(tiny_wan.wan_i2v_shapes(), 1)
    model = comfy.sd.load_diffusion_model_state_dict(sd, model_options={"dtype": torch.float16})
    del sd
    patch = ModelPatchLoader().load_model_patch(tiny_wan.FILES["model_patch"][1])[0]
    audio_encoder = AudioEncoderLoader.execute(tiny_wan.FILES["audio_encoder"][1])[0]
    vae = nodes.VAELoader().load_vae(tiny_wan.FILES["vae"][1])[0]
    return model, patch, audio_encoder, vae


def run_window(models, tiny_wan, width: int, height: int, steps: int) -> float:
    """Seconds for "MySpinBot InfiniteTalk" on 81 frames of speech (one window)."""
    import numpy as np
    import torch

    import comfy.clip_vision
    from myspinbot.nodes.infinitetalk import InfiniteTalk

    model, patch, audio_encoder, vae = models
    speech, _ = media_speech(81 / 25)  # 48 kHz: fixture speech, or a synthetic stand-in
    audio = {"waveform": torch.from_numpy(speech)[None], "sample_rate": 48000}
    portrait = torch.from_numpy(media_portrait()[0].astype(np.float32) / 255.0)[None]
    gen = torch.Generator().manual_seed(0)
    positive = [[torch.randn(1, 512, tiny_wan.TEXT_DIM, generator=gen) * 0.1, {}]]
    clip_vision = comfy.clip_vision.Output()
    clip_vision.penultimate_hidden_states = torch.randn(1, tiny_wan.CLIP_VISION_TOKENS, tiny_wan.CLIP_VISION_DIM,
                                                        generator=gen)
    sync = torch.cuda.synchronize if DEVICE == "cuda" else (lambda: None)
    sync()
    t0 = time.perf_counter()
    with torch.inference_mode():
        InfiniteTalk.execute(model, patch, vae, positive, None, portrait, audio, audio_encoder, steps, 1.0, 1.0, "euler",
                             "simple", 0, width, height, 25, 81, 9, 1.0, clip_vision_output=clip_vision)
    sync()
    return time.perf_counter() - t0


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--width", type=int, default=832)
    p.add_argument("--height", type=int, default=480)
    p.add_argument("--steps", type=int, default=4)
    p.add_argument("--per-step", action="store_true", help="also time a 1-step window to split off the fixed costs")
    p.add_argument("--scratch", type=Path, default=None, help="folder for the 6 GB of small checkpoints")
    p.add_argument("--json", action="store_true", help="end with a BENCH_ROWS line for run_all.py")
    p.add_argument("--dry-run-cpu", action="store_true",
                   help="check the script without a GPU: tiny models, 16x16, 1 step, CPU, one window")
    a = p.parse_args(argv)
    if a.dry_run_cpu:
        global DEVICE
        DEVICE = "cpu"
        tiny_wan = _comfy_gpu(dry_run=True)
        with tempfile.TemporaryDirectory(prefix="gpu_infinitetalk_dry_") as tmp:
            models = load_models(tiny_wan, Path(tmp))
            took = run_window(models, tiny_wan, 16, 16, 1)
        print(f"dry run on the CPU (tiny models, 16x16, 1 step): {took:.1f} s for one 81-frame window")
        return 0
    try:
        import torch

        cuda = torch.cuda.is_available()
    except ImportError:
        cuda = False
    if not cuda or not os.environ.get("COMFYUI_DIR"):
        why = "no CUDA device" if not cuda else "COMFYUI_DIR unset"
        print(f"skipped: {why}")
        if a.json:
            emit([skipped(STAGE, why)])
        return 0
    tiny_wan = _comfy_gpu()
    with tempfile.TemporaryDirectory(prefix="gpu_infinitetalk_", dir=a.scratch) as tmp:
        t0 = time.perf_counter()
        models = load_models(tiny_wan, Path(tmp))
        print(f"models built and loaded in {time.perf_counter() - t0:.0f} s", flush=True)
        warm = run_window(models, tiny_wan, a.width, a.height, a.steps)
        torch.cuda.reset_peak_memory_stats()
        took = run_window(models, tiny_wan, a.width, a.height, a.steps)
        peak = torch.cuda.max_memory_allocated() / 2**30
        one = run_window(models, tiny_wan, a.width, a.height, 1) if a.per_step and a.steps > 1 else None
    per_step = (took - one) / (a.steps - 1) if one is not None else None
    print(f"{a.width}x{a.height}, 81 frames, {a.steps} steps: {took:.1f} s/window (warm-up run {warm:.1f} s), "
          f"peak VRAM {peak:.1f} GiB" + (f", {per_step:.2f} s/step" if per_step is not None else ""))
    if a.json:
        note = f"{a.steps} steps, cfg 1" + (f"; {per_step:.2f} s per step" if per_step is not None else "")
        emit([row(f"{STAGE}, {a.width}x{a.height}", f"{took:.1f} s/window", "-", None, "(record)", note=note),
              row(f"{STAGE}: peak VRAM", f"{peak:.1f} GiB", "-", None, "(record)")])
    return 0


if __name__ == "__main__":
    sys.exit(main())
