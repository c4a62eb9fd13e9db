"""The audio-video offset search and the lip-sync scores of SyncNet embeddings.

As ``calc_pdist`` and ``evaluate`` in ``SyncNetInstance.py`` of joonson/syncnet_python
(Chung & Zisserman, ACCV 2016 workshops), and the LSE metrics of Wav2Lip's evaluation
(``evaluation/scores_LSE`` of Rudrabha/Wav2Lip, Prajwal et al., ACM MM 2020), which reuse it:

* ``d[i, j]``: Euclidean distance (``torch.nn.functional.pairwise_distance``, eps 1e-6)
  between video window ``i`` and audio window ``i + j - vshift``, for ``j = 0 .. 2 vshift``;
  audio windows outside the clip are zero vectors (the authors' zero padding).
* mean curve ``m[j] = mean_i d[i, j]``; ``j* = argmin m``.
* ``offset = vshift - j*`` (frames at 25 fps). A positive offset means the sound of video
  window ``i`` is found ``offset`` windows *earlier* in the audio (audio ahead of video);
  negative: the audio lags.
* LSE-D = ``m[j*]``: the per-window distance at the best offset, averaged over windows
  (lower is better); LSE-C = ``median(m) - m[j*]``: how far the best offset stands out from
  the typical one (higher is better).
* framewise confidence ``median(m) - d[i, j*]``, median-filtered over 9 windows (as the
  authors print it).

Imports no ComfyUI module.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..errors import InvalidInputError

VSHIFT = 15  # offsets searched: -15 .. +15 frames (the authors' default)
PAIRWISE_EPS = 1e-6  # pairwise_distance's default


@dataclass(frozen=True)
class SyncStats:
    """The scores of one clip.

    Attributes:
        offset: best audio-video offset, frames (see the module doc for its sign).
        lse_d: mean distance at the best offset (LSE-D). lse_c: confidence (LSE-C).
        vshift: offsets searched on each side.
        mean_dists: float ``[2 vshift + 1]``, ``m[j]`` for offsets ``vshift - j``.
        window_dists: float ``[N, 2 vshift + 1]``, ``d[i, j]``.
        best_dists: float ``[N]``, ``d[i, j*]``.
        framewise_conf: float ``[N]``, median-filtered ``median(m) - d[i, j*]``.
    """

    offset: int
    lse_d: float
    lse_c: float
    vshift: int
    mean_dists: np.ndarray
    window_dists: np.ndarray
    best_dists: np.ndarray
    framewise_conf: np.ndarray

    @property
    def windows(self) -> int:
        """Number of 5-frame windows scored."""
        return int(self.window_dists.shape[0])


def offset_distances(video: torch.Tensor, audio: torch.Tensor, vshift: int = VSHIFT) -> torch.Tensor:
    """``d[i, j]`` (see the module doc) for ``N`` video and ``N`` audio embeddings.

    Args:
        video, audio: float ``[N, D]`` embeddings of the same windows (CPU or GPU).
        vshift: offsets searched on each side (>= 0).

    Returns:
        float ``[N, 2 vshift + 1]`` on the inputs' device.

    Raises:
        InvalidInputError: shapes differ, are not 2-D, are empty, or ``vshift < 0``.
    """
    if video.ndim != 2 or video.shape != audio.shape or video.shape[0] == 0:
        raise InvalidInputError(f"video and audio embeddings must both be [N, D], got "
                                f"{list(video.shape)} and {list(audio.shape)}")
    if vshift < 0:
        raise InvalidInputError(f"vshift must be >= 0, got {vshift}")
    n = video.shape[0]
    padded = torch.nn.functional.pad(audio, (0, 0, vshift, vshift))
    columns = [torch.nn.functional.pairwise_distance(video, padded[j:j + n], eps=PAIRWISE_EPS)
               for j in range(2 * vshift + 1)]
    return torch.stack(columns, dim=1)


def _medfilt(x: np.ndarray, kernel: int) -> np.ndarray:
    """scipy.signal.medfilt: a running median with zeros beyond both ends."""
    half = kernel // 2
    padded = np.pad(x, half)
    return np.median(np.lib.stride_tricks.sliding_window_view(padded, kernel), axis=1)


def sync_stats(video: torch.Tensor, audio: torch.Tensor, vshift: int = VSHIFT, conf_filter: int = 9) -> SyncStats:
    """Offset, LSE-D, LSE-C and the per-window curves of a clip's embeddings.

    Args:
        video, audio: float ``[N, D]`` embeddings of the same ``N`` windows.
        vshift: offsets searched on each side. conf_filter: odd median-filter length for
            ``framewise_conf``.

    Raises:
        InvalidInputError: see :func:`offset_distances`.
    """
    d = offset_distances(video.float(), audio.float(), vshift).cpu()
    mean = d.mean(dim=0)
    low, index = torch.min(mean, 0)  # as the authors pick it (first of equal minima)
    best, minval = int(index), float(low)
    median = float(torch.median(mean))  # 2 vshift + 1 values: the middle one
    best_dists = d[:, best].numpy()
    return SyncStats(
        offset=vshift - best, lse_d=minval, lse_c=median - minval, vshift=vshift,
        mean_dists=mean.numpy(), window_dists=d.numpy(), best_dists=best_dists,
        framewise_conf=_medfilt(median - best_dists.astype(np.float64), conf_filter),
    )


def per_second(values: np.ndarray, fps: float = 25.0) -> np.ndarray:
    """Means of per-window ``values`` over each second of the clip (window ``i`` starts at
    frame ``i``; the last second may be partial), float ``[ceil(N / fps)]``."""
    values = np.asarray(values, dtype=np.float64)
    if values.ndim != 1 or values.size == 0:
        raise InvalidInputError(f"per_second needs a non-empty 1-D curve, got {list(values.shape)}")
    seconds = (np.arange(values.size) / float(fps)).astype(int)
    sums = np.bincount(seconds, weights=values)
    return sums / np.bincount(seconds)
