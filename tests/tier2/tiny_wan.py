"""Builder of tiny random checkpoints for the InfiniteTalk stack (tier 2 and the bench).

Writes safetensors files into a ComfyUI-style models tree, one file per folder that core's
loaders read:

=====================  ==========================================  =====================================
folder                 file                                        what (shapes)
=====================  ==========================================  =====================================
``diffusion_models/``  ``tiny_wan21_i2v.safetensors``              Wan2.1 I2V DiT: dim 160, 1 head
                                                                   (head dim 160), 2 blocks, ffn 320,
                                                                   in_dim 36 (16 noise + 4 mask + 16
                                                                   image latent), out_dim 16, text dim
                                                                   4096, CLIP-vision ``img_emb``
                                                                   (1280 -> 160). ~3.5 M params.
``model_patches/``     ``tiny_infinitetalk.safetensors``           InfiniteTalk (MultiTalk) patch:
                                                                   ``audio_proj`` (12 x 768 wav2vec2
                                                                   layers in, intermediate 32, 32
                                                                   tokens of 32) + 40 audio
                                                                   cross-attention blocks of dim 160.
                                                                   ~6.4 M params.
``audio_encoders/``    ``random_wav2vec2_base.safetensors``        wav2vec2-base at full size (768, 12
                                                                   layers, 12 heads), random weights
                                                                   from ``transformers``, fp16 (~190 MB).
``vae/``               ``tiny_wan21_vae.safetensors``              Wan2.1 video VAE layout with base
                                                                   width 4 instead of 96 (z 16, x8
                                                                   space, x4 time; core reads the width
                                                                   from ``decoder.head.0.gamma``).
                                                                   ~0.24 M params.
=====================  ==========================================  =====================================

Why dim 160 and not 128: core's detection sets ``num_heads = dim // 128`` (so dim >= 128), and
core's InfiniteTalk patch hard-codes 40 heads in every audio cross-attention block
(``WanMultiTalkAttentionBlock``), whose ``view(..., 40, dim // 40)`` needs ``dim % 40 == 0``;
the patch's ``norm_x`` runs on the DiT's hidden states, so the patch dim is the DiT dim. The
smallest dim that both accept is 160. The patch also always has 40 blocks (core builds
``num_layers=40`` and loads strictly), although a 2-block DiT only calls blocks 0 and 1.

The layouts (key names and shapes) come from core's own module classes, built on the
``meta`` device (so nothing is allocated), plus ``transformers``' ``Wav2Vec2Model`` for the
audio encoder; the values are ours: seeded normal weights scaled by fan-in, unit norm gains,
zero biases. ComfyUI must be importable (``COMFYUI_DIR`` on ``sys.path``) for the DiT, patch
and VAE layouts.

It also drives the node on them in the current (fresh) process - ``run_node``,
``describe_models``, ``check_alignment`` - for the tier-2 tests and the memory bench.

Usage::

    paths = build_tiny_models(models_root)   # dict: kind -> Path
    python tests/tier2/tiny_wan.py build|check|align|run MODELS_ROOT [...]
"""

from __future__ import annotations

import math
import os
import sys
from pathlib import Path

import torch
from safetensors.torch import save_file

WAN_DIM = 160
WAN_FFN = 320
WAN_LAYERS = 2
WAN_IN_DIM = 36
TEXT_DIM = 4096
CLIP_VISION_DIM = 1280
CLIP_VISION_TOKENS = 257
PATCH_INTERMEDIATE = 32
PATCH_TOKEN_DIM = 32
VAE_DIM = 4

FILES = {
    "diffusion_model": ("diffusion_models", "tiny_wan21_i2v.safetensors"),
    "model_patch": ("model_patches", "tiny_infinitetalk.safetensors"),
    "audio_encoder": ("audio_encoders", "random_wav2vec2_base.safetensors"),
    "vae": ("vae", "tiny_wan21_vae.safetensors"),
}


def ensure_comfy_on_path() -> Path:
    """Put ``$COMFYUI_DIR`` first on ``sys.path`` (in CPU mode) and return it."""
    root = os.environ.get("COMFYUI_DIR")
    if not root:
        raise RuntimeError("COMFYUI_DIR is not set: the tiny models take their layouts from ComfyUI's classes")
    if root not in sys.path:
        sys.path.insert(0, root)
    from comfy.cli_args import args

    args.cpu = True
    return Path(root)


