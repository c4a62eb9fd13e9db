"""Tier 2: "MySpinBot InfiniteTalk" on ComfyUI's real modules, with tiny random models, on CPU.

Models (``tiny_wan.py``, built once per module into a scratch models tree and loaded with
core's own loader nodes): a Wan2.1 I2V DiT of dim 160 / 1 head / 2 blocks (160, not 128: core's
InfiniteTalk patch hard-codes 40 heads, see ``test_core_patch_needs_dim_divisible_by_40``), a
matching InfiniteTalk patch, a random full-size wav2vec2-base, and a Wan2.1 VAE of base width
4. Speech: the real fixture recordings ``speech_front_left.wav`` + 0.25 s silence +
``speech_front_right.wav`` + 0.4 s silence, repeated and cut to 12 s (36 s for the memory
comparison); portrait: ``portrait_astronaut.png``. Text conditioning: random / zero tensors of
umt5-xxl's width (no text encoder); CLIP vision: a random penultimate hidden state.

Each job runs in a fresh Python process (``tiny_wan.py run``) that imports ComfyUI from
``COMFYUI_DIR`` in CPU mode, so memory is measured per job and this pytest process never imports
ComfyUI. 25 fps, 1 sampling step, 32x32 (16x16 for the memory comparison) to keep CPU time low.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from myspinbot.video import iter_video_frames, load_audio, probe_media

pytestmark = [pytest.mark.tier2, pytest.mark.slow]

TINY = Path(__file__).resolve().parent / "tiny_wan.py"
FPS = 25


def _env(threads: int | None = None) -> dict:
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    if threads:
        env.update(OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    return env


def _tiny(*args, timeout: float = 600, threads: int | None = None) -> dict | str:
    proc = subprocess.run([sys.executable, str(TINY), *map(str, args)], capture_output=True, text=True, timeout=timeout,
                          env=_env(threads))
    assert proc.returncode == 0, f"tiny_wan.py {args} failed:\n{proc.stderr[-6000:]}"
    last = proc.stdout.strip().splitlines()[-1]
    return json.loads(last) if last.startswith("{") else last


def _start(*args, threads: int | None = None) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, str(TINY), *map(str, args)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=_env(threads))


def _finish(proc: subprocess.Popen, timeout: float = 900) -> dict:
    out, err = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, err[-6000:]
    return json.loads(out.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def models_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("tiny_wan_models")
    _tiny("build", root, timeout=300)
    return root


@pytest.fixture(scope="module")
def speech_12s():
    sys.path.insert(0, str(TINY.parent))
    from tiny_wan import SPEECH_RATE, fixture_speech

    return fixture_speech(12.0), SPEECH_RATE


@pytest.fixture(scope="module")
def job_12s(models_root) -> dict:
    """12 s of speech at 32x32, 1 step, models unloaded when done."""
    return _tiny("run", models_root, "--seconds", 12, "--size", 32, timeout=900)


def test_tiny_models_load_through_core_loaders(models_root):
    info = _tiny("check", models_root)
    # core's model detection: Wan2.1 image-to-video with our dims
    assert info["model_config"] == "WAN21_I2V" and info["image_to_video"] is True
    assert (info["dim"], info["num_heads"], info["num_layers"], info["in_dim"]) == (160, 1, 2, 36)
    assert info["has_img_emb"] is True
    # ModelPatchLoader recognised an InfiniteTalk (MultiTalk) patch of the same width
    assert info["patch_class"] == "MultiTalkModelPatch" and info["patch_blocks"] == 40 and info["patch_dim"] == 160
    # AudioEncoderLoader: wav2vec2-base, full size
    assert info["audio_encoder_class"] == "Wav2Vec2Model"
    assert (info["audio_encoder_layers"], info["audio_encoder_dim"]) == (12, 768)
    # VAE detection: the Wan2.1 video VAE, width read from the weights
    assert info["vae_class"] == "comfy.ldm.wan.vae.WanVAE" and info["vae_dim"] == 4 and info["vae_latent_channels"] == 16
    assert not [w for w in info["loader_warnings"] if "missing" in w or "unexpected" in w], info["loader_warnings"]


def test_core_patch_needs_dim_divisible_by_40():
    """Why the tiny DiT is 160 wide: core's audio cross-attention has 40 heads whatever the width."""
    code = r"""
import sys, os, json, torch
sys.path.insert(0, os.environ["COMFYUI_DIR"])
from comfy.cli_args import args; args.cpu = True
import comfy.ops
from comfy.ldm.wan.model_multitalk import WanMultiTalkAttentionBlock
out = {}
for dim in (128, 160):
    block = WanMultiTalkAttentionBlock(dim, 32, operations=comfy.ops.manual_cast)
    x, tokens = torch.randn(1, 2 * 4, dim), torch.randn(2, 32, 32)
    try:
        y = block.audio_cross_attn(block.norm_x(x), tokens, shape=(2, 2, 2))
        out[dim] = list(y.shape)
    except RuntimeError as exc:
        out[dim] = "RuntimeError: " + str(exc).splitlines()[0]
print(json.dumps(out))
"""
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, env=_env())
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["128"].startswith("RuntimeError") and "invalid" in out["128"], out
    assert out["160"] == [1, 8, 160], out


