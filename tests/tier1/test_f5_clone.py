"""F5 voice clone on a tiny randomly initialised F5-TTS and Vocos.

The tiny models are built from the ``f5-tts`` package's own ``DiT``/``CFM`` classes and
``vocos``' own classes (small dims, the real mel settings: 24 kHz, 100 mels, hop 256), saved
like the real downloads (EMA safetensors with ``ema_model.`` keys, the package's vocab.txt,
a Vocos ``config.yaml``) in a temporary ``models/`` tree, and loaded through ``load_f5``,
the code path of the real checkpoint, with strict key checking.
"""

from __future__ import annotations

import shutil
import time

import numpy as np
import pytest

pytest.importorskip("f5_tts", reason="f5-tts is not installed (pip install --no-deps f5-tts; see requirements.txt)")

import torch  # noqa: E402

from myspinbot.errors import InvalidInputError, ModelsMissingError, SpeechEngineError  # noqa: E402
from myspinbot.speech.audio_io import load_audio  # noqa: E402
from myspinbot.speech import f5  # noqa: E402
from tiny_f5 import HOP, LONG_TEXT, REF_TEXT, SR, TINY_ARCH, build_tiny_f5, expected_length  # noqa: E402

NFE = 4  # few sampling steps keep the tests fast


class StandInInterrupt(Exception):
    """Plays ComfyUI's InterruptProcessingException (raised by the node's progress callback)."""


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory):
    return build_tiny_f5(tmp_path_factory.mktemp("f5") / "models")


@pytest.fixture(scope="session")
def bundle(tiny_models):
    t = tiny_models
    return f5.load_f5(t["checkpoint"], t["vocab"], t["vocoder_dir"], device="cpu", model_cfg=TINY_ARCH)


@pytest.fixture(scope="session")
def reference(fixtures_dir):
    return load_audio(fixtures_dir / "speech_front_left.wav")


def test_package_config_is_read_from_the_package():
    cfg = f5.package_config("F5TTS_v1_Base")
    assert cfg["backbone"] == "DiT"
    arch = cfg["arch"]
    assert (arch["dim"], arch["depth"], arch["heads"], arch["ff_mult"], arch["text_dim"], arch["conv_layers"]) == \
        (1024, 22, 16, 2, 512, 4)
    assert cfg["mel_spec"]["target_sample_rate"] == SR and cfg["mel_spec"]["hop_length"] == HOP


def test_load_f5_loads_the_saved_weights_strictly(bundle, tiny_models):
    from f5_tts.model import CFM, DiT
    from vocos import Vocos

    assert isinstance(bundle.model, CFM) and isinstance(bundle.model.transformer, DiT)
    assert isinstance(bundle.vocoder, Vocos)
    assert bundle.sample_rate == SR and bundle.mel_spec_type == "vocos"
    assert bundle.model.transformer.dim == 64 and bundle.model.transformer.depth == 2
    loaded = bundle.model.state_dict()
    assert set(loaded) == set(tiny_models["model_sd"])
    for key, value in tiny_models["model_sd"].items():
        assert torch.equal(loaded[key], value), key
    for key, value in tiny_models["vocos_sd"].items():
        assert torch.equal(bundle.vocoder.state_dict()[key], value), key
    assert not bundle.model.training and not bundle.vocoder.training


def test_vocos_pytorch_model_bin_goes_through_the_package_loader(tiny_models, tmp_path):
    # The hub layout (config.yaml + pytorch_model.bin) is read by f5_tts' own load_vocoder.
    shutil.copyfile(tiny_models["vocoder_dir"] / "config.yaml", tmp_path / "config.yaml")
    torch.save(tiny_models["vocos_sd"], tmp_path / "pytorch_model.bin")
    vocoder = f5.load_vocos(tmp_path)
    for key, value in tiny_models["vocos_sd"].items():
        assert torch.equal(vocoder.state_dict()[key], value), key


def test_checkpoint_that_does_not_fit_the_config_is_a_clear_error(tiny_models):
    t = tiny_models
    wrong = dict(TINY_ARCH, dim=96)
    with pytest.raises(SpeechEngineError, match="cannot load F5-TTS") as err:
        f5.load_f5(t["checkpoint"], t["vocab"], t["vocoder_dir"], model_cfg=wrong)
    assert err.value.code == "speech_failed"


def test_missing_files_are_a_clear_error(tiny_models, tmp_path):
    t = tiny_models
    with pytest.raises(ModelsMissingError, match="model_1250000.safetensors") as err:
        f5.load_f5(tmp_path / "model_1250000.safetensors", t["vocab"], t["vocoder_dir"], model_cfg=TINY_ARCH)
    assert err.value.code == "models_missing"
    with pytest.raises(ModelsMissingError, match="vocoder weights"):
        f5.load_f5(t["checkpoint"], t["vocab"], tmp_path, model_cfg=TINY_ARCH)
    with pytest.raises(InvalidInputError, match="no model config named"):
        f5.load_f5(t["checkpoint"], t["vocab"], t["vocoder_dir"], model_cfg="F5TTS_NoSuchModel")


