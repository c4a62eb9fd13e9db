"""Keep glibc from handing a frame loop's working memory back to the kernel between frames.

A model run on a frame allocates and frees the same large activations every frame (a 192² x4
ESRGAN: tensors of 2-38 MB). glibc serves blocks above its mmap threshold (at most 32 MiB in its
dynamic scheme) with fresh ``mmap`` calls and trims freed heap above its trim threshold, so every
frame faults those pages in again: 20-70 thousand minor page faults per frame, 10-20 % of the
frame's time on a CPU (measured with ``bench/bench_upscale_speed.py``). Inside
:func:`steady_heap` blocks up to ``max_block`` bytes come from the heap and freed heap stays in
the process, so from the second frame on the loop reuses its pages; on exit the heap is trimmed
once. Peak memory is unchanged (the loop's working set is the same every frame) and stays flat
in clip length.

The setting is process-wide while the block runs. On exit the thresholds are set to the values
glibc's dynamic scheme settles on in a long-running process (mmap 32 MiB, trim 64 MiB), since
glibc offers no way back to the dynamic scheme once they are set. Off glibc (or when ``mallopt``
is missing) it does nothing. Imports no ComfyUI module.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys
from collections.abc import Iterator
from contextlib import contextmanager

M_TRIM_THRESHOLD = -1  # glibc's mallopt parameter numbers
M_MMAP_THRESHOLD = -3
SETTLED_MMAP = 32 << 20  # DEFAULT_MMAP_THRESHOLD_MAX on 64-bit: where the dynamic threshold tops out
SETTLED_TRIM = 2 * SETTLED_MMAP  # the dynamic trim threshold is twice the mmap threshold


def _libc():
    """glibc's ``mallopt`` and ``malloc_trim``, or ``None`` elsewhere."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        return libc.mallopt, libc.malloc_trim
    except (OSError, AttributeError):
        return None


_LIBC = _libc()


@contextmanager
def steady_heap(max_block: int = 1 << 30) -> Iterator[bool]:
    """While the block runs, blocks up to ``max_block`` bytes (default 1 GiB) come from glibc's
    heap and freed memory is not trimmed. Yields whether the setting took effect."""
    if _LIBC is None:
        yield False
        return
    mallopt, malloc_trim = _LIBC
    mmap_set = bool(mallopt(M_MMAP_THRESHOLD, int(max_block)))
    trim_set = bool(mallopt(M_TRIM_THRESHOLD, 2 * int(max_block)))
    try:
        yield mmap_set and trim_set
    finally:
        if mmap_set or trim_set:
            mallopt(M_MMAP_THRESHOLD, SETTLED_MMAP)
            mallopt(M_TRIM_THRESHOLD, SETTLED_TRIM)
            malloc_trim(0)