def test_window_audio_lines_up_with_whole_audio_encoding(models_root):
    """Each window's features sit on the right frames (no offset drift from window to window)."""
    result = _tiny("align", models_root, "--seconds", 12)
    assert result["windows"] == 5 and len(result["rows"]) >= 4
    for row in result["rows"]:
        # wav2vec2's first layer group-normalises over what it is given, so chunk != whole
        # exactly; a one-frame shift is an order of magnitude further away.
        assert row["layer0_rel_err"] < 0.1, row
        assert row["layer0_rel_err"] < 0.1 * row["layer0_rel_err_vs_next_frame"], row
        assert row["last_layer_rel_err"] < 0.3, row


def test_12s_speech_runs_several_windows_into_one_mp4_as_long_as_the_audio(job_12s, speech_12s):
    job = job_12s
    assert "error" not in job, job
    speech, rate = speech_12s
    seconds = speech.shape[-1] / rate
    total = math.ceil(seconds * FPS)  # 300
    # 3+ windows chained (81 frames, 9 motion frames): 81 + 3 x 72 + a 13-frame tail of which 3 are kept
    assert len(job["windows_done"]) >= 3
    assert len(job["windows_done"]) == 5 and job["info"].startswith("5 windows"), job["info"]
    assert "window 5/5 done (frames 297-299, 3 new)" in job["windows_done"][-1]
    # progress: per sampling step and per window, monotonic, ending at windows x steps
    values = [v for v, _ in job["progress_updates"]]
    assert values == sorted(values) and job["progress_updates"][-1] == [5, 5]
    # the MP4: H.264 + AAC, exactly ceil(12 s x 25) frames, video and audio as long as the speech
    path = Path(job["video"])
    info = probe_media(path)
    assert info["video_streams"] == 1 and info["audio_streams"] == 1, info
    assert info["video"]["codec"] == "h264" and (info["video"]["width"], info["video"]["height"]) == (32, 32)
    assert info["video"]["frame_count"] == total
    assert abs(info["video"]["duration_s"] - seconds) <= 1.0 / FPS, info
    assert abs(info["audio"]["duration_s"] - seconds) <= 1.0 / FPS, info
    frames = list(iter_video_frames(path))
    assert len(frames) == total and frames[0].shape == (32, 32, 3)
    # the audio is the input speech, whole: same length (AAC adds < 1 frame of padding), same waveform
    track, track_rate = load_audio(path)
    assert track_rate == rate and abs(track.shape[-1] - speech.shape[-1]) <= rate // FPS
    n = min(track.shape[-1], speech.shape[-1])
    a, b = track.mean(axis=0)[:n], speech.mean(axis=0)[:n]
    best = max(float(np.corrcoef(a[max(0, s):n + min(0, s)], b[max(0, -s):n - max(0, s)])[0, 1]) for s in range(-2048, 2049, 32))
    assert best > 0.9, f"decoded audio does not match the input speech (r = {best:.3f})"
    # energy in the last second (the speech runs to the end) is there: nothing cut off
    tail = slice(n - rate, n)
    assert np.sqrt(np.mean(a[tail] ** 2)) > 0.5 * np.sqrt(np.mean(b[tail] ** 2))
    # last frames for chaining; models unloaded as asked; no stray partial files
    assert job["last_frames_shape"] == [9, 32, 32, 3] and 0.0 <= job["last_frames_range"][0] <= job["last_frames_range"][1] <= 1.0
    assert job["still_loaded"] == [] and job["leftover_mp4"] == []


