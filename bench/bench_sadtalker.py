"""Benchmark: our SadTalker renderer vs the authors' ``make_animation``, same weights, same process.

Needs the authors' code exported outside the repo (``MYSPINBOT_SADTALKER_REF``; see
``tests/tier1/test_sadtalker_reference.py``); without it prints skipped rows. Their keypoint
detector, generator and mapping network are built from their ``src/config/facerender.yaml``
with random weights; ours are loaded with the same tensors. The source is the fixture
portrait resized to ``--size``; the driving coefficients are random (``--frames`` frames).

* ours: :func:`myspinbot.sadtalker.render_frames` (``batch_size`` 1): the source's keypoints
  and appearance volume once, then per frame mapping, keypoints, dense motion, warp, decoder.
* theirs: ``make_animation`` (their loop re-encodes the source every frame).

Seconds per frame of CPU time of the calling thread (``--threads`` 1: stable on a shared
machine) or synchronised wall time on a GPU (``--device cuda``, which also reports peak
memory). Ratio = their seconds / ours (>= 1: ours at least as fast); target >= 1.0.

Usage: ``python bench/bench_sadtalker.py [--size 256] [--frames 2] [--reps 1] [--threads 1] [--device cpu] [--json]``
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import types
from pathlib import Path

from _media import portrait
from _report import emit, median, row, skipped

REPO = Path(__file__).resolve().parents[1]
REF = Path(os.environ["MYSPINBOT_SADTALKER_REF"]) if os.environ.get("MYSPINBOT_SADTALKER_REF") else None
TARGET = 1.0


def _theirs(device: str):
    import yaml

    sys.path.insert(0, str(REF))
    try:
        from src.facerender.modules import make_animation
        from src.facerender.modules.generator import OcclusionAwareSPADEGenerator
        from src.facerender.modules.keypoint_detector import KPDetector
        from src.facerender.modules.mapping import MappingNet
    finally:
        sys.path.remove(str(REF))
    params = yaml.safe_load((REF / "src" / "config" / "facerender.yaml").read_text())["model_params"]
    common = params["common_params"]
    nets = types.SimpleNamespace(
        kp=KPDetector(**params["kp_detector_params"], **common).to(device).eval(),
        generator=OcclusionAwareSPADEGenerator(**params["generator_params"], **common).to(device).eval(),
        mapping=MappingNet(**params["mapping_params"]).to(device).eval())
    return nets, make_animation.make_animation


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--size", type=int, default=256)
    p.add_argument("--frames", type=int, default=2)
    p.add_argument("--reps", type=int, default=1)
    p.add_argument("--threads", type=int, default=1, help="torch.set_num_threads")
    p.add_argument("--device", default="cpu", help="cpu or cuda")
    p.add_argument("--json", action="store_true", help="end with a BENCH_ROWS line for run_all.py")
    a = p.parse_args(argv)
    stage = f"SadTalker renderer {a.size} px, {a.device}"
    if REF is None or not (REF / "src" / "facerender" / "modules" / "generator.py").is_file():
        why = "SadTalker reference code missing (MYSPINBOT_SADTALKER_REF)"
        print(f"skipped: {why}")
        if a.json:
            emit([skipped(stage, why, f">= {TARGET}")])
        return 0
    sys.path.insert(0, str(REPO / "custom_nodes"))
    sys.path.insert(0, str(REPO / "tests"))
    import cv2
    import numpy as np
    import torch
    from sadtalker_layout import part, randomize

    from myspinbot.sadtalker import KeypointDetector, MappingNet, OcclusionAwareSpadeGenerator, render_frames

    torch.set_num_threads(a.threads)
    theirs, make_animation = _theirs(a.device)
    ours = types.SimpleNamespace(kp=KeypointDetector(), generator=OcclusionAwareSpadeGenerator(), mapping=MappingNet())
    for name in ("kp", "generator", "mapping"):
        state = randomize({f"x.{k}": v for k, v in getattr(theirs, name).state_dict().items()}, seed=41)
        getattr(theirs, name).load_state_dict(part(state, "x"))
        getattr(ours, name).load_state_dict(part(state, "x"), strict=True)
        getattr(ours, name).to(a.device).eval()
    image = cv2.resize(portrait()[0], (a.size, a.size), interpolation=cv2.INTER_AREA)
    source = torch.from_numpy(image).permute(2, 0, 1).float().div(255).to(a.device)
    g = np.random.default_rng(5)
    source_coeffs = (g.standard_normal(73) * 0.3).astype(np.float32)
    driving = (g.standard_normal((a.frames, 70)) * 0.3).astype(np.float32)
    src_sem = torch.from_numpy(source_coeffs[:70])[None, :, None].repeat(1, 1, 27).to(a.device)
    index = torch.tensor([[min(max(k, 0), a.frames - 1) for k in range(i - 13, i + 14)] for i in range(a.frames)])
    target = torch.from_numpy(driving)[index].permute(0, 2, 1)[None].to(a.device)

    on_gpu = a.device != "cpu"
    clock = time.perf_counter if on_gpu else time.thread_time
    sync = torch.cuda.synchronize if on_gpu else (lambda: None)
    runs = {
        "ours": lambda: [b for b in render_frames(ours.kp, ours.generator, ours.mapping, source, source_coeffs,
                                                  driving, batch_size=1)],
        "theirs": lambda: make_animation(source[None], src_sem, target, theirs.generator, theirs.kp, None,
                                         theirs.mapping, use_exp=True),
    }
    spf: dict[str, list[float]] = {"ours": [], "theirs": []}
    peak: dict[str, float] = {}
    with torch.inference_mode():
        for r in range(a.reps):
            for name in (("ours", "theirs") if r % 2 == 0 else ("theirs", "ours")):
                if on_gpu:
                    torch.cuda.reset_peak_memory_stats()
                sync()
                t0 = clock()
                runs[name]()
                sync()
                spf[name].append((clock() - t0) / a.frames)
                if on_gpu:
                    peak[name] = torch.cuda.max_memory_allocated() / 2 ** 30
            print(f"rep {r + 1}: s/frame ours {spf['ours'][-1]:.2f}, theirs {spf['theirs'][-1]:.2f}", flush=True)
    ratio = median([t / o for o, t in zip(spf["ours"], spf["theirs"])])
    ok = ratio >= TARGET
    mem = f", peak {peak['ours']:.2f} GiB vs {peak['theirs']:.2f} GiB" if peak else ""
    print(f"renderer: theirs/ours {ratio:.3f} (target >= {TARGET}) -> {'PASS' if ok else 'FAIL'}{mem}")
    if a.json:
        unit = "wall" if on_gpu else "CPU"
        emit([row(stage, f"{median(spf['ours']):.2f} s/frame ({unit})", f"{median(spf['theirs']):.2f} s/frame "
                  "(authors' make_animation)", ratio, f">= {TARGET}", ok=ok, note=mem.strip(", "))])
    return 0


if __name__ == "__main__":
    sys.exit(main())