def test_output_is_24khz_float32_of_the_expected_length_for_text_and_speed(bundle, reference):
    text = "The quick brown fox jumps over the lazy dog."
    lengths = {}
    for speed in (1.0, 2.0):
        samples, sr = f5.synthesize_clone(bundle, reference[0], reference[1], REF_TEXT, text,
                                          speed=speed, seed=3, nfe_step=NFE)
        assert sr == SR
        assert samples.dtype == np.float32 and samples.ndim == 2 and samples.shape[0] == 1
        assert np.all(np.isfinite(samples))
        want, chunks = expected_length(reference, text, speed, 0.15)
        assert len(chunks) == 1
        assert abs(samples.shape[1] - want) <= 2 * HOP
        lengths[speed] = samples.shape[1]
    assert 0.4 < lengths[2.0] / lengths[1.0] < 0.6


def test_same_seed_same_audio_other_seed_other_audio(bundle, reference):
    args = (bundle, reference[0], reference[1], REF_TEXT, "Hello there, how are you today?")
    state = torch.random.get_rng_state()
    a, _ = f5.synthesize_clone(*args, seed=7, nfe_step=NFE)
    b, _ = f5.synthesize_clone(*args, seed=7, nfe_step=NFE)
    c, _ = f5.synthesize_clone(*args, seed=8, nfe_step=NFE)
    assert np.array_equal(a, b)
    assert a.shape == c.shape and not np.array_equal(a, c)
    assert torch.equal(torch.random.get_rng_state(), state)  # the global RNG is left as it was


def test_forty_sentences_are_chunked_with_progress_per_chunk(bundle, reference):
    calls = []
    started = time.monotonic()
    samples, sr = f5.synthesize_clone(bundle, reference[0], reference[1], REF_TEXT, LONG_TEXT,
                                      speed=1.0, seed=0, cross_fade_s=0.15, nfe_step=NFE,
                                      on_chunk=lambda done, total: calls.append((done, total)))
    want, chunks = expected_length(reference, LONG_TEXT, 1.0, 0.15)
    assert len(chunks) > 1
    assert " ".join(chunks) == LONG_TEXT  # split at sentence ends, nothing lost
    assert all(c.endswith(".") for c in chunks)
    assert calls == [(i + 1, len(chunks)) for i in range(len(chunks))]
    assert abs(samples.shape[1] - want) <= 2 * HOP * len(chunks)
    assert time.monotonic() - started < 60


def test_an_exception_from_on_chunk_stops_synthesis(bundle, reference):
    calls = []

    def on_chunk(done, total):
        calls.append(done)
        if done == 2:
            raise StandInInterrupt()

    with pytest.raises(StandInInterrupt):
        f5.synthesize_clone(bundle, reference[0], reference[1], REF_TEXT, LONG_TEXT,
                            nfe_step=NFE, on_chunk=on_chunk)
    assert calls == [1, 2]


def test_check_interrupt_runs_between_sampling_steps(bundle, reference):
    checks = []

    def check_interrupt():
        checks.append(1)
        if len(checks) == 3:  # 1: before the chunk; 2, 3: before sampling steps 1 and 2
            raise StandInInterrupt()

    with pytest.raises(StandInInterrupt):
        f5.synthesize_clone(bundle, reference[0], reference[1], REF_TEXT, "Stop me in the middle, please.",
                            nfe_step=8, check_interrupt=check_interrupt)
    assert len(checks) == 3
    assert not bundle.model.transformer._forward_pre_hooks  # the step hook is removed again
    # and the model still works afterwards
    samples, _ = f5.synthesize_clone(bundle, reference[0], reference[1], REF_TEXT, "Still here.", nfe_step=2)
    assert samples.shape[1] > 0


def test_bad_inputs_are_rejected(bundle, reference):
    ref, sr = reference
    with pytest.raises(InvalidInputError, match="ref_text is required"):
        f5.synthesize_clone(bundle, ref, sr, "  ", "Hello.", nfe_step=NFE)
    with pytest.raises(InvalidInputError, match="text is empty"):
        f5.synthesize_clone(bundle, ref, sr, REF_TEXT, " \n ", nfe_step=NFE)
    with pytest.raises(InvalidInputError, match="speed"):
        f5.synthesize_clone(bundle, ref, sr, REF_TEXT, "Hello.", speed=0, nfe_step=NFE)
    with pytest.raises(InvalidInputError, match="nfe_step"):
        f5.synthesize_clone(bundle, ref, sr, REF_TEXT, "Hello.", nfe_step=0)


def test_cache_loads_once_and_release_drops_it(tiny_models):
    t = tiny_models
    f5.release()
    first = f5.get_f5(t["checkpoint"], t["vocab"], t["vocoder_dir"], "cpu", TINY_ARCH)
    assert f5.get_f5(t["checkpoint"], t["vocab"], t["vocoder_dir"], "cpu", TINY_ARCH) is first
    assert f5.cached_bundles() == [first]
    assert f5.release(first) == 1
    assert f5.cached_bundles() == []
    second = f5.get_f5(t["checkpoint"], t["vocab"], t["vocoder_dir"], "cpu", TINY_ARCH)
    assert second is not first
    assert f5.release() == 1
