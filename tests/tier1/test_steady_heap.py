"""Tier 1: ``nodes/_heap.steady_heap`` (glibc allocator thresholds around a frame loop)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

PATH = Path(__file__).resolve().parents[2] / "custom_nodes" / "myspinbot" / "nodes" / "_heap.py"


@pytest.fixture()
def heap():
    # loaded by path: the nodes package imports ComfyUI, this module does not
    spec = importlib.util.spec_from_file_location("_myspinbot_heap", PATH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_sets_and_settles_the_thresholds_and_trims_once(heap, monkeypatch):
    calls = []
    monkeypatch.setattr(heap, "_LIBC", (lambda param, value: calls.append((param, value)) or 1,
                                        lambda pad: calls.append(("trim", pad)) or 1))
    with heap.steady_heap(256 << 20) as applied:
        assert applied
        assert calls == [(heap.M_MMAP_THRESHOLD, 256 << 20), (heap.M_TRIM_THRESHOLD, 512 << 20)]
    assert calls[2:] == [(heap.M_MMAP_THRESHOLD, 32 << 20), (heap.M_TRIM_THRESHOLD, 64 << 20), ("trim", 0)]


def test_restores_after_an_error_and_does_nothing_without_glibc(heap, monkeypatch):
    calls = []
    monkeypatch.setattr(heap, "_LIBC", (lambda param, value: calls.append(param) or 1, lambda pad: 1))
    with pytest.raises(RuntimeError), heap.steady_heap():
        raise RuntimeError("frame failed")
    assert calls == [heap.M_MMAP_THRESHOLD, heap.M_TRIM_THRESHOLD, heap.M_MMAP_THRESHOLD, heap.M_TRIM_THRESHOLD]
    monkeypatch.setattr(heap, "_LIBC", None)
    with heap.steady_heap() as applied:
        assert applied is False


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc only")
def test_real_glibc_accepts_the_settings(heap):
    if heap._LIBC is None:
        pytest.skip("no glibc mallopt here")
    with heap.steady_heap() as applied:
        assert applied
        block = bytearray(64 << 20)  # served from the heap now; freed at the end of the block
        del block
