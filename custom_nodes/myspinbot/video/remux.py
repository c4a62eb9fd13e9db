"""Pass 2 of the frame map: put the source's audio beside an encoded video, without decoding it.

:func:`finish_with_audio` writes ``dst`` from the video stream of a video-only MP4 and the
first audio stream of the source: audio *packets* are copied as they are when MP4 can hold the
codec (else decoded and re-encoded to AAC); packets of the two streams are merged in time
order, one pending packet per stream, so memory does not grow with clip length. Also the small
file helpers the frame map shares (open an input, temporary siblings, quiet unlink).

Imports no ComfyUI module.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path
from typing import BinaryIO, Literal

import av

from ..errors import InvalidInputError

Source = str | os.PathLike | BinaryIO

AUDIO_NONE = "none"
AUDIO_COPIED = "copied"
AUDIO_REENCODED = "reencoded"


# -- file helpers -------------------------------------------------------------------------

def open_input(src: Source, what: str = "video"):
    if isinstance(src, (str, os.PathLike)):
        p = Path(src)
        if not p.is_file():
            raise InvalidInputError(f"{what} file not found: {p}")
        target = str(p)
    else:
        if hasattr(src, "seek"):
            src.seek(0)
        target = src
    try:
        return av.open(target, mode="r")
    except av.FFmpegError as exc:
        raise InvalidInputError(f"not a readable {what} file: {describe(src)} ({exc})") from exc


def describe(src: Source) -> str:
    return str(src) if isinstance(src, (str, os.PathLike)) else f"<{type(src).__name__}>"


def temp_sibling(dst: Path, tag: str) -> Path:
    return dst.with_name(f".{dst.stem}.{tag}-{uuid.uuid4().hex[:12]}.mp4")


def unlink_quietly(path: Path | None) -> None:
    if path is None:
        return
    try:
        path.unlink()
    except FileNotFoundError:
        pass


# -- mux video + audio --------------------------------------------------------------------

def _packets(container, stream, shift: int = 0) -> Iterator[av.Packet]:
    """Demuxed packets of ``stream`` (flush packets dropped), timestamps moved by ``shift``."""
    for packet in container.demux(stream):
        if packet.size == 0 and packet.dts is None:
            continue
        if shift:
            if packet.pts is not None:
                packet.pts -= shift
            if packet.dts is not None:
                packet.dts -= shift
        yield packet


def _packet_time(packet: av.Packet, last: float) -> float:
    ts = packet.dts if packet.dts is not None else packet.pts
    if ts is None or packet.time_base is None:
        return last
    return float(ts * packet.time_base)


def _merge_mux(out, sources: list[tuple[Iterator[av.Packet], object]]) -> None:
    """Mux packets from several per-stream iterators in time order (one pending each)."""
    pending: list[list] = []  # [time, packet, iterator, out_stream]
    for it, ostream in sources:
        pk = next(it, None)
        if pk is not None:
            pending.append([_packet_time(pk, 0.0), pk, it, ostream])
    while pending:
        entry = min(pending, key=lambda e: e[0])
        _, pk, it, ostream = entry
        pk.stream = ostream
        out.mux(pk)
        nxt = next(it, None)
        if nxt is None:
            pending.remove(entry)
        else:
            entry[0] = _packet_time(nxt, entry[0])
            entry[1] = nxt


def _aac_packets(ain, astream, aout, start_s: float) -> Iterator[av.Packet]:
    """Decode ``astream`` and encode to the AAC stream ``aout``; yields packets in order.

    Frames keep their source timing, moved by ``-start_s`` seconds (the output video starts
    at 0); PyAV's encoder resamples and re-chunks them to the encoder's frame size."""
    for frame in ain.decode(astream):
        if frame.time is not None:
            rate = frame.sample_rate
            frame.pts = int(round((frame.time - start_s) * rate))
            frame.time_base = Fraction(1, rate)
        yield from aout.encode(frame)
    yield from aout.encode(None)


def _can_copy(out, astream) -> bool:
    name = astream.codec_context.name
    try:
        return name in out.supported_codecs
    except Exception:  # noqa: BLE001 - older PyAV without supported_codecs: try and see
        return True


def _add_aac_stream(out, astream):
    ctx = astream.codec_context
    channels = ctx.layout.nb_channels if ctx.layout is not None else 2
    layout = "mono" if channels == 1 else "stereo"
    codec = av.Codec("aac", "w")
    rates = codec.audio_rates or []
    rate = int(ctx.sample_rate) if (not rates or int(ctx.sample_rate) in rates) else 48000
    aout = out.add_stream("aac", rate=rate)
    aout.codec_context.layout = layout
    aout.codec_context.format = "fltp"
    aout.codec_context.bit_rate = 96000 * (1 if channels == 1 else 2)
    return aout


def _mux_with_audio(video_only: Path, src: Source, dst_tmp: Path, video_start: float,
                    mode: Literal["copy", "reencode"]) -> tuple[str, str | None]:
    """Write ``dst_tmp`` from the video of ``video_only`` and the first audio of ``src``.

    Returns ``(audio_mode, audio_codec)``; ``audio_mode`` is ``"none"`` when ``src`` has
    no audio (then nothing is written and the caller uses ``video_only`` as is).
    """
    ain = open_input(src)
    try:
        if not ain.streams.audio:
            return AUDIO_NONE, None
        astream = ain.streams.audio[0]
        vin = av.open(str(video_only), mode="r")
        try:
            vstream = vin.streams.video[0]
            out = av.open(str(dst_tmp), mode="w", format="mp4", container_options={"movflags": "+faststart"})
            try:
                vout = out.add_stream_from_template(vstream)
                copied = mode == "copy" and _can_copy(out, astream)
                if copied:
                    try:
                        aout = out.add_stream_from_template(astream)
                    except ValueError:
                        copied = False
                if not copied:
                    aout = _add_aac_stream(out, astream)
                shift = 0
                if copied and video_start and astream.time_base is not None:
                    # The output video starts at 0; keep the audio in sync with it.
                    shift = int(round(video_start / astream.time_base))
                if copied:
                    apackets = _packets(ain, astream, shift)
                else:
                    apackets = _aac_packets(ain, astream, aout, video_start)
                _merge_mux(out, [(_packets(vin, vstream), vout), (apackets, aout)])
                codec_name = aout.codec_context.name
                out.close()
                out = None
            finally:
                if out is not None:
                    try:
                        out.close()
                    except Exception:  # noqa: BLE001 - already failing; the caller removes the file
                        pass
        finally:
            vin.close()
        return (AUDIO_COPIED if copied else AUDIO_REENCODED), codec_name
    finally:
        ain.close()


def finish_with_audio(video_only: Path, src: Source, dst: Path, video_start: float,
                      audio: Literal["copy", "reencode"]) -> tuple[str, str | None]:
    """Move ``video_only`` (a finished video-only MP4) to ``dst`` with the first audio stream of
    ``src`` added (``audio="copy"``: packets copied when MP4 can hold the codec, else AAC;
    ``"reencode"``: always AAC). The audio is shifted by ``-video_start`` seconds, the time of
    the source's first video frame, since the output video starts at 0.

    Returns ``(mode, codec)``: ``mode`` is ``"none"`` (``src`` has no audio: ``video_only`` is
    renamed as is), ``"copied"`` or ``"reencoded"``; ``codec`` the output audio codec or None.
    On error ``dst`` is not written and the intermediate file is removed; ``video_only`` is the
    caller's to remove."""
    dst_tmp = temp_sibling(dst, "mux")
    try:
        mode, codec = _mux_with_audio(video_only, src, dst_tmp, video_start, audio)
        if mode == AUDIO_NONE:
            os.replace(video_only, dst)
        else:
            os.replace(dst_tmp, dst)
        return mode, codec
    finally:
        unlink_quietly(dst_tmp)


__all__ = ["AUDIO_COPIED", "AUDIO_NONE", "AUDIO_REENCODED", "Source", "describe", "finish_with_audio",
           "open_input", "temp_sibling", "unlink_quietly"]
