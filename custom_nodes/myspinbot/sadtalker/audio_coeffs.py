"""Audio -> per-frame 3DMM motion coefficients (SadTalker's "audio2coeff" stage).

Zhang et al., SadTalker (CVPR 2023), sections 3.1-3.2, as run by upstream
``src/generate_batch.py`` (``get_data``), ``src/audio2exp_models/audio2exp.py``
(``Audio2Exp.test``), ``src/audio2pose_models/audio2pose.py`` (``Audio2Pose.test``) and
``src/test_audio2coeff.py`` (``Audio2Coeff.generate``), at 25 frames per second:

* one 16-frame mel window per video frame (Wav2Lip's front end, shared with
  :mod:`myspinbot.lipsync.mel`), the window of frame ``i`` starting at mel frame
  ``int(80 (i - 2) / 25)``, indices clamped to the spectrogram;
* expression: ExpNet over chunks of 10 frames, from the source's 64 expression
  coefficients and an eye-blink ratio curve (random blinks);
* head pose: the PoseVAE decoder over 32-frame windows (the first frame is the source's
  pose), one latent draw per window, then Savitzky-Golay smoothing (13 frames, order 2).

Every random draw (blink times, pose latents) comes from the caller's ``seed``: the same
seed gives byte-identical coefficients. Imports no ComfyUI module.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..errors import InvalidInputError
from ..lipsync.mel import WAV2LIP_MEL, WINDOW_FRAMES
from .expnet import ExpNet
from .posevae import Audio2Pose

FPS = 25
SAMPLES_PER_FRAME = WAV2LIP_MEL.sample_rate // FPS  # 640 at 16 kHz
EXP_CHUNK = 10  # frames per ExpNet call (upstream)
BLINK = (0.5, 0.9, 1.0, 0.9, 0.5)  # eye-blink ratio over 5 frames (upstream)
SMOOTH_WINDOW, SMOOTH_ORDER = 13, 2  # Savitzky-Golay on the pose (upstream)


def frame_count(num_samples: int) -> int:
    """Video frames for ``num_samples`` of 16 kHz audio: whole 40 ms frames (upstream)."""
    return num_samples // SAMPLES_PER_FRAME


def sadtalker_mel_windows(mel: np.ndarray, num_frames: int) -> np.ndarray:
    """``[80, M]`` mel spectrogram -> ``[num_frames, 80, 16]`` windows, the frame's centred one.

    Frame ``i`` reads mel frames ``int(80 (i - 2) / 25) + 0..15``, each clamped to
    ``0..M-1`` (so the first frames repeat mel frame 0).
    """
    m = np.asarray(mel, dtype=np.float32)
    if m.ndim != 2 or m.shape[1] < 1:
        raise InvalidInputError(f"mel must be [n_mels, frames] with frames >= 1, got shape {m.shape}")
    steps = WAV2LIP_MEL.sample_rate / WAV2LIP_MEL.hop_length  # 80 mel frames per second
    starts = np.array([int(steps * ((i - 2) / float(FPS))) for i in range(num_frames)], dtype=np.int64)
    index = np.clip(starts[:, None] + np.arange(WINDOW_FRAMES)[None, :], 0, m.shape[1] - 1)
    return np.ascontiguousarray(m[:, index].transpose(1, 0, 2))


def blink_ratio(num_frames: int, rng: np.random.Generator) -> np.ndarray:
    """``[num_frames]`` float32 eye-blink ratio: 5-frame blinks at random gaps (upstream rules).

    No blink under 21 frames; each next blink starts ``10 .. min(T/2, 70) - 1`` frames after the
    previous one ends, while it fits before the last frame.
    """
    ratio = np.zeros(num_frames, dtype=np.float32)
    low, high = min(10, num_frames), min(num_frames // 2, 70)
    if num_frames <= 20 or high <= low:
        return ratio
    frame = 0
    while frame < num_frames:
        start = frame + int(rng.integers(low, high))
        if start + len(BLINK) > num_frames - 1:
            break
        ratio[start:start + len(BLINK)] = BLINK
        frame = start + len(BLINK)
    return ratio


@torch.no_grad()
def predict_expression(expnet: ExpNet, mels: torch.Tensor, ref_exp: torch.Tensor, ratio: torch.Tensor) -> torch.Tensor:
    """``[T, 64]`` expression coefficients, ExpNet run over chunks of 10 frames.

    Args:
        mels: ``[T, 80, 16]`` windows; ``ref_exp``: ``[64]`` the source's expression;
        ratio: ``[T]`` blink ratio. All on the network's device and dtype.
    """
    out = []
    for i in range(0, mels.shape[0], EXP_CHUNK):
        chunk = mels[i:i + EXP_CHUNK]
        n = chunk.shape[0]
        out.append(expnet(chunk[:, None], ref_exp.expand(1, n, -1), ratio[None, i:i + n])[0])
    return torch.cat(out, dim=0)


@torch.no_grad()
def predict_pose(audio2pose: Audio2Pose, mels: torch.Tensor, ref_pose: torch.Tensor, style: int,
                 generator: torch.Generator) -> torch.Tensor:
    """``[T, 6]`` head pose (3 angles + 3 translations), before smoothing.

    Frame 0 is ``ref_pose``; frames ``1..T-1`` are ``ref_pose`` plus the decoder's motion over
    32-frame windows of their mel windows, one latent ``z ~ N(0, I)`` per window drawn from
    ``generator`` (a CPU generator); a last partial window reuses the final 32 frames (padded in
    front by repeating its first frame when the clip is shorter) and keeps its tail.
    """
    decoder = audio2pose.netG.decoder
    seq, latent = decoder.config.seq_len, decoder.config.latent_size
    if not 0 <= style < decoder.config.num_classes:
        raise InvalidInputError(f"pose_style must be 0..{decoder.config.num_classes - 1}, got {style}")
    p = next(audio2pose.parameters())
    cls = torch.tensor([style], device=p.device)
    ref = ref_pose.reshape(1, -1)
    rest = mels[None, 1:, None]  # [1, T-1, 1, 80, 16]
    frames = rest.shape[1]
    motion = [torch.zeros(1, 1, ref.shape[1], dtype=ref.dtype, device=ref.device)]
    for i in range(frames // seq):
        z = torch.randn(1, latent, generator=generator).to(p)
        emb = audio2pose.encode_audio(rest[:, i * seq:(i + 1) * seq])
        motion.append(audio2pose.decode(z, cls, ref, emb))
    tail = frames % seq
    if tail:
        z = torch.randn(1, latent, generator=generator).to(p)
        emb = audio2pose.encode_audio(rest[:, -seq:])
        if emb.shape[1] < seq:
            emb = torch.cat([emb[:, :1].expand(1, seq - emb.shape[1], -1), emb], dim=1)
        motion.append(audio2pose.decode(z, cls, ref, emb)[:, -tail:])
    return (ref[:, None] + torch.cat(motion, dim=1))[0]


def savgol_smooth(x: np.ndarray, window: int = SMOOTH_WINDOW, order: int = SMOOTH_ORDER) -> np.ndarray:
    """Savitzky-Golay filter along axis 0 (``scipy.signal.savgol_filter``'s default ``interp`` mode).

    Interior samples: the least-squares polynomial of degree ``order`` over the centred
    ``window`` evaluated at its centre; the first and last ``window // 2`` samples: the
    polynomial fitted to the first / last ``window`` samples, evaluated there. A sequence
    shorter than ``window`` uses the largest odd window that fits (as upstream); none is
    smoothed when that window is not above ``order``.
    """
    x = np.asarray(x, dtype=np.float64)
    n = x.shape[0]
    if n < window:
        window = (n - 1) // 2 * 2 + 1
    if window <= order:
        return x.copy()
    half = window // 2
    t = np.arange(window, dtype=np.float64) - half
    vander = t[:, None] ** np.arange(order + 1)[None, :]  # [window, order+1]
    fit = np.linalg.pinv(vander)  # polynomial coefficients = fit @ samples
    out = np.empty_like(x)
    flat = x.reshape(n, -1)
    windows = np.lib.stride_tricks.sliding_window_view(flat, window, axis=0)  # [n-window+1, features, window]
    out[half:n - half] = (windows @ fit[0]).reshape((n - 2 * half,) + x.shape[1:])  # fit[0]: the value at t=0
    for block, rows, ts in ((flat[:window], slice(0, half), t[:half]), (flat[-window:], slice(n - half, n), t[-half:])):
        coeffs = fit @ block  # [order+1, features]
        out[rows] = ((ts[:, None] ** np.arange(order + 1)[None, :]) @ coeffs).reshape((half,) + x.shape[1:])
    return out


@dataclass(frozen=True)
class MotionResult:
    """``coeffs``: float32 ``[T, 70]`` (64 expression, 3 angles, 3 translations) per frame;
    ``blink``: ``[T]`` the blink ratio used."""

    coeffs: np.ndarray
    blink: np.ndarray


@torch.no_grad()
def audio_to_coeffs(expnet: ExpNet, audio2pose: Audio2Pose, mels: np.ndarray, source_coeffs: np.ndarray, *,
                    pose_style: int = 0, seed: int = 0, blink: bool = True) -> MotionResult:
    """Per-frame motion coefficients for the windows ``mels`` (``[T, 80, 16]``).

    Args:
        source_coeffs: ``[>= 70]`` the portrait's coefficients (expression 0:64, pose 64:70).
        pose_style: 0..45. seed: blink times and pose latents. blink: random blinks on.

    Returns:
        :class:`MotionResult`; the same inputs and seed give byte-identical ``coeffs``.
    """
    p = next(expnet.parameters())
    frames = mels.shape[0]
    if frames < 1:
        raise InvalidInputError("the audio is shorter than one video frame (40 ms)")
    rng = np.random.default_rng(seed)
    ratio = blink_ratio(frames, rng) if blink else np.zeros(frames, dtype=np.float32)
    gen = torch.Generator().manual_seed(int(rng.integers(0, 2 ** 63 - 1)))
    m = torch.from_numpy(np.ascontiguousarray(mels, dtype=np.float32)).to(p)
    src = torch.from_numpy(np.asarray(source_coeffs[:70], dtype=np.float32)).to(p)
    exp = predict_expression(expnet, m, src[:64], torch.from_numpy(ratio).to(p))
    pose = predict_pose(audio2pose, m, src[64:70], pose_style, gen)
    smoothed = savgol_smooth(pose.float().cpu().numpy()).astype(np.float32)
    coeffs = np.concatenate([exp.float().cpu().numpy(), smoothed], axis=1)
    return MotionResult(coeffs=coeffs, blink=ratio)
