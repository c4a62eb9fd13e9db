"""Benchmark: "MySpinBot InfiniteTalk" windows vs core's WanInfiniteTalkToVideo chained by hand.

Same process, same tiny random models (``tests/tier2/tiny_wan.py``: Wan2.1 I2V DiT dim 160 /
2 blocks, the InfiniteTalk patch, a random full-size wav2vec2-base, a width-4 Wan VAE, loaded
with core's loaders), same portrait, same ``--seconds`` of fixture speech, same windows
(``--window`` frames: default 33, so that a 2-core CPU gets through in a minute, 81 in real
use; 9 motion frames; the lengths our planner picks), ``--steps`` euler steps, cfg 1 and audio
cfg 1 (core's plain KSampler path in both), ``--size``² frames (default 16) at 25 fps:

* ours: ``InfiniteTalk.execute`` - per window: core's ``AudioEncoderEncode`` on that window's
  audio (with 2 s margins), ``WanInfiniteTalkToVideo`` continued from the last frames,
  ``comfy.sample.sample``, ``VAEDecode``; the new frames go straight into the MP4 (with audio).
  Colour matching off (the baseline has none).
* core by hand (a workflow a user builds from core nodes for long audio): ``AudioEncoderEncode``
  on the whole audio once; per window ``WanInfiniteTalkToVideo`` with ``previous_frames`` = all
  frames so far (core's own offset rule), ``KSampler`` (``nodes.common_ksampler``),
  ``VAEDecode``, the new frames appended to one IMAGE batch; then ``CreateVideo`` (with the
  audio) and ``SaveVideo``.

Figure: seconds per window (wall), median over ``--reps`` alternating pairs; the ratio is
core / ours (>= 1: ours at least as fast), target >= 1.0. With tiny models the window's
fixed costs dominate (wav2vec2 at full size, VAE, x264) where on real models the 14B DiT does,
so this row measures the loop's overhead, not model speed; ``bench/gpu.sh`` times full-size windows.

Usage: ``COMFYUI_DIR=/path/to/ComfyUI python bench/bench_infinitetalk_speed.py [--seconds 7] [--json]``
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from _comfy import comfy_dir, node
from _media import portrait as media_portrait
from _media import speech as media_speech
from _report import emit, median, row, skipped

REPO = Path(__file__).resolve().parents[1]
TARGET = 1.0
FPS, MOTION = 25, 9


def _inputs(seconds: float, size: int):
    """(AUDIO dict, IMAGE portrait, positive, negative, clip vision output) as the node gets them."""
    import cv2
    import numpy as np
    import torch

    import comfy.clip_vision
    import tiny_wan

    speech, _ = media_speech(seconds)  # 48 kHz: fixture speech, or a synthetic stand-in
    audio = {"waveform": torch.from_numpy(speech)[None], "sample_rate": 48000}
    image = cv2.resize(media_portrait()[0], (size, size), interpolation=cv2.INTER_AREA)
    portrait = torch.from_numpy(image.astype(np.float32) / 255.0)[None]
    gen = torch.Generator().manual_seed(0)
    positive = [[torch.randn(1, 24, tiny_wan.TEXT_DIM, generator=gen) * 0.1, {}]]
    negative = [[torch.zeros(1, 24, tiny_wan.TEXT_DIM), {}]]
    clip_vision = comfy.clip_vision.Output()
    clip_vision.penultimate_hidden_states = torch.randn(1, tiny_wan.CLIP_VISION_TOKENS, tiny_wan.CLIP_VISION_DIM,
                                                        generator=gen)
    return audio, portrait, positive, negative, clip_vision


def core_by_hand(models, inputs, windows, size: int, steps: int) -> None:
    """Core nodes chained by hand, one window after another, into a saved MP4."""
    import torch

    import nodes
    from comfy_extras.nodes_audio_encoder import AudioEncoderEncode
    from comfy_extras.nodes_video import CreateVideo, SaveVideo
    from comfy_extras.nodes_wan import WanInfiniteTalkToVideo

    model, patch, audio_encoder, vae = models
    audio, portrait, positive, negative, clip_vision = inputs
    features = AudioEncoderEncode.execute(audio_encoder, audio)[0]
    frames = None
    for w in windows:
        patched, pos, neg, latent, trim = WanInfiniteTalkToVideo.execute(
            {"mode": "single_speaker"}, model, patch, positive, negative, vae, size, size, w.length, features, MOTION,
            start_image=portrait, previous_frames=frames, audio_scale=1.0, clip_vision_output=clip_vision).result
        samples = nodes.common_ksampler(patched, w.index, steps, 1.0, "euler", "simple", pos, neg, latent)[0]
        decoded = nodes.VAEDecode().decode(vae, samples)[0]
        new = decoded[int(trim):int(trim) + w.keep]
        frames = new if frames is None else torch.cat([frames, new])
    video = CreateVideo.execute(frames, float(FPS), audio).result[0]
    node(SaveVideo).execute(video, "bench/infinitetalk_core", "mp4")


def ours(models, inputs, size: int, steps: int, window: int) -> None:
    from myspinbot.nodes.infinitetalk import InfiniteTalk

    model, patch, audio_encoder, vae = models
    audio, portrait, positive, negative, clip_vision = inputs
    InfiniteTalk.execute(model, patch, vae, positive, negative, portrait, audio, audio_encoder, steps, 1.0, 1.0, "euler",
                         "simple", 0, size, size, FPS, window, MOTION, 1.0, clip_vision_output=clip_vision,
                         color_match="off")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seconds", type=float, default=3.0, help="speech length (3 s = 75 frames = 3 windows of 33)")
    p.add_argument("--size", type=int, default=16, help="frame side, a multiple of 16")
    p.add_argument("--window", type=int, default=33, help="frames per window (4k + 1)")
    p.add_argument("--steps", type=int, default=2)
    p.add_argument("--reps", type=int, default=2)
    p.add_argument("--json", action="store_true", help="end with a BENCH_ROWS line for run_all.py")
    a = p.parse_args(argv)
    stage = f"InfiniteTalk windows (tiny Wan, {a.window} frames {a.size}², {a.steps} steps)"
    if comfy_dir() is None:
        print("skipped: COMFYUI_DIR unset")
        if a.json:
            emit([skipped(stage, "COMFYUI_DIR unset", f">= {TARGET}")])
        return 0
    sys.path[:0] = [str(REPO / "tests" / "tier2"), str(REPO / "custom_nodes")]
    import torch

    import tiny_wan
    from _comfy import import_comfy
    from myspinbot.animate.long_audio import frames_for_audio, plan_windows

    with tempfile.TemporaryDirectory(prefix="bench_infinitetalk_") as tmp:
        scratch = Path(tmp)
        tiny_wan.ensure_comfy_on_path()
        import_comfy(scratch)
        tiny_wan.build_tiny_models(scratch / "models")
        models = tiny_wan.load_with_core(scratch / "models")
        import_comfy(scratch)  # load_with_core points the temp folder into the models tree; back to scratch
        inputs = _inputs(a.seconds, a.size)
        windows = plan_windows(frames_for_audio(inputs[0]["waveform"].shape[-1], 48000, FPS),
                               a.window, MOTION)
        run = {"ours": lambda: ours(models, inputs, a.size, a.steps, a.window),
               "core": lambda: core_by_hand(models, inputs, windows, a.size, a.steps)}
        with torch.inference_mode():
            for fn in run.values():
                fn()  # warm-up
            per_window: dict[str, list[float]] = {"ours": [], "core": []}
            for r in range(a.reps):
                for name in (("ours", "core") if r % 2 == 0 else ("core", "ours")):
                    t0 = time.perf_counter()
                    run[name]()
                    per_window[name].append((time.perf_counter() - t0) / len(windows))
                print(f"rep {r + 1}: s/window ours {per_window['ours'][-1]:.2f}, core by hand {per_window['core'][-1]:.2f}",
                      flush=True)
    ratio = median([c / o for o, c in zip(per_window["ours"], per_window["core"])])
    ok = ratio >= TARGET
    print(f"{len(windows)} windows ({', '.join(str(w.length) for w in windows)} frames): ours "
          f"{median(per_window['ours']):.2f} s/window, core {median(per_window['core']):.2f} s/window, ratio core/ours "
          f"{ratio:.3f} (target >= {TARGET}) -> {'PASS' if ok else 'FAIL'}")
    if a.json:
        emit([row(stage, f"{median(per_window['ours']):.2f} s/window",
                  f"{median(per_window['core']):.2f} s/window (core nodes by hand)", ratio, f">= {TARGET}", ok=ok,
                  note=f"{len(windows)} windows of {a.seconds:g} s speech; ratio = core time / our time")])
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
