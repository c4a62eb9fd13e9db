"""Tier 1: the picture of a lip-sync score (``lipsync.score_plot``), drawn with PIL only."""

from __future__ import annotations

import numpy as np
import pytest

from myspinbot.errors import InvalidInputError
from myspinbot.lipsync.score_plot import CONF_COLOUR, DIST_COLOUR, LOW_COLOUR, plot_score


def _has(image: np.ndarray, colour) -> bool:
    return bool((image == np.array(colour, np.uint8)).all(axis=-1).any())


def test_plot_draws_both_curves():
    image = plot_score(np.array([3.2, 5.1, -0.7, 4.0]), np.array([7.1, 6.5, 9.2, 7.0]), 2, 7.25, 4.81)
    assert image.shape == (400, 720, 3) and image.dtype == np.uint8
    assert _has(image, CONF_COLOUR) and _has(image, LOW_COLOUR) and _has(image, DIST_COLOUR)
    flat = plot_score(np.array([1.0]), np.array([5.0]), 0, 5.0, 1.0, width=320, height=200)
    assert flat.shape == (200, 320, 3) and not _has(flat, LOW_COLOUR)


def test_plot_refuses_bad_curves():
    with pytest.raises(InvalidInputError):
        plot_score(np.array([]), np.array([]), 0, 1.0, 1.0)
    with pytest.raises(InvalidInputError):
        plot_score(np.array([1.0, 2.0]), np.array([1.0]), 0, 1.0, 1.0)
    with pytest.raises(InvalidInputError):
        plot_score(np.array([np.nan]), np.array([1.0]), 0, 1.0, 1.0)
    with pytest.raises(InvalidInputError):
        plot_score(np.array([1.0]), np.array([1.0]), 0, 1.0, 1.0, width=100)
