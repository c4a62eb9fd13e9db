"""Scoring the lip sync of a video with SyncNet: offset, LSE-D, LSE-C and curves over time.

The evaluation of joonson/syncnet_python (``run_pipeline.py`` + ``SyncNetInstance.evaluate``)
as Wav2Lip's LSE metrics run it (Prajwal et al., ACM MM 2020, ``evaluation/scores_LSE``):
the video at 25 fps, a face crop per frame (:mod:`.syncnet_crops`), the audio as 16 kHz mono
int16 MFCCs (:mod:`.mfcc`); ``N = min(frames, floor(samples / 640)) - 5`` windows, window
``i`` = frames ``i .. i+4`` and MFCC frames ``4i .. 4i+19``; embeddings of both towers, then
the offset search of :mod:`.sync_stats` over +-15 frames.

Unlike the authors' scripts nothing is written to disk and memory stays flat in clip length:
the video is decoded twice (face boxes first, then crops, five at a time, straight into the
video tower); only the 1024-d embeddings are kept. A video at another rate is resampled to
25 fps by taking, for output frame ``k``, the source frame nearest to ``k / 25`` s (as
ffmpeg's ``-r 25`` does for a constant-rate source). Imports no ComfyUI module.
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from ..errors import InvalidInputError
from ..speech.audio_io import load_audio, resample, to_mono
from ..video.probe import probe_media
from ..video.reader import iter_video_frames
from .mfcc import SYNCNET_MFCC, mfcc
from .sync_stats import VSHIFT, SyncStats, per_second, sync_stats
from .syncnet_crops import CropSettings, crop_face, detect_box, face_track

FPS = 25.0  # the model's video rate
SAMPLES_PER_FRAME = 640  # 16 kHz / 25 fps
MFCC_PER_FRAME = 4  # 100 Hz / 25 fps
WINDOW = 5  # frames per window (0.2 s)
Progress = Callable[[int, int], None]
QUALITY_UI_KEY = "myspinbot_quality"  # the score node's UI output: a list of SyncScore.quality_block()


def skipped_quality_block(model: str | None, code: str, message: str) -> dict:
    """The block the score node reports instead of :meth:`SyncScore.quality_block` when it was
    told to skip a video it cannot score (no face, too short, model missing) rather than fail:
    ``{"metric": "syncnet", "model", "skipped": {"code", "message"}}``."""
    return {"metric": "syncnet", "model": model, "skipped": {"code": str(code), "message": str(message)}}


@dataclass(frozen=True)
class ScoreSettings:
    """Knobs of :func:`score_lipsync`.

    Attributes:
        vshift: offsets searched on each side, frames at 25 fps (authors: 15).
        batch_size: windows per tower call (authors: 20).
        detect_every: the face is detected on every n-th frame (25 fps) and interpolated in
            between (the authors detect on every frame; the track is median-filtered over 13
            frames anyway, and OpenCV's detector is the slow part on a CPU).
        crops: face crop settings.
    """

    vshift: int = VSHIFT
    batch_size: int = 20
    detect_every: int = 5
    crops: CropSettings = field(default_factory=CropSettings)

    def __post_init__(self) -> None:
        if int(self.vshift) < 0 or int(self.batch_size) < 1 or int(self.detect_every) < 1:
            raise InvalidInputError("vshift must be >= 0, batch_size and detect_every >= 1, got "
                                    f"{self.vshift}, {self.batch_size}, {self.detect_every}")


@dataclass(frozen=True)
class SyncScore:
    """What :func:`score_lipsync` measured.

    Attributes:
        stats: offset, LSE-D, LSE-C and per-window curves (:class:`.sync_stats.SyncStats`).
        frames: video frames at 25 fps; ``faceless_frames``: frames where the detector ran
            and found no face (their box was interpolated from the neighbours').
        source_fps: the video's own rate. audio_seconds, video_seconds: durations, seconds.
        conf_per_second, dist_per_second: float ``[seconds]``, the per-window confidence
            (``median(m) - d[i, j*]``) and distance (``d[i, j*]``) averaged per second.
    """

    stats: SyncStats
    frames: int
    faceless_frames: int
    source_fps: float
    audio_seconds: float
    video_seconds: float
    conf_per_second: np.ndarray
    dist_per_second: np.ndarray

    @property
    def offset(self) -> int:
        return self.stats.offset

    @property
    def lse_d(self) -> float:
        return self.stats.lse_d

    @property
    def lse_c(self) -> float:
        return self.stats.lse_c

    def quality_block(self, model: str | None = None) -> dict:
        """The JSON-able block the score node puts under :data:`QUALITY_UI_KEY` (for the job
        service): ``{"metric": "syncnet", "model", "offset_frames", "lse_d", "lse_c",
        "windows", "frames", "faceless_frames", "fps": 25.0, "conf_per_second",
        "dist_per_second"}`` (numbers rounded to 4 decimals)."""
        return {
            "metric": "syncnet", "model": model, "offset_frames": int(self.offset),
            "lse_d": round(float(self.lse_d), 4), "lse_c": round(float(self.lse_c), 4),
            "windows": self.stats.windows, "frames": self.frames, "faceless_frames": self.faceless_frames, "fps": FPS,
            "conf_per_second": [round(float(v), 4) for v in self.conf_per_second],
            "dist_per_second": [round(float(v), 4) for v in self.dist_per_second],
        }

    @property
    def summary(self) -> str:
        """One line for logs and node outputs."""
        return (f"offset {self.offset:+d} frames, LSE-D {self.lse_d:.3f}, LSE-C {self.lse_c:.3f} over "
                f"{self.stats.windows} windows ({self.frames} frames at 25 fps, {self.faceless_frames} without a face)")


def frames_at_25(path: str | os.PathLike, source_fps: float) -> Iterator[np.ndarray]:
    """The frames of ``path`` at 25 fps: output frame ``k`` is source frame ``round(k * fps / 25)``."""
    step = float(source_fps) / FPS
    k = 0
    for j, frame in enumerate(iter_video_frames(path)):
        while int(np.floor(k * step + 0.5)) == j:
            yield frame
            k += 1


def _device_dtype(model: torch.nn.Module) -> tuple[torch.device, torch.dtype]:
    first = next(iter(model.parameters()), None)
    return (first.device, first.dtype) if first is not None else (torch.device("cpu"), torch.float32)


def _audio_mfcc(path: Path) -> tuple[np.ndarray, int, float]:
    samples, rate = load_audio(path)
    speech = resample(to_mono(samples), rate, SYNCNET_MFCC.sample_rate)[0]
    return mfcc(speech).T, speech.shape[0], samples.shape[1] / rate  # [13, T], 16 kHz samples, seconds


def window_count(num_frames: int, num_samples: int) -> int:
    """Windows the authors score: ``min(frames, floor(samples / 640)) - 5`` (16 kHz samples,
    25 fps frames; their ``lastframe``). May be < 1 for clips under 0.24 s."""
    return min(int(num_frames), int(num_samples) // SAMPLES_PER_FRAME) - WINDOW


def _video_batches(crops: Iterable[np.ndarray], count: int, batch_size: int) -> Iterator[np.ndarray]:
    """Batches of ``[B, 3, 5, 224, 224]`` float32 windows of consecutive crops, ``count`` in all."""
    recent: deque[np.ndarray] = deque(maxlen=WINDOW)
    batch: list[np.ndarray] = []
    made = 0
    for crop in crops:
        if made >= count:
            break
        recent.append(crop)
        if len(recent) == WINDOW:
            batch.append(np.stack(recent).transpose(3, 0, 1, 2))  # [3, 5, H, W]
            made += 1
            if len(batch) == batch_size or made == count:
                yield np.stack(batch).astype(np.float32)
                batch = []
    if made < count:
        raise InvalidInputError(f"the video gave {made + WINDOW - 1} frames where {count + WINDOW - 1} were expected")


@torch.inference_mode()
def score_crops(model: torch.nn.Module, crops: Iterable[np.ndarray], cc: np.ndarray, count: int,
                settings: ScoreSettings = ScoreSettings(), on_batch: Callable[[int], None] | None = None) -> SyncStats:
    """The authors' ``evaluate`` on ready-made crops: embeddings of ``count`` windows, then the
    offset search.

    Args:
        model: SyncNet (``forward_video``, ``forward_audio``); inputs go to its device/dtype.
        crops: uint8 ``[224, 224, 3]`` BGR face crops at 25 fps (at least ``count + 4``).
        cc: float ``[13, T]`` MFCCs (:func:`.mfcc.mfcc` transposed), ``T >= 4 count + 16``.
        count: windows (see :func:`window_count`), >= 1.
        on_batch: called with the number of windows embedded so far, after each batch.

    Raises:
        InvalidInputError: ``count < 1``, too few crops or MFCC frames.
    """
    if count < 1 or cc.ndim != 2 or cc.shape[1] < MFCC_PER_FRAME * (count - 1) + 20:
        raise InvalidInputError(f"cannot score {count} window(s) with MFCCs of shape {list(cc.shape)}")
    device, dtype = _device_dtype(model)
    video_emb, done = [], 0
    for batch in _video_batches(crops, count, settings.batch_size):
        video_emb.append(model.forward_video(torch.from_numpy(batch).to(device, dtype)).float().cpu())
        done += batch.shape[0]
        if on_batch is not None:
            on_batch(done)
    windows = np.stack([cc[:, MFCC_PER_FRAME * i:MFCC_PER_FRAME * i + 20] for i in range(count)])[:, None]
    windows = windows.astype(np.float32)
    audio_emb = [model.forward_audio(torch.from_numpy(windows[i:i + settings.batch_size]).to(device, dtype)).float().cpu()
                 for i in range(0, count, settings.batch_size)]
    return sync_stats(torch.cat(video_emb), torch.cat(audio_emb), settings.vshift)


@torch.inference_mode()
def score_lipsync(model: torch.nn.Module, video: str | os.PathLike, audio: str | os.PathLike | None = None,
                  settings: ScoreSettings = ScoreSettings(), progress: Progress | None = None) -> SyncScore:
    """Measure how well the lips in ``video`` follow the speech.

    Args:
        model: a loaded :class:`.syncnet.SyncNet` (see :func:`.syncnet_loader.load_syncnet`);
            inputs go to its parameters' device and dtype.
        video: a video file of one speaking face.
        audio: the speech, if not the video's own audio track.
        settings: see :class:`ScoreSettings`.
        progress: called as ``progress(done, total)``: one step per frame of the face pass
            (every 10 frames) and per frame of the windows embedded (every batch).

    Returns:
        A :class:`SyncScore`.

    Raises:
        InvalidInputError: unreadable file, no video or audio stream, or under 6 frames
            (0.24 s) of overlapping video and audio.
        NoFaceDetectedError (``no_face_detected``): no frame has a face.
    """
    path = Path(video)
    info = probe_media(path)
    if info["video"] is None or not info["video"]["fps"]:
        raise InvalidInputError(f"{path.name} has no video stream with a frame rate")
    source = Path(audio) if audio is not None else path
    if audio is None and info["audio"] is None:
        raise InvalidInputError(f"{path.name} has no audio track to score (give the speech separately)")
    fps = float(info["video"]["fps"])
    estimate = max(1, round((info["video"]["frame_count"] or 0) * FPS / fps))
    report = progress or (lambda done, total: None)

    boxes, faceless = [], 0
    for k, frame in enumerate(frames_at_25(path, fps)):
        box = detect_box(frame, settings.crops) if k % settings.detect_every == 0 else None
        faceless += box is None and k % settings.detect_every == 0
        boxes.append(box)
        if k % 10 == 9:
            report(k + 1, 2 * max(estimate, k + 1))
    total = 2 * len(boxes)
    report(len(boxes), total)
    track = face_track(boxes, settings.crops)
    cc, num_samples, audio_seconds = _audio_mfcc(source)
    count = window_count(len(boxes), num_samples)
    if count < 1:
        raise InvalidInputError(f"too short to score: {count + WINDOW} frame(s) of video and audio overlap; "
                                f"at least {WINDOW + 1} (0.24 s) are needed")
    crops = (crop_face(frame, *track[k], settings.crops) for k, frame in enumerate(frames_at_25(path, fps)))
    stats = score_crops(model, crops, cc, count, settings,
                        on_batch=lambda done: report(len(boxes) + round(done * len(boxes) / count), total))
    median = float(np.median(stats.mean_dists))
    return SyncScore(
        stats=stats, frames=len(boxes), faceless_frames=faceless, source_fps=fps,
        audio_seconds=audio_seconds, video_seconds=len(boxes) / FPS,
        conf_per_second=per_second(median - stats.best_dists, FPS), dist_per_second=per_second(stats.best_dists, FPS),
    )
