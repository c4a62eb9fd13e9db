"""The result of text-to-speech: a short, immutable container of samples and their rate."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True, eq=False)
class Speech:
    """Synthesised speech.

    Attributes:
        samples: float32 array, shape ``[C, T]`` (C channels, here always 1; T samples),
            values in ``-1.0 .. 1.0``.
        sample_rate: samples per second (Hz), > 0; espeak-ng speaks at 22050 Hz.

    Raises:
        ValueError: at construction, if ``samples`` is not a 2-D float32 array or
            ``sample_rate`` is not a positive integer.
    """

    samples: np.ndarray
    sample_rate: int

    def __post_init__(self) -> None:
        if not isinstance(self.samples, np.ndarray) or self.samples.ndim != 2:
            raise ValueError("Speech.samples must be a 2-D numpy array shaped [C, T]")
        if self.samples.dtype != np.float32:
            raise ValueError(f"Speech.samples must be float32, got {self.samples.dtype}")
        if isinstance(self.sample_rate, bool) or int(self.sample_rate) != self.sample_rate or self.sample_rate <= 0:
            raise ValueError(f"Speech.sample_rate must be a positive integer, got {self.sample_rate!r}")

    @property
    def channels(self) -> int:
        """Number of channels C (int)."""
        return int(self.samples.shape[0])

    @property
    def num_samples(self) -> int:
        """Number of samples per channel T (int)."""
        return int(self.samples.shape[1])

    @property
    def duration_s(self) -> float:
        """Length in seconds (float): ``T / sample_rate``."""
        return self.num_samples / float(self.sample_rate)
