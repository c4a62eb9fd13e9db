"""Top level: animate a still portrait to speech audio and stream it into an MP4."""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import InvalidInputError
from ..video.writer import Mp4Writer
from .drive import frame_count_for, mouth_drive
from .face import locate_face
from .inputs import fit_portrait, to_audio_channels_first, to_rgb_uint8
from .motion import blink_closure, head_drift
from .portrait import FrameControls, PortraitRenderer

ProgressCallback = Callable[[int, int], None]


@dataclass(frozen=True)
class AnimationResult:
    """What :func:`animate_portrait` wrote.

    Attributes:
        path: the MP4 file.
        frame_count: video frames written.
        fps: frames per second.
        width, height: frame size in px (even).
        duration_s: video duration, ``frame_count / fps`` seconds.
        audio_duration_s: length of the speech audio, seconds.
        faces_found: faces the detector found (the largest one is animated).
        face_box: ``(x, y, w, h)`` of the animated face in video-frame pixels.
        summary: one human-readable line about the result.
    """

    path: str
    frame_count: int
    fps: float
    width: int
    height: int
    duration_s: float
    audio_duration_s: float
    faces_found: int
    face_box: tuple[int, int, int, int]
    summary: str


def _check_settings(fps: float, mouth_strength: float, head_motion: float) -> None:
    if not (isinstance(fps, (int, float)) and math.isfinite(fps) and 1.0 <= fps <= 120.0):
        raise InvalidInputError(f"fps must be between 1 and 120, got {fps!r}")
    if not (math.isfinite(mouth_strength) and 0.0 <= mouth_strength <= 3.0):
        raise InvalidInputError(f"mouth_strength must be between 0 and 3, got {mouth_strength!r}")
    if not (math.isfinite(head_motion) and 0.0 <= head_motion <= 5.0):
        raise InvalidInputError(f"head_motion must be between 0 and 5, got {head_motion!r}")


def iter_frames(
    renderer: PortraitRenderer,
    opening: np.ndarray,
    width: np.ndarray,
    blinks: np.ndarray,
    drift: np.ndarray,
) -> Iterator[np.ndarray]:
    """Yield uint8 ``[H, W, 3]`` frames, one per entry of the ``[N]`` control arrays.

    Args:
        renderer: the prepared portrait.
        opening, width, blinks: float32 ``[N]`` mouth opening 0..1, width cue -1..1,
            eyelid closure 0..1.
        drift: float32 ``[N, 2]`` head offset ``(dx, dy)`` px.
    """
    for i in range(len(opening)):
        yield renderer.render(
            FrameControls(
                opening=float(opening[i]),
                width=float(width[i]),
                blink=float(blinks[i]),
                dx=float(drift[i, 0]),
                dy=float(drift[i, 1]),
            )
        )


def animate_portrait(
    image: np.ndarray,
    audio: np.ndarray,
    sample_rate: int,
    out_path: str | os.PathLike,
    *,
    fps: float = 25.0,
    mouth_strength: float = 1.0,
    blink: bool = True,
    head_motion: float = 1.0,
    seed: int = 0,
    max_side: int = 1024,
    on_progress: ProgressCallback | None = None,
) -> AnimationResult:
    """Animate the largest face in ``image`` speaking ``audio``; write an MP4 with the audio.

    Frames are rendered and encoded one at a time (memory does not grow with length).
    The video has ``ceil(audio_seconds * fps)`` frames, so it covers the audio within one
    frame, and the portrait's framing (downscaled to ``max_side``, even sides).

    Args:
        image: the portrait; uint8 ``[H, W, 3]`` RGB, or grayscale / RGBA / float 0..1
            (see ``to_rgb_uint8``).
        audio: float ``[C, T]`` or ``[T]`` speech in -1..1.
        sample_rate: Hz of ``audio``.
        out_path: MP4 file to write (overwritten).
        fps: video frame rate (1..120).
        mouth_strength: jaw-drop scale (0..3, 1 = natural).
        blink: add natural eye blinks.
        head_motion: head-drift scale (0..5; 1 = at most 0.5 % of the face height, 0.2-0.8 px).
        seed: random seed for blinks and drift.
        max_side: longest video side in px.
        on_progress: called as ``on_progress(done_frames, total_frames)`` after each frame;
            if it raises, encoding stops, the partial file is removed and the error
            propagates.

    Returns:
        :class:`AnimationResult`.

    Raises:
        NoFaceDetectedError: no face in the portrait.
        InvalidInputError: unusable image, audio or setting.
    """
    _check_settings(fps, mouth_strength, head_motion)
    rgb = fit_portrait(to_rgb_uint8(image), max_side)
    sound = to_audio_channels_first(audio, sample_rate)
    detection = locate_face(rgb)
    layout = detection.layout
    fps = float(fps)
    audio_s = sound.shape[1] / float(sample_rate)
    total = frame_count_for(audio_s, fps)

    drive = mouth_drive(sound, int(sample_rate), fps, total)
    blinks = blink_closure(total, fps, seed) if blink else np.zeros(total, np.float32)
    amplitude = head_motion * float(np.clip(0.005 * layout.face.h, 0.2, 0.8))
    drift = head_drift(total, fps, amplitude, seed)
    renderer = PortraitRenderer(rgb, layout, mouth_strength=mouth_strength)
    width, height = renderer.size

    with Mp4Writer(out_path, width, height, fps, sound, int(sample_rate)) as writer:
        for done, frame in enumerate(iter_frames(renderer, drive.opening, drive.width, blinks, drift), start=1):
            writer.write(frame)
            if on_progress is not None:
                on_progress(done, total)

    n = detection.faces_found
    which = "the only face" if n == 1 else f"the largest of {n} faces"
    box = layout.face.as_tuple()
    summary = (
        f"animated {which} (box x={box[0]} y={box[1]} w={box[2]} h={box[3]}) in a {width}x{height} portrait: "
        f"{total} frames at {fps:g} fps ({total / fps:.2f} s) for {audio_s:.2f} s of audio"
    )
    return AnimationResult(
        path=str(Path(out_path)),
        frame_count=total,
        fps=fps,
        width=width,
        height=height,
        duration_s=total / fps,
        audio_duration_s=audio_s,
        faces_found=n,
        face_box=box,
        summary=summary,
    )
