"""Resampling in pieces gives torchaudio's whole-signal result, with bounded temporary memory."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torchaudio

from myspinbot.animate.chunked_resample import resample_mono


@pytest.mark.parametrize("rates", [(48000, 16000), (44100, 16000), (22050, 16000), (8000, 16000), (24000, 16000),
                                   (48000, 17600), (16000, 16000)])
@pytest.mark.parametrize("length", [1, 7, 1000, 3 * 48000 + 17, 20 * 44100 + 5])
def test_pieces_equal_whole_signal(rates, length):
    orig, new = rates
    x = torch.randn(length, generator=torch.Generator().manual_seed(length))
    whole = torchaudio.functional.resample(x[None], orig, new)[0].numpy()
    pieces = resample_mono(x, orig, new, piece_s=1.0)
    assert pieces.dtype == np.float32 and pieces.shape == whole.shape
    np.testing.assert_allclose(pieces, whole, rtol=0, atol=2e-5)


_PEAK_SCRIPT = """
import resource, sys, torch
sys.path.insert(0, sys.argv[1])
from myspinbot.animate.chunked_resample import resample_mono
x = torch.randn(int(sys.argv[2]) * 48000)
resample_mono(x[:48000], 48000, 16000)  # warm up torchaudio
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
resample_mono(x, 48000, 16000)
print((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) * 1024)
"""


def test_peak_memory_is_bounded_by_the_piece_not_the_clip():
    """Two minutes of 48 kHz audio (22 MiB): whole-signal torchaudio peaks near 180 MiB more;
    in pieces, the output (7 MiB) and a piece's temporaries."""
    import subprocess
    import sys
    from pathlib import Path

    package_root = str(Path(__file__).resolve().parents[2] / "custom_nodes")
    out = subprocess.run([sys.executable, "-c", _PEAK_SCRIPT, package_root, "120"], capture_output=True, text=True,
                         check=True)
    assert int(out.stdout.strip().splitlines()[-1]) < 40 * 2**20


def test_rejects_non_positive_rates():
    with pytest.raises(ValueError):
        resample_mono(torch.zeros(10), 0, 16000)
