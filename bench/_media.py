"""Benchmark inputs: the fixture portrait and speech (``../shared/fixtures``), or drawn /
synthetic stand-ins when that folder is missing."""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
FIXTURES = REPO.parent / "shared" / "fixtures"
RATE = 48000  # Hz of the fixture recordings and of the synthetic speech


def speech(seconds: float):
    """``(float32 [1, seconds * 48000] speech in -1..1, description)``: the fixture recordings
    ``speech_front_left.wav`` / ``speech_front_right.wav`` with short pauses, repeated to length;
    without fixtures a 140 Hz buzz with a 2.5 Hz syllable envelope."""
    import numpy as np

    n = int(seconds * RATE)
    if FIXTURES.is_dir():
        from myspinbot.video import load_audio

        left, rate_l = load_audio(FIXTURES / "speech_front_left.wav")
        right, rate_r = load_audio(FIXTURES / "speech_front_right.wav")
        assert rate_l == rate_r == RATE
        pause = lambda s: np.zeros((1, int(s * RATE)), np.float32)  # noqa: E731
        unit = np.concatenate([left[:1], pause(0.25), right[:1], pause(0.4)], axis=1)
        out = np.empty((1, n), np.float32)
        for start in range(0, n, unit.shape[1]):
            stop = min(n, start + unit.shape[1])
            out[0, start:stop] = unit[0, : stop - start]
        return out, "fixture speech (front_left + front_right, repeated)"
    out = np.empty((1, n), np.float32)
    block = RATE
    for start in range(0, n, block):
        t = np.arange(start, min(n, start + block)) / RATE
        env = np.clip(np.sin(2 * np.pi * 2.5 * t), 0, None) ** 2
        out[0, start:start + t.size] = 0.3 * env * np.sign(np.sin(2 * np.pi * 140 * t))
    return out, "synthetic buzz with a 2.5 Hz syllable envelope (fixtures missing)"


def portrait():
    """``(uint8 [H, W, 3] RGB portrait, description)``: ``portrait_astronaut.png`` (512²) or a
    drawn cartoon face of the same size."""
    import cv2
    import numpy as np

    path = FIXTURES / "portrait_astronaut.png"
    if path.is_file():
        return cv2.cvtColor(cv2.imread(str(path), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB), "portrait_astronaut.png"
    size, c = 512, 256
    img = np.full((size, size, 3), (120, 140, 170), np.uint8)
    cv2.ellipse(img, (c, c), (102, 138), 0, 0, 360, (225, 180, 150), -1)
    for dx in (-1, 1):
        ex, ey = c + dx * 43, c - 26
        cv2.ellipse(img, (ex, ey - 23), (26, 6), 0, 0, 360, (90, 60, 40), -1)
        cv2.ellipse(img, (ex, ey), (20, 10), 0, 0, 360, (250, 250, 250), -1)
        cv2.circle(img, (ex, ey), 9, (50, 30, 20), -1)
    cv2.ellipse(img, (c, c + 31), (13, 20), 0, 0, 360, (200, 150, 125), -1)
    cv2.ellipse(img, (c, c + 72), (36, 9), 0, 0, 360, (170, 80, 80), -1)
    return cv2.GaussianBlur(img, (0, 0), 2), "drawn cartoon face (fixtures missing)"
