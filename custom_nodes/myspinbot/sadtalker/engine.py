"""SadTalker end to end: one portrait and a speech track become an MP4, frames streamed to the file.

The inference of upstream ``inference.py`` (OpenTalker/SadTalker): five facial points
(:mod:`.landmarks`: MTCNN or the authors' RetinaFace + FAN, or the caller's), the ``crop`` / ``resize`` / ``full`` preprocessing
(:func:`~.align.crop_box`), the source's 73 coefficients from the regressor
(:func:`~.align.recon_input`), audio -> motion coefficients (:mod:`.audio_coeffs`), the
renderer (:mod:`.render`) and, for ``full``, the face pasted back into the portrait with
Poisson blending (``cv2.seamlessClone``, as upstream ``paste_pic``). Unlike upstream, frames
go to the MP4 as they are rendered (memory flat in clip length) with the speech muxed; the
video has ``floor(seconds * 25)`` frames, so it covers the speech to within one frame. Every
random draw comes from ``settings.seed``. Imports no ComfyUI module.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch

from ..errors import InvalidInputError
from ..lipsync.mel import melspectrogram
from ..speech.audio_io import resample, to_mono
from ..video.sizing import even_size
from ..video.writer import Mp4Writer
from .align import crop_box, recon_input, semantic_coeffs
from .audio_coeffs import FPS, SAMPLES_PER_FRAME, audio_to_coeffs, frame_count, sadtalker_mel_windows
from .landmarks import SOURCES, five_points
from .loader import SadTalkerNets
from .mapping import MappingNet
from .render import driving_coeffs, render_frames

PREPROCESS = ("crop", "resize", "full")
Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class SadTalkerSettings:
    """Knobs of :func:`talking_head`.

    Attributes:
        size: renderer resolution, 256 or 512 (the checkpoint's; any multiple of 64 from 128
            runs, for tests).
        preprocess: ``crop`` (the face square), ``resize`` (the whole portrait squeezed to a
            square) or ``full`` (the face rendered and pasted back into the portrait; needs
            the 73-input mapping).
        still: keep the source's head pose. pose_style: 0..45. expression_scale: > 0.
        seed: blink times and pose latents. blink: random eye blinks.
        batch_size: frames per renderer call. max_frames: cap on the frames rendered.
        crf: x264 quality.
        landmarks: where the five facial points come from when the caller gives none:
            ``auto`` (RetinaFace + FAN when both files are in ``model_dirs``, else MTCNN),
            ``mtcnn`` or ``retinaface_fan`` (:func:`.landmarks.five_points`).
    """

    size: int = 256
    preprocess: str = "crop"
    still: bool = False
    pose_style: int = 0
    expression_scale: float = 1.0
    seed: int = 0
    blink: bool = True
    batch_size: int = 2
    max_frames: int | None = None
    crf: int = 18
    landmarks: str = "auto"


@dataclass(frozen=True)
class SadTalkerResult:
    """``path`` of the MP4; ``frames`` at 25 fps of ``width`` x ``height``; ``coeffs`` the
    per-frame ``[T, 70]`` motion; ``source_coeffs`` the portrait's ``[73]``; ``points`` the five
    facial points used (portrait pixels)."""

    path: Path
    frames: int
    width: int
    height: int
    coeffs: np.ndarray
    source_coeffs: np.ndarray
    points: np.ndarray


def _check(settings: SadTalkerSettings, mapping: MappingNet) -> None:
    if settings.preprocess not in PREPROCESS:
        raise InvalidInputError(f"preprocess must be one of {', '.join(PREPROCESS)}, got {settings.preprocess!r}")
    need = 73 if settings.preprocess == "full" else 70
    if mapping.config.coeff_channels != need:
        raise InvalidInputError(f"preprocess {settings.preprocess!r} needs the mapping with {need} inputs "
                                f"({'mapping_00109' if need == 73 else 'mapping_00229'}-model.pth.tar)")
    if settings.size < 128 or settings.size % 64:
        raise InvalidInputError(f"size must be a multiple of 64 from 128 (256 or 512), got {settings.size}")
    if not settings.expression_scale > 0:
        raise InvalidInputError(f"expression_scale must be positive, got {settings.expression_scale}")
    if settings.landmarks not in SOURCES:
        raise InvalidInputError(f"landmarks must be one of {', '.join(SOURCES)}, got {settings.landmarks!r}")


def _face_region(image: np.ndarray, lm5: np.ndarray, preprocess: str) -> tuple[int, int, int, int]:
    """``(x0, y0, x1, y1)`` of the square the renderer sees, in portrait pixels."""
    h, w = image.shape[:2]
    if preprocess == "resize":
        return 0, 0, w, h
    (clx, cly, crx, cry), (lx, ly, rx, ry) = crop_box(lm5, (w, h))
    x0, y0 = clx + lx, cly + ly
    x1, y1 = min(clx + rx, crx), min(cly + ry, cry)
    if x1 - x0 < 8 or y1 - y0 < 8:
        raise InvalidInputError(f"the face region {x1 - x0}x{y1 - y0} px is too small to animate")
    return x0, y0, x1, y1


@torch.no_grad()
def talking_head(nets: SadTalkerNets, mapping: MappingNet, portrait: np.ndarray, audio: np.ndarray, sample_rate: int,
                 out_path: str | os.PathLike, settings: SadTalkerSettings = SadTalkerSettings(), *,
                 points: np.ndarray | None = None, model_dirs: Iterable[str | os.PathLike] = (),
                 progress: Progress | None = None,
                 check_interrupt: Callable[[], None] | None = None) -> SadTalkerResult:
    """Animate ``portrait`` (uint8 ``[H, W, 3]`` RGB) with ``audio`` (float ``[C, T]`` or ``[T]``).

    Args:
        nets, mapping: from :func:`~.loader.load_sadtalker` / :func:`~.loader.load_mapping`.
        points: five facial points ``[5, 2]`` (see :mod:`.align`); ``None``: found with
            ``settings.landmarks``.
        model_dirs: folders searched for the RetinaFace and FAN files (ComfyUI's
            ``models/facexlib``); empty: ``auto`` means MTCNN.
        progress: ``progress(frames_done, frames_total)`` after each rendered batch.
        check_interrupt: called before each batch; raises to stop (the partial MP4 is removed).

    Raises:
        NoFaceDetectedError (``no_face_detected``): no face found (when ``points`` is None).
        InvalidInputError: bad settings, image or audio (shorter than one 40 ms frame).
        ModelsMissingError: ``landmarks="retinaface_fan"`` without its files in ``model_dirs``.
        InvalidModelError: a landmark weight file does not fit its network.
    """
    _check(settings, mapping)
    image = np.asarray(portrait)
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise InvalidInputError(f"portrait must be uint8 [H, W, 3] RGB, got {image.dtype} {image.shape}")
    p = next(nets.generator.parameters())
    lm5 = (five_points(image, settings.landmarks, model_dirs, device=p.device) if points is None
           else np.asarray(points, dtype=np.float64))
    x0, y0, x1, y1 = _face_region(image, lm5, settings.preprocess)
    size = settings.size
    face = np.ascontiguousarray(image[y0:y1, x0:x1])
    source = cv2.resize(face, (size, size), interpolation=cv2.INTER_AREA)
    local = (lm5 - [x0, y0]) * [size / (x1 - x0), size / (y1 - y0)]
    crop224, trans = recon_input(cv2.resize(face, (size, size)), local)
    full = nets.face_3drecon(torch.from_numpy(crop224)[None].to(p))[0].float().cpu().numpy()
    src = semantic_coeffs(full, trans)

    mono = to_mono(np.asarray(audio, dtype=np.float32))
    wav = resample(mono, int(sample_rate), 16000)[0]
    frames = frame_count(len(wav))
    if settings.max_frames is not None:
        frames = min(frames, int(settings.max_frames))
    if frames < 1:
        raise InvalidInputError("the speech is shorter than one video frame (40 ms)")
    mels = sadtalker_mel_windows(melspectrogram(wav[:frames * SAMPLES_PER_FRAME]), frames)
    motion = audio_to_coeffs(nets.audio2exp, nets.audio2pose, mels, src, pose_style=settings.pose_style,
                             seed=settings.seed, blink=settings.blink)
    driving = driving_coeffs(motion.coeffs, src, mapping_channels=mapping.config.coeff_channels,
                             expression_scale=settings.expression_scale, still=settings.still)

    h, w = image.shape[:2]
    if settings.preprocess == "full":
        width, height = even_size(w, h)
        base = np.ascontiguousarray(image[:height, :width])
        x1, y1 = min(x1, width), min(y1, height)
    else:
        width, height = even_size(size, max(2, int(size * (y1 - y0) / (x1 - x0))))
    speech = mono[:, :int(round(frames / FPS * sample_rate))]
    image_t = torch.from_numpy(source).permute(2, 0, 1).to(p) / 255.0
    done = 0
    with Mp4Writer(out_path, width, height, FPS, speech, int(sample_rate), crf=settings.crf) as writer:
        batches = render_frames(nets.kp_extractor, nets.generator, mapping, image_t, src, driving,
                                batch_size=settings.batch_size)
        while True:
            if check_interrupt is not None:
                check_interrupt()
            batch = next(batches, None)
            if batch is None:
                break
            rendered = (batch.float().clamp(0, 1) * 255).round().byte().permute(0, 2, 3, 1).cpu().numpy()
            for frame in rendered:
                if settings.preprocess == "full":
                    patch = cv2.resize(frame, (x1 - x0, y1 - y0))
                    mask = np.full(patch.shape, 255, dtype=np.uint8)
                    centre = ((x0 + x1) // 2, (y0 + y1) // 2)
                    frame = cv2.seamlessClone(patch, base, mask, centre, cv2.NORMAL_CLONE)
                else:
                    frame = cv2.resize(frame, (width, height), interpolation=cv2.INTER_AREA)
                writer.write(np.ascontiguousarray(frame))
            done += len(rendered)
            if progress is not None:
                progress(done, frames)
    return SadTalkerResult(path=Path(out_path), frames=frames, width=width, height=height, coeffs=motion.coeffs,
                           source_coeffs=src, points=lm5)
