"""Tier 1: SadTalker end to end on the real portrait and recording, full-size random weights.

``portrait_astronaut.png`` (512 x 512) and ``speech_front_left.wav`` (1.48 s) through the real
code path (five points, crop, the regressor, audio -> coefficients, renderer, MP4 with the
speech muxed) at 128 x 128 with ``max_frames`` (the renderer costs tens of seconds per frame
on this CPU); the full mode pastes the face back into the portrait. Random weights make
meaningless pictures: these tests check the plumbing, the sizes, the frame count and that the
same seed gives the same coefficients.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from sadtalker_layout import randomize

from myspinbot.errors import InvalidInputError, NoFaceDetectedError
from myspinbot.sadtalker import MappingConfig, MappingNet, SadTalkerNets, build_networks
from myspinbot.sadtalker.engine import SadTalkerSettings, talking_head
from myspinbot.sadtalker.landmarks import five_points
from myspinbot.speech.audio_io import load_audio
from myspinbot.video.probe import probe_media

FIXTURES = Path(__file__).resolve().parents[3] / "shared" / "fixtures"


@pytest.fixture(scope="module")
def inputs():
    portrait, speech = FIXTURES / "portrait_astronaut.png", FIXTURES / "speech_front_left.wav"
    if not (portrait.is_file() and speech.is_file()):
        pytest.skip(f"fixtures missing in {FIXTURES}")
    samples, rate = load_audio(speech)
    return np.asarray(Image.open(portrait).convert("RGB")), samples, rate


@pytest.fixture(scope="module")
def nets():
    built = build_networks()
    for model in built.values():
        model.load_state_dict(randomize(model.state_dict(), seed=21))
        model.eval()
    return SadTalkerNets(**built)


def _mapping(channels: int) -> MappingNet:
    model = MappingNet(MappingConfig(coeff_channels=channels))
    model.load_state_dict(randomize(model.state_dict(), seed=22))
    return model.eval()


def test_five_points_on_the_portrait(inputs):
    image = inputs[0]
    p = five_points(image)
    assert p.shape == (5, 2)
    assert p[0, 0] < p[2, 0] < p[1, 0] and p[3, 0] < p[2, 0] < p[4, 0]  # left/right around the nose
    assert max(p[0, 1], p[1, 1]) < p[2, 1] < min(p[3, 1], p[4, 1])  # eyes, nose, mouth downwards
    with pytest.raises(NoFaceDetectedError):
        five_points(np.full((200, 200, 3), 128, dtype=np.uint8))


@pytest.mark.slow
def test_crop_mode_renders_two_frames_with_the_speech(inputs, nets, tmp_path):
    image, samples, rate = inputs
    calls = []
    settings = SadTalkerSettings(size=128, max_frames=2, batch_size=2, seed=5)
    result = talking_head(nets, _mapping(70), image, samples, rate, tmp_path / "crop.mp4", settings,
                          progress=lambda done, total: calls.append((done, total)), check_interrupt=lambda: None)
    info = probe_media(result.path)
    assert result.frames == 2 and calls == [(2, 2)]
    assert (info["video"]["width"], info["video"]["height"]) == (result.width, result.height) == (128, 128)
    assert info["video"]["frame_count"] == 2 and info["audio"] is not None
    assert info["audio"]["duration_s"] == pytest.approx(2 / 25, abs=0.03)
    assert result.coeffs.shape == (2, 70) and result.source_coeffs.shape == (73,)


@pytest.mark.slow
def test_full_mode_pastes_into_the_portrait(inputs, nets, tmp_path):
    image, samples, rate = inputs
    settings = SadTalkerSettings(size=128, preprocess="full", max_frames=1, seed=5, still=True)
    result = talking_head(nets, _mapping(73), image, samples, rate, tmp_path / "full.mp4", settings)
    info = probe_media(result.path)
    assert (info["video"]["width"], info["video"]["height"]) == (512, 512) and info["video"]["frame_count"] == 1


def test_settings_are_checked(inputs, nets, tmp_path):
    image, samples, rate = inputs
    with pytest.raises(InvalidInputError, match="mapping_00109"):
        talking_head(nets, _mapping(70), image, samples, rate, tmp_path / "x.mp4", SadTalkerSettings(preprocess="full"))
    with pytest.raises(InvalidInputError, match="preprocess"):
        talking_head(nets, _mapping(70), image, samples, rate, tmp_path / "x.mp4", SadTalkerSettings(preprocess="x"))
    with pytest.raises(InvalidInputError, match="shorter than one video frame"):
        talking_head(nets, _mapping(70), image, samples[:, :100], rate, tmp_path / "x.mp4",
                     SadTalkerSettings(size=128))
    assert not (tmp_path / "x.mp4").exists()


def test_interrupt_removes_the_partial_file(inputs, nets, tmp_path):
    image, samples, rate = inputs

    def stop():
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        talking_head(nets, _mapping(70), image, samples, rate, tmp_path / "stop.mp4",
                     SadTalkerSettings(size=128, max_frames=2), check_interrupt=stop)
    assert not (tmp_path / "stop.mp4").exists()