def test_peak_memory_is_flat_in_clip_length(models_root):
    """12 s vs 36 s of speech (5 vs 13 windows), each in a fresh process (run side by side,
    one thread each): the growth of resident memory during the node differs by < 25 %, and
    memory does not climb from window to window."""
    procs = {s: _start("run", models_root, "--seconds", s, "--size", 16, threads=1) for s in (12, 36)}
    jobs = {s: _finish(p) for s, p in procs.items()}
    growth = {}
    for s, job in jobs.items():
        assert "error" not in job, job
        growth[s] = max(job["rss_peak"], job["maxrss_after"]) - job["rss_before"]
    assert len(jobs[12]["windows_done"]) == 5 and len(jobs[36]["windows_done"]) == 13
    ratio = growth[36] / growth[12]
    print(f"peak RSS growth: 12 s {growth[12] / 2**20:.1f} MiB, 36 s {growth[36] / 2**20:.1f} MiB, ratio {ratio:.3f}; "
          f"total peak 12 s {jobs[12]['rss_peak'] / 2**20:.0f} MiB, 36 s {jobs[36]['rss_peak'] / 2**20:.0f} MiB")
    assert 1 / 1.25 < ratio < 1.25, (growth, ratio)
    # window by window: RSS stays level over the middle windows (the first two warm the
    # allocator up; the last two, with shorter audio chunks and a short tail window, allocate
    # other sizes once). The level of the last three middle windows is within 32 MiB of the
    # first three: a leak of a window's audio features (~7 MiB) would add ~42 MiB over those six
    # windows; the allocator's own drift between otherwise identical runs has reached 25 MiB.
    per_window = np.array(jobs[36]["window_rss"], dtype=np.float64) / 2**20
    assert len(per_window) == 13
    middle = per_window[2:-2]
    assert np.median(middle[-3:]) - np.median(middle[:3]) < 32, per_window.round(1).tolist()


def test_interrupt_between_steps_stops_cleanly(models_root):
    job = _tiny("run", models_root, "--seconds", 4, "--size", 16, "--steps", 2, "--interrupt-after-updates", 1)
    assert job["error"] == "InterruptProcessingException", job
    assert job["windows_done"] == [] and len(job["progress_updates"]) == 1
    assert job["leftover_mp4"] == []  # the partial MP4 was removed


@pytest.mark.parametrize("cfg, audio_cfg", [(3.0, 1.0), (2.0, 3.0)])
def test_text_and_audio_guidance_run(models_root, cfg, audio_cfg):
    """cfg > 1 batches cond and uncond (core's patch alone takes batch 1); audio_cfg > 1 adds
    the no-audio pass through core's Guider_DualCFG."""
    job = _tiny("run", models_root, "--seconds", 4, "--size", 16, "--cfg", cfg, "--audio-cfg", audio_cfg)
    assert "error" not in job, job
    assert len(job["windows_done"]) == 2
    assert probe_media(job["video"])["video"]["frame_count"] == 100


def test_audio_patch_wrapper_runs_core_patch_per_item_and_drops_audio_for_the_no_audio_cond():
    code = r"""
import sys, os, json, torch
sys.path.insert(0, os.environ["COMFYUI_DIR"]); sys.path.insert(0, sys.argv[1])
from comfy.cli_args import args; args.cpu = True
from myspinbot.nodes.infinitetalk_sampling import PerItemAudioPatch
seen = []
class Inner:
    def __call__(self, kw):
        seen.append(kw["x"].shape[0])
        return kw["x"] + 1
    def models(self):
        return ["patch"]
x = torch.zeros(3, 4, 2)
w = PerItemAudioPatch(Inner(), no_audio=(0,))
y = w({"x": x, "transformer_options": {"cond_or_uncond": [0, 1, 2]}})
plain = PerItemAudioPatch(Inner())({"x": torch.zeros(1, 4, 2), "transformer_options": {"cond_or_uncond": [0]}})
print(json.dumps({"rows": y[:, 0, 0].tolist(), "seen": seen, "models": w.models(), "plain": plain.flatten()[0].item()}))
"""
    repo = Path(__file__).resolve().parents[2] / "custom_nodes"
    proc = subprocess.run([sys.executable, "-c", code, str(repo)], capture_output=True, text=True, timeout=300, env=_env())
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["rows"] == [0.0, 1.0, 1.0]  # cond index 0 (the no-audio pass) untouched
    assert out["seen"] == [1, 1, 1] and out["plain"] == 1.0  # core's patch only ever sees batch 1
    assert out["models"] == ["patch"]  # the patch model still gets loaded with the diffusion model