def _random_state_dict(shapes: dict[str, torch.Size], seed: int, dtype=torch.float32) -> dict[str, torch.Tensor]:
    """Seeded random tensors for ``{key: shape}``: gains 1, biases 0, weights N(0, 1/fan_in)."""
    gen = torch.Generator().manual_seed(seed)
    out: dict[str, torch.Tensor] = {}
    for key in sorted(shapes):
        shape = tuple(shapes[key])
        leaf = key.rsplit(".", 1)[-1]
        is_norm = leaf == "gamma" or (leaf == "weight" and len(shape) == 1)  # LayerNorm / RMSNorm gains
        if leaf in ("bias", "beta"):
            t = torch.zeros(shape)
        elif is_norm:
            t = torch.ones(shape)
        elif "modulation" in key:
            t = torch.randn(shape, generator=gen) * 0.02
        else:
            fan_in = math.prod(shape[1:]) if len(shape) > 1 else shape[0]
            t = torch.randn(shape, generator=gen) / math.sqrt(max(1, fan_in))
        out[key] = t.to(dtype).contiguous()
    return out


def _shapes(module: torch.nn.Module) -> dict[str, torch.Size]:
    return {k: v.shape for k, v in module.state_dict().items()}


def wan_i2v_shapes() -> dict[str, torch.Size]:
    """Key -> shape of a Wan2.1 I2V DiT with the tiny dims (core's ``WanModel`` on ``meta``)."""
    ensure_comfy_on_path()
    import comfy.ldm.wan.model
    import comfy.ops

    with torch.device("meta"):
        model = comfy.ldm.wan.model.WanModel(
            model_type="i2v", patch_size=(1, 2, 2), in_dim=WAN_IN_DIM, dim=WAN_DIM, ffn_dim=WAN_FFN,
            freq_dim=256, text_dim=TEXT_DIM, out_dim=16, num_heads=max(1, WAN_DIM // 128), num_layers=WAN_LAYERS,
            qk_norm=True, cross_attn_norm=True, eps=1e-6, operations=comfy.ops.disable_weight_init)
    return _shapes(model)


def infinitetalk_patch_shapes() -> dict[str, torch.Size]:
    """Key -> shape of an InfiniteTalk patch for the tiny DiT (core's ``MultiTalkModelPatch``)."""
    ensure_comfy_on_path()
    import comfy.ops
    from comfy_extras.nodes_model_patch import MultiTalkModelPatch

    with torch.device("meta"):
        patch = MultiTalkModelPatch(audio_window=5, intermediate_dim=PATCH_INTERMEDIATE, in_dim=WAN_DIM,
                                    out_dim=PATCH_TOKEN_DIM, context_tokens=32, vae_scale=4,
                                    operations=comfy.ops.disable_weight_init)
    return _shapes(patch)


def wan_vae_shapes() -> dict[str, torch.Size]:
    """Key -> shape of a Wan2.1 VAE with base width ``VAE_DIM`` (core's ``WanVAE``)."""
    ensure_comfy_on_path()
    import comfy.ldm.wan.vae

    with torch.device("meta"):
        vae = comfy.ldm.wan.vae.WanVAE(dim=VAE_DIM, z_dim=16, dim_mult=[1, 2, 4, 4], num_res_blocks=2, attn_scales=[],
                                       temperal_downsample=[False, True, True], image_channels=3,
                                       conv_out_channels=3, dropout=0.0)
    return _shapes(vae)


def wav2vec2_base_state_dict(seed: int = 3) -> dict[str, torch.Tensor]:
    """A randomly initialised wav2vec2-base (``transformers`` default config), fp16."""
    from transformers import Wav2Vec2Config, Wav2Vec2Model

    torch.manual_seed(seed)
    config = Wav2Vec2Config()  # base: 768 wide, 12 layers, 12 heads, group-norm conv stack, post-LN
    model = Wav2Vec2Model(config).eval()
    return {k: v.detach().to(torch.float16).contiguous() for k, v in model.state_dict().items()}


def build_tiny_models(models_root: str | os.PathLike, *, seed: int = 0, overwrite: bool = False) -> dict[str, Path]:
    """Write the four checkpoints under ``models_root`` (skipping files that exist unless
    ``overwrite``); returns ``{"diffusion_model"|"model_patch"|"audio_encoder"|"vae": path}``."""
    root = Path(models_root)
    paths = {kind: root / folder / name for kind, (folder, name) in FILES.items()}
    builders = {
        "diffusion_model": lambda: _random_state_dict(wan_i2v_shapes(), seed + 1),
        "model_patch": lambda: _random_state_dict(infinitetalk_patch_shapes(), seed + 2),
        "audio_encoder": lambda: wav2vec2_base_state_dict(seed + 3),
        "vae": lambda: _random_state_dict(wan_vae_shapes(), seed + 4),
    }
    for kind, path in paths.items():
        if path.exists() and not overwrite:
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        save_file(builders[kind](), str(tmp), metadata={"format": "pt", "made_by": "myspinbot tests/tier2/tiny_wan.py (random weights)"})
        tmp.replace(path)
    return paths


# --------------------------------------------------------------------------- running the node
REPO = Path(__file__).resolve().parents[2]
FIXTURES = REPO.parent / "shared" / "fixtures"
SPEECH_RATE = 48000


def fixture_speech(seconds: float, fixtures_dir: Path = FIXTURES):
    """``float32 [1, n]`` speech at 48 kHz lasting exactly ``seconds``: the real recordings
    ``speech_front_left.wav`` + 0.25 s silence + ``speech_front_right.wav`` + 0.4 s silence,
    repeated and cut to length."""
    import numpy as np

    sys.path.insert(0, str(REPO / "custom_nodes"))
    from myspinbot.video import load_audio

    left, rate_l = load_audio(fixtures_dir / "speech_front_left.wav")
    right, rate_r = load_audio(fixtures_dir / "speech_front_right.wav")
    assert rate_l == rate_r == SPEECH_RATE, (rate_l, rate_r)
    pause = lambda s: np.zeros((1, int(s * SPEECH_RATE)), np.float32)  # noqa: E731
    unit = np.concatenate([left[:1], pause(0.25), right[:1], pause(0.4)], axis=1)
    n = int(round(seconds * SPEECH_RATE))
    reps = -(-n // unit.shape[1])
    return np.ascontiguousarray(np.tile(unit, (1, reps))[:, :n])


def _rss_bytes() -> int:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


class PeakRss:
    """Samples this process's resident set size every ``period_s`` in a thread."""

    def __init__(self, period_s: float = 0.005):
        import threading

        self.period_s = period_s
        self.peak = _rss_bytes()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        import time

        while not self._stop.is_set():
            self.peak = max(self.peak, _rss_bytes())
            time.sleep(self.period_s)

    def __enter__(self) -> "PeakRss":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, _rss_bytes())


def _register_models(models_root: Path, temp_dir: Path) -> None:
    import folder_paths

    for folder, _ in FILES.values():
        folder_paths.add_model_folder_path(folder, str(models_root / folder), is_default=True)
    temp_dir.mkdir(parents=True, exist_ok=True)
    folder_paths.set_temp_directory(str(temp_dir))


def load_with_core(models_root: str | os.PathLike):
    """Load the four files with core's loader nodes; returns (model, patch, audio_encoder, vae)."""
    ensure_comfy_on_path()
    import nodes
    from comfy_extras.nodes_audio_encoder import AudioEncoderLoader
    from comfy_extras.nodes_model_patch import ModelPatchLoader

    root = Path(models_root)
    _register_models(root, root / "_temp")
    model = nodes.UNETLoader().load_unet(FILES["diffusion_model"][1], "default")[0]
    patch = ModelPatchLoader().load_model_patch(FILES["model_patch"][1])[0]
    audio_encoder = AudioEncoderLoader.execute(FILES["audio_encoder"][1])[0]
    vae = nodes.VAELoader().load_vae(FILES["vae"][1])[0]
    return model, patch, audio_encoder, vae


def describe_models(models_root: str | os.PathLike) -> dict:
    """What core's loaders made of the files (for the loading test), with the warnings they logged."""
    import logging

    warnings: list[str] = []

    class _Collect(logging.Handler):
        def emit(self, record):
            if record.levelno >= logging.WARNING:
                warnings.append(record.getMessage())

    handler = _Collect()
    logging.getLogger().addHandler(handler)
    try:
        model, patch, audio_encoder, vae = load_with_core(models_root)
    finally:
        logging.getLogger().removeHandler(handler)
    dm = model.model.diffusion_model
    enc = audio_encoder.model
    return {
        "model_config": type(model.model.model_config).__name__,
        "model_class": type(model.model).__name__,
        "image_to_video": bool(getattr(model.model, "image_to_video", False)),
        "dim": dm.dim, "num_heads": dm.num_heads, "num_layers": len(dm.blocks), "in_dim": dm.in_dim,
        "has_img_emb": dm.img_emb is not None,
        "patch_class": type(patch.model).__name__,
        "patch_blocks": len(patch.model.blocks),
        "patch_dim": patch.model.blocks[0].audio_cross_attn.dim,
        "audio_encoder_class": type(enc).__name__,
        "audio_encoder_layers": len(enc.encoder.layers),
        "audio_encoder_dim": enc.encoder.layer_norm.normalized_shape[0],
        "vae_class": f"{type(vae.first_stage_model).__module__}.{type(vae.first_stage_model).__name__}",
        "vae_dim": vae.first_stage_model.dim,
        "vae_latent_channels": vae.latent_channels,
        "loader_warnings": warnings,
    }


def run_node(models_root: str | os.PathLike, seconds: float, *, width: int = 32, height: int = 32, steps: int = 1,
             cfg: float = 1.0, audio_cfg: float = 1.0, fps: int = 25, window_length: int = 81,
             motion_frames: int = 9, color_match: str = "lab", unload_models: bool = True,
             interrupt_after_updates: int | None = None, seed: int = 0) -> dict:
    """Load the tiny models with core's loaders and run "MySpinBot InfiniteTalk" on ``seconds``
    of fixture speech and the fixture portrait, in this process (meant to be a fresh one).

    Returns a JSON-able dict: the node's ``info``, the MP4 path, window log lines, progress
    updates, last-frames shape, timings, resident memory (before the node, its peak during the
    node and the kernel's ``ru_maxrss`` before/after), and which of the node's models are still
    loaded afterwards. With ``interrupt_after_updates=k`` ComfyUI's interrupt flag is raised at
    the k-th progress update and the dict reports the exception instead of outputs."""
    import gc
    import logging
    import resource
    import time

    import numpy as np

    ensure_comfy_on_path()
    sys.path.insert(0, str(REPO / "custom_nodes"))
    import comfy.clip_vision
    import comfy.model_management
    import comfy.utils
    from PIL import Image

    from myspinbot.nodes.infinitetalk import InfiniteTalk

    t_load = time.perf_counter()
    model, patch, audio_encoder, vae = load_with_core(models_root)
    load_s = time.perf_counter() - t_load
    speech = fixture_speech(seconds)
    audio = {"waveform": torch.from_numpy(speech)[None], "sample_rate": SPEECH_RATE}
    portrait = torch.from_numpy(np.asarray(Image.open(FIXTURES / "portrait_astronaut.png").convert("RGB"),
                                           dtype=np.float32) / 255.0)[None]
    gen = torch.Generator().manual_seed(seed)
    # Text conditioning of umt5-xxl's shape (no text encoder needed): a random prompt, zero negative.
    positive = [[torch.randn(1, 24, TEXT_DIM, generator=gen) * 0.1, {}]]
    negative = [[torch.zeros(1, 24, TEXT_DIM), {}]]
    clip_vision = comfy.clip_vision.Output()
    clip_vision.penultimate_hidden_states = torch.randn(1, CLIP_VISION_TOKENS, CLIP_VISION_DIM, generator=gen)

    windows_done: list[str] = []
    window_rss: list[int] = []

    class _Windows(logging.Handler):
        def emit(self, record):
            msg = record.getMessage()
            if "InfiniteTalk: window" in msg:
                windows_done.append(msg)
                window_rss.append(_rss_bytes())

    logging.getLogger("myspinbot").addHandler(_Windows())
    logging.getLogger("myspinbot").setLevel(logging.INFO)
    updates: list[tuple[int, int]] = []

    def hook(value, total, preview, node_id=None):
        updates.append((int(value), int(total)))
        if interrupt_after_updates is not None and len(updates) == interrupt_after_updates:
            comfy.model_management.interrupt_current_processing(True)

    comfy.utils.set_progress_bar_global_hook(hook)
    temp_dir = Path(models_root) / "_temp" / "myspinbot"
    before_files = set(temp_dir.glob("*.mp4")) if temp_dir.exists() else set()
    gc.collect()
    rss_before = _rss_bytes()
    maxrss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    t0 = time.perf_counter()
    result: dict = {"seconds": seconds, "audio_samples": int(speech.shape[-1]), "sample_rate": SPEECH_RATE,
                    "fps": fps, "width": width, "height": height, "load_s": round(load_s, 2)}
    try:
        with PeakRss() as peak, torch.inference_mode():
            out = InfiniteTalk.execute(model, patch, vae, positive, negative, portrait, audio, audio_encoder, steps, cfg,
                                       audio_cfg, "euler", "simple", seed, width, height, fps, window_length,
                                       motion_frames, 1.0, clip_vision_output=clip_vision, color_match=color_match,
                                       unload_models=unload_models)
        video, last_frames, info = out.result
        result.update(info=info, video=str(video.get_stream_source()), last_frames_shape=list(last_frames.shape),
                      last_frames_range=[float(last_frames.min()), float(last_frames.max())])
    except BaseException as exc:  # noqa: BLE001 - reported to the parent
        peak_value = max(_rss_bytes(), rss_before)
        result.update(error=type(exc).__name__, error_message=str(exc))
        peak = type("P", (), {"peak": peak_value})()
    finally:
        comfy.model_management.interrupt_current_processing(False)
    result.update(
        elapsed_s=round(time.perf_counter() - t0, 2),
        windows_done=windows_done,
        window_rss=window_rss,
        progress_updates=updates,
        rss_before=rss_before,
        rss_peak=peak.peak,
        maxrss_before=maxrss_before,
        maxrss_after=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
        leftover_mp4=[str(p) for p in set(temp_dir.glob("*.mp4")) - before_files - {Path(result.get("video", ""))}]
        if temp_dir.exists() else [],
        still_loaded=sorted({type(m.model.model).__name__ for m in comfy.model_management.current_loaded_models
                             if m.model is not None and m.model.model is not None}),
    )
    return result


def check_alignment(models_root: str | os.PathLike, seconds: float = 12.0, fps: int = 25) -> dict:
    """Do the node's per-window audio features line up with the whole-audio encoding?

    Encodes the whole fixture speech once with core's ``AudioEncoderEncode`` and, for every
    window the node plans, the window's chunk the way the node does; compares wav2vec2's
    layer-0 output (after the convolution stack, feature projection and positional convolution:
    local, so equal when aligned and away from chunk edges) at the 50-per-second feature of
    each video frame. Also reports how far the deepest layer (global attention: context
    dependent) is from the whole-audio one."""
    ensure_comfy_on_path()
    sys.path.insert(0, str(REPO / "custom_nodes"))
    import torchaudio
    from comfy_extras.nodes_audio_encoder import AudioEncoderEncode

    from myspinbot.animate.long_audio import (AUDIO_CONTEXT_FRAMES, audio_span, encoder_sample_rate,
                                              frames_for_audio, plan_windows)
    from myspinbot.nodes import infinitetalk_windows as windows_loop

    _, _, audio_encoder, _ = load_with_core(models_root)
    speech = fixture_speech(seconds)
    mono = torch.from_numpy(speech).mean(dim=0)
    enc_rate = encoder_sample_rate(fps)
    resampled = torchaudio.functional.resample(mono[None], SPEECH_RATE, enc_rate)[0].numpy()
    with torch.inference_mode():
        whole = AudioEncoderEncode.execute(audio_encoder, {"waveform": torch.from_numpy(resampled)[None, None],
                                                           "sample_rate": windows_loop.ENCODER_RATE})[0]
        whole_layers = whole["encoded_audio_all_layers"]
        total = frames_for_audio(speech.shape[-1], SPEECH_RATE, fps)
        windows = plan_windows(total, 81, 9)
        margin = max(1, int(windows_loop.ENCODER_MARGIN_S * fps))
        safe_end = total - int(1.5 * fps)  # away from the end of the audio (zeros follow it in the chunk)
        rows = []
        for w in windows:
            pre = AUDIO_CONTEXT_FRAMES if w.overlap else 0
            span = audio_span(w, pre=pre, margin_frames=margin, available=resampled.shape[0])
            feats = windows_loop.encode_window_audio(audio_encoder, resampled, span)["encoded_audio_all_layers"]
            frames = [k for k in range(span.frames) if span.first_frame + k < safe_end]
            if not frames:
                continue
            ours = [feats[i][0, [2 * k for k in frames]].float() for i in (0, len(feats) - 1)]
            ref = [whole_layers[i][0, [2 * (span.first_frame + k) for k in frames]].float() for i in (0, len(feats) - 1)]
            # a one-frame shift would be caught: compare with the neighbouring frame too
            shifted = whole_layers[0][0, [min(whole_layers[0].shape[1] - 1, 2 * (span.first_frame + k + 1)) for k in frames]].float()
            rel = lambda a, b: float((a - b).norm() / b.norm())  # noqa: E731
            rows.append({"window": w.index, "first_frame": span.first_frame, "frames_compared": len(frames),
                         "layer0_rel_err": rel(ours[0], ref[0]), "layer0_rel_err_vs_next_frame": rel(ours[0], shifted),
                         "last_layer_rel_err": rel(ours[1], ref[1])})
    return {"windows": len(windows), "whole_features": int(whole_layers[0].shape[1]), "rows": rows}


def _main(argv=None) -> int:
    import argparse
    import json

    parser = argparse.ArgumentParser(description="Tiny random InfiniteTalk checkpoints: build, check, run the node.")
    sub = parser.add_subparsers(dest="cmd", required=True)
    p_build = sub.add_parser("build", help="write the four checkpoints under MODELS_ROOT")
    p_build.add_argument("models_root")
    p_build.add_argument("--overwrite", action="store_true")
    p_check = sub.add_parser("check", help="load them with core's loaders and print what core detected (JSON)")
    p_check.add_argument("models_root")
    p_align = sub.add_parser("align", help="compare per-window audio features with the whole-audio encoding (JSON)")
    p_align.add_argument("models_root")
    p_align.add_argument("--seconds", type=float, default=12.0)
    p_run = sub.add_parser("run", help="run MySpinBot InfiniteTalk on fixture speech (JSON result on the last line)")
    p_run.add_argument("models_root")
    p_run.add_argument("--seconds", type=float, default=12.0)
    p_run.add_argument("--size", type=int, default=32)
    p_run.add_argument("--steps", type=int, default=1)
    p_run.add_argument("--cfg", type=float, default=1.0)
    p_run.add_argument("--audio-cfg", type=float, default=1.0)
    p_run.add_argument("--window", type=int, default=81)
    p_run.add_argument("--motion", type=int, default=9)
    p_run.add_argument("--color-match", default="lab")
    p_run.add_argument("--keep-loaded", action="store_true")
    p_run.add_argument("--interrupt-after-updates", type=int, default=None)
    a = parser.parse_args(argv)
    if a.cmd == "build":
        for kind, path in build_tiny_models(a.models_root, overwrite=a.overwrite).items():
            print(f"{kind}: {path} ({path.stat().st_size / 1e6:.1f} MB)")
    elif a.cmd == "align":
        print(json.dumps(check_alignment(a.models_root, a.seconds)))
    elif a.cmd == "check":
        print(json.dumps(describe_models(a.models_root)))
    else:
        print(json.dumps(run_node(a.models_root, a.seconds, width=a.size, height=a.size, steps=a.steps, cfg=a.cfg,
                                  audio_cfg=a.audio_cfg, window_length=a.window, motion_frames=a.motion,
                                  color_match=a.color_match, unload_models=not a.keep_loaded,
                                  interrupt_after_updates=a.interrupt_after_updates)))
    return 0


if __name__ == "__main__":
    sys.exit(_main())
