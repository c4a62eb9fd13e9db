"""Streaming Wav2Lip lip sync: a face image or video and a speech track become an MP4.

Follows the inference procedure of "A Lip Sync Expert Is All You Need for Speech to Lip
Generation In the Wild" (Prajwal et al., ACM MM 2020) as ``inference.py`` of Rudrabha/Wav2Lip
runs it: one 16-frame mel window per video frame (:mod:`.mel`), a face box per frame smoothed
over five frames (:mod:`.boxes`, OpenCV Haar cascades instead of S3FD), a 96 x 96 crop with
its lower half masked, batched inference, paste back (:mod:`.paste`, feathered and limited to
the lower face). Unlike it, frames stream from file to file (PyAV in, H.264 + AAC out), so
memory does not grow with the clip (the speech is muxed from its file at the end, not held);
a worker thread encodes each batch while the generator (:mod:`.batch`) makes the next; and
the video lasts as long as the audio (to within one frame, the source looped, played
ping-pong (:mod:`.replay`) or the still repeated). Frames without a face pass through
unchanged and are counted; a source without a face in any frame is an error
(``no_face_detected``). Imports no ComfyUI module.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import sys
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..animate.long_audio import frames_for_audio
from ..errors import InvalidInputError, NoFaceDetectedError
from ..speech.audio_io import load_audio, resample, to_mono
from ..video.sizing import even_size
from ..video.remux import finish_with_audio, temp_sibling, unlink_quietly
from ..video.writer import Mp4Writer
from .batch import BatchRunner, Generator
from .boxes import BoxSettings, BoxSmoother, FaceBox, find_face_box
from .mel import WAV2LIP_MEL, WINDOW_FRAMES, melspectrogram, window_starts
from .paste import lower_face_weight
from .replay import FrameSpool, check_loop_mode, source_index
from .source import FaceSource, open_face_source

Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class LipSyncSettings:
    """Knobs of :func:`lip_sync`.

    Attributes:
        batch_size: frames per generator call.
        boxes: face box padding and smoothing.
        still_fps: frame rate of the output for a still image.
        blend_top: where the pasted region starts, as a fraction of the face box height.
        crf: x264 quality of the output (lower is better).
        loop: how a source shorter than the audio is replayed, ``"loop"`` or ``"ping_pong"``
            (see :mod:`.replay`; ping-pong of a video spools its frames to a temporary file).
        require_face: a source without a face in any frame is an error (``no_face_detected``);
            False passes such a source through unchanged (a voice-over over a faceless scene).
    """

    batch_size: int = 16
    boxes: BoxSettings = field(default_factory=BoxSettings)
    still_fps: float = 25.0
    blend_top: float = 0.5
    crf: int = 18
    loop: str = "loop"
    require_face: bool = True

    def __post_init__(self) -> None:
        if int(self.batch_size) < 1:
            raise InvalidInputError(f"batch_size must be at least 1, got {self.batch_size}")
        if not 0.0 <= self.blend_top < 1.0:
            raise InvalidInputError(f"blend_top must be in [0, 1), got {self.blend_top}")
        check_loop_mode(self.loop)


@dataclass(frozen=True)
class LipSyncResult:
    """What :func:`lip_sync` wrote.

    Attributes:
        path: the MP4.
        frames: video frames written; ``fps``: their rate; ``width``, ``height``: px.
        frames_synced: frames whose mouth was redrawn.
        frames_without_face: frames passed through because no face was found.
        faceless_ranges: those frames as ``(first, last)`` output frame indices (0-based,
            inclusive), in order.
        source_frames: distinct source frames used (fewer than ``frames`` when looped).
        audio_seconds, video_seconds: durations in seconds.
    """

    path: Path
    frames: int
    fps: float
    width: int
    height: int
    frames_synced: int
    frames_without_face: int
    source_frames: int
    audio_seconds: float
    video_seconds: float
    faceless_ranges: tuple[tuple[int, int], ...] = ()


def _frames_with_boxes(source: FaceSource, total: int, settings: BoxSettings, mode: str = "loop",
                      spool: FrameSpool | None = None,
                      require_face: bool = True) -> Iterator[tuple[int, np.ndarray, FaceBox | None]]:
    """``total`` frames as ``(source index, frame, smoothed box)``: the source's frames are
    detected once, on the first pass, then replayed (:func:`.replay.source_index`) with the
    boxes found then; ``spool`` (needed for ``ping_pong`` on a video) keeps the first pass's
    frames for playing backward.

    Raises:
        NoFaceDetectedError: no frame of the first pass has a face (and ``require_face``).
    """
    smoother: BoxSmoother[tuple[int, np.ndarray]] = BoxSmoother(settings.smooth_window)
    boxes: list[FaceBox | None] = []
    reader = source.frames()
    try:
        for j, frame in enumerate(reader):
            if j >= total:
                break
            if spool is not None:
                spool.append(frame)
            for (index, item), box in smoother.push((j, frame), find_face_box(frame, settings)):
                boxes.append(box)
                yield index, item, box
    finally:
        reader.close()
    for (index, item), box in smoother.finish():
        boxes.append(box)
        yield index, item, box
    if not boxes:
        raise InvalidInputError(f"no frame could be read from {source.path}")
    if require_face and all(box is None for box in boxes):
        what = "the image" if source.is_still else f"any of the {len(boxes)} frame(s) checked"
        raise NoFaceDetectedError(
            f"no face found in {what} of {source.path.name} (OpenCV Haar cascades: a frontal face at "
            f"least {settings.min_side} px wide is needed)", details={"frames_checked": len(boxes)})
    n, done = len(boxes), len(boxes)
    if mode == "ping_pong" and n > 1 and spool is not None:
        for k in range(done, total):
            j = source_index(k, n, mode)
            yield j, spool[j], boxes[j]
        return
    while done < total:  # the source is shorter than the audio: play it again
        before = done
        reader = source.frames()
        try:
            for j, frame in enumerate(reader):
                if done >= total or j >= n:
                    break
                yield j, frame, boxes[j]
                done += 1
        finally:
            reader.close()
        if done == before:
            raise InvalidInputError(f"{source.path} could not be read again to loop it")


def _release_freed_heap() -> None:
    """Hand the heap's free pages back to the OS (glibc ``malloc_trim``; nothing elsewhere).

    Decoding and transforming a long speech track frees tens of MiB in pieces that glibc keeps
    mapped; left there, they sit under the generator's activations for the whole clip, and
    resident memory grows with the speech's length instead of staying level."""
    if not sys.platform.startswith("linux"):
        return
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def _speech_mel(audio: str | os.PathLike) -> tuple[np.ndarray, int, int]:
    """``(mel, samples, rate)``: the speech's mel spectrogram (float32 ``[80, T]``, at least one
    window wide), its length in samples and its sample rate. The decoded track, its 16 kHz copy
    and the STFT's buffers are freed on return (the mux reads the file again, streamed), so
    only the mel (about 26 KB per second) is held while the frames are made."""
    samples, rate = load_audio(audio)
    mel = melspectrogram(resample(to_mono(samples), rate, WAV2LIP_MEL.sample_rate)[0])
    if mel.shape[1] < WINDOW_FRAMES:  # under 0.2 s of audio: pad with silence
        mel = np.pad(mel, ((0, 0), (0, WINDOW_FRAMES - mel.shape[1])), constant_values=WAV2LIP_MEL.floor_value)
    return mel, int(samples.shape[1]), int(rate)


