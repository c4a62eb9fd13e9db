"""Small inputs that expand into gigabytes (issue #9, item 3), made on the fly for the limit tests.

- ``huge_png``: 13000 x 13000 px of one grey (about 160 KB; 169 M pixels once decoded)
- ``silent_flac``: an hour of 16 kHz silence (about 650 KB; optionally with a STREAMINFO that
  claims a much shorter length, to show that the header is not trusted)
- ``long_script``: 100 KB of text
- ``streamed_form``: a multipart body sent part by part, that can stall after some parts (a
  slow client) so a test can show the server refused it before the rest was sent
"""

from __future__ import annotations

import asyncio
import functools
import io
import uuid
from typing import AsyncIterator, Iterable

import numpy as np
from PIL import Image


@functools.lru_cache(maxsize=4)
def huge_png(side: int = 13000) -> bytes:
    """A ``side`` x ``side`` greyscale PNG of one value: tiny on disk, ``side**2`` bytes decoded."""
    buf = io.BytesIO()
    Image.new("L", (side, side), 128).save(buf, "PNG")
    return buf.getvalue()


@functools.lru_cache(maxsize=8)
def silent_flac(seconds: float = 3600.0, rate: int = 16000, claim_s: float | None = None) -> bytes:
    """``seconds`` of mono silence as FLAC. ``claim_s``: rewrite STREAMINFO's total-sample count
    so the header claims that length instead (a lying header; the frames still hold ``seconds``)."""
    import av

    out = io.BytesIO()
    total, block = int(seconds * rate), rate * 10
    with av.open(out, "w", format="flac") as container:
        stream = container.add_stream("flac", rate=rate)
        stream.layout = "mono"
        for start in range(0, total, block):
            silence = np.zeros((1, min(block, total - start)), np.int16)
            frame = av.AudioFrame.from_ndarray(silence, format="s16", layout="mono")
            frame.sample_rate, frame.pts = rate, start
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    data = bytearray(out.getvalue())
    if claim_s is not None:
        # "fLaC", a 4-byte block header, then STREAMINFO: its bytes 10..17 end with the 36-bit sample count.
        packed = int.from_bytes(data[18:26], "big")
        packed = (packed & ~((1 << 36) - 1)) | int(claim_s * rate)
        data[18:26] = packed.to_bytes(8, "big")
    return bytes(data)


def long_script(chars: int = 100_000) -> str:
    sentence = "This sentence is spoken again and again. "
    return (sentence * (chars // len(sentence) + 1))[:chars]


class StreamedForm:
    """A multipart/form-data body produced part by part. With ``stall_after`` set, the body
    stops after that many parts until ``release()`` (then ends), like a client still uploading."""

    def __init__(self, parts: Iterable[tuple[str, bytes, str | None]], stall_after: int | None = None):
        self.parts = parts  # (name, payload, filename or None for a text field)
        self.stall_after = stall_after
        self.boundary = uuid.uuid4().hex
        self.sent_parts = 0
        self._release = asyncio.Event()

    @property
    def content_type(self) -> str:
        return f"multipart/form-data; boundary={self.boundary}"

    def release(self) -> None:
        self._release.set()

    async def body(self) -> AsyncIterator[bytes]:
        for name, payload, filename in self.parts:
            if self.stall_after is not None and self.sent_parts >= self.stall_after:
                await self._release.wait()
                return
            disposition = f'form-data; name="{name}"' + (f'; filename="{filename}"' if filename else "")
            yield (f"--{self.boundary}\r\nContent-Disposition: {disposition}\r\n"
                   f"Content-Type: {'application/octet-stream' if filename else 'text/plain'}\r\n\r\n").encode()
            yield payload
            yield b"\r\n"
            self.sent_parts += 1
        yield f"--{self.boundary}--\r\n".encode()