def lip_sync(
    model: Generator,
    face: str | os.PathLike,
    audio: str | os.PathLike,
    output: str | os.PathLike,
    settings: LipSyncSettings = LipSyncSettings(),
    progress: Progress | None = None,
) -> LipSyncResult:
    """Lip-sync the face in ``face`` to the speech in ``audio`` and write ``output`` (MP4).

    Args:
        model: a loaded Wav2Lip (see :func:`.loader.load_wav2lip`), or any callable with its
            signature; inputs are sent to its parameters' device and dtype.
        face: a still image (png, jpg, jpeg, webp, bmp) or a video of the speaker.
        audio: any audio (or media) file PyAV decodes (its first audio stream); it is muxed
            as AAC at its own rate (mixed down to stereo if it has more channels), read again
            from the file for that, and resampled to 16 kHz mono for the mel.
        output: the MP4 to write (H.264 yuv420p + AAC); an odd frame side is cropped by 1 px.
        settings: see :class:`LipSyncSettings`.
        progress: called as ``progress(frames_done, frames_total)`` after each batch.

    Returns:
        A :class:`LipSyncResult`; ``frames = ceil(audio_seconds * fps)``.

    Raises:
        InvalidInputError: unreadable face or audio file, or frames too small to encode.
        NoFaceDetectedError (``no_face_detected``): no frame of the source has a face (found
            after its first pass; nothing is left at ``output``), unless ``settings.require_face``
            is False (then every frame passes through and ``frames_synced`` is 0).
        Errors of the generator or the encoder propagate (the partial MP4 is removed).
    """
    source = open_face_source(face, settings.still_fps)
    mel, num_samples, rate = _speech_mel(audio)
    _release_freed_heap()
    total = frames_for_audio(num_samples, rate, source.fps)
    starts = window_starts(mel.shape[1], source.fps, num_frames=total)
    width, height = even_size(source.width, source.height)
    run = BatchRunner(model, mel, starts, lower_face_weight(96, top=settings.blend_top))

    synced = missing = written = done = source_frames = 0
    batch: list[tuple[int, np.ndarray, FaceBox | None]] = []
    faceless: list[list[int]] = []
    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    video_only = temp_sibling(output, "video")  # the frames; the speech is muxed in at the end
    with contextlib.ExitStack() as stack:
        stack.callback(unlink_quietly, video_only)
        spool = None
        if settings.loop == "ping_pong" and not source.is_still:  # frames to play backward: on disk
            spool = stack.enter_context(FrameSpool(source.height, source.width, output.parent))
        writer = stack.enter_context(Mp4Writer(video_only, width, height, source.fps, crf=settings.crf))

        # The generator runs here, batch by batch; one worker thread encodes the previous
        # batch meanwhile (x264 releases the GIL). At most two batches of finished frames wait,
        # whatever the clip's length. (The generator stays on this thread: run from a worker,
        # its activations went to a second malloc arena whose resident size crept upwards.)
        pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="wav2lip_encode")
        stack.callback(pool.shutdown, wait=True, cancel_futures=True)
        pending: list[Future] = []

        def encode(frames_out: list[np.ndarray]) -> None:
            nonlocal written
            for frame in frames_out:
                writer.write(np.ascontiguousarray(frame[:height, :width]))
                written += 1

        def flush() -> None:
            nonlocal done
            frames_out = run(batch)
            batch.clear()
            while len(pending) > 1:  # the batch before the previous one must be written by now
                pending.pop(0).result()
            pending.append(pool.submit(encode, frames_out))
            done += len(frames_out)
            if progress is not None:
                progress(done, total)

        frames = _frames_with_boxes(source, total, settings.boxes, settings.loop, spool, settings.require_face)
        for index, (j, frame, box) in enumerate(frames):
            if frame.shape[:2] != (source.height, source.width):
                raise InvalidInputError(f"frame {j} of {source.path} is {frame.shape[1]}x{frame.shape[0]}, "
                                        f"expected {source.width}x{source.height}")
            source_frames = max(source_frames, j + 1)
            if box is None:
                missing += 1
                if faceless and faceless[-1][1] == index - 1:
                    faceless[-1][1] = index
                else:
                    faceless.append([index, index])
            else:
                synced += 1
            batch.append((index, frame, box))
            if len(batch) >= settings.batch_size:
                flush()
        if batch:
            flush()
        while pending:
            pending.pop(0).result()
        writer.close()
        finish_with_audio(video_only, audio, output, 0.0, "reencode")  # AAC, streamed packet by packet
    return LipSyncResult(
        path=output, frames=written, fps=source.fps, width=width, height=height,
        frames_synced=synced, frames_without_face=missing,
        source_frames=source_frames,
        audio_seconds=num_samples / rate, video_seconds=written / source.fps,
        faceless_ranges=tuple((a, b) for a, b in faceless),
    )
