"""F5-TTS fine-tuning (``speech.f5.finetune_data`` + ``speech.f5.finetune``) on the tiny random
F5 model of ``tiny_f5`` and the real recordings of the fixtures ("Front left", "Front right").

The dataset is written in the layout the package's ``CustomDataset`` reads and trained by the
package's own ``Trainer``; the result must load through ``load_f5`` unchanged and speak.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("f5_tts", reason="f5-tts is not installed (pip install --no-deps f5-tts; see requirements.txt)")

import torch  # noqa: E402
from safetensors.torch import load_file  # noqa: E402

from myspinbot.errors import InvalidInputError, ModelsMissingError  # noqa: E402
from myspinbot.speech import f5  # noqa: E402
from myspinbot.speech.audio_io import load_audio  # noqa: E402
from myspinbot.speech.f5 import finetune as ft  # noqa: E402
from myspinbot.speech.f5 import finetune_data as fd  # noqa: E402
from tiny_f5 import SR, TINY_ARCH, build_tiny_f5  # noqa: E402

SETTINGS = dict(learning_rate=1e-3, batch_frames=200, max_samples=1, save_every=1, seed=5)


class StandInInterrupt(Exception):
    """Plays ComfyUI's InterruptProcessingException."""


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return build_tiny_f5(tmp_path_factory.mktemp("f5ft") / "models")


@pytest.fixture(scope="module")
def clips(fixtures_dir):
    return fd.load_clips([(fixtures_dir / "speech_front_left.wav", "Front left"),
                          (fixtures_dir / "speech_front_right.wav", "Front right")])


@pytest.fixture(scope="module")
def data(clips, tiny, tmp_path_factory):
    return fd.prepare_finetune_data(clips, tiny["vocab"], tmp_path_factory.mktemp("f5ft_data") / "data")


def _package_files() -> set[str]:
    from importlib.resources import files

    root = Path(str(files("f5_tts"))).parent.parent  # site-packages (where finetune_cli writes ckpts/ and data/)
    return {str(p) for p in root.glob("*")} | {str(p) for p in Path(str(files("f5_tts"))).rglob("*")
                                               if "__pycache__" not in p.parts}


def test_dataset_is_written_in_the_custom_dataset_layout(data, clips, tiny):
    root = data.directory
    assert data.clips == 2
    expected = [c[1].shape[1] / c[2] for c in clips]
    assert data.durations == pytest.approx(expected, abs=1e-3)
    assert data.seconds == pytest.approx(sum(expected), abs=1e-3)
    assert (root / "vocab.txt").read_bytes() == Path(tiny["vocab"]).read_bytes()
    assert (root / "metadata.csv").read_text().splitlines() == ["audio_file|text", "wavs/0000.wav|Front left",
                                                               "wavs/0001.wav|Front right"]
    wav, rate = load_audio(root / "wavs" / "0000.wav")
    assert rate == SR and wav.shape[0] == 1
    dataset = fd.open_finetune_data(root)
    assert len(dataset) == 2
    item = dataset[1]
    assert item["text"] == list("Front right")
    frames = item["mel_spec"].shape
    assert frames[0] == 100 and abs(frames[1] - data.durations[1] * SR / 256) <= 2
    assert dataset.get_frame_len(0) == pytest.approx(data.durations[0] * SR / 256)


def test_metadata_csv_is_read_and_checked(tmp_path, fixtures_dir):
    wav = tmp_path / "a.wav"
    wav.write_bytes((fixtures_dir / "speech_front_left.wav").read_bytes())
    (tmp_path / "metadata.csv").write_text("audio_file|text\na.wav|Front left\n\n" + f"{wav}|Front | left\n")
    assert fd.read_metadata(tmp_path) == [(wav, "Front left"), (wav, "Front | left")]
    (tmp_path / "metadata.csv").write_text("a.wav\n")
    with pytest.raises(InvalidInputError, match="line 1: expected 'file|text'"):
        fd.read_metadata(tmp_path)
    (tmp_path / "metadata.csv").write_text("b.wav|Hello\n")
    with pytest.raises(InvalidInputError, match="'b.wav' not found"):
        fd.read_metadata(tmp_path)
    (tmp_path / "metadata.csv").write_text("a.wav|  \n")
    with pytest.raises(InvalidInputError, match="transcript of 'a.wav' is empty"):
        fd.read_metadata(tmp_path)
    os.remove(tmp_path / "metadata.csv")
    with pytest.raises(InvalidInputError, match="metadata.csv not found"):
        fd.read_metadata(tmp_path)


def test_unusable_clips_are_refused_with_the_pack_error(clips, tiny, tmp_path):
    _, samples, rate, _ = clips[0]
    cases = [
        ([("snow.wav", samples, rate, "Front ☃ left")], "vocab lacks: '☃'"),
        ([("short.wav", samples[:, : rate // 10], rate, "Front")], "0.10 s long"),
        ([("long.wav", np.tile(samples, 21), rate, "Front left")], "fine-tuning clips must be 0.3-30 s"),
        ([("quiet.wav", samples, rate, "  ")], "transcript of clip 'quiet.wav' is empty"),
        ([], "no clips"),
    ]
    for bad, message in cases:
        with pytest.raises(InvalidInputError, match=message) as err:
            fd.prepare_finetune_data(bad, tiny["vocab"], tmp_path / "data")
        assert err.value.code == "invalid_input"


def test_two_steps_then_resume_then_nothing_left(data, tiny, tmp_path, fixtures_dir):
    before = _package_files()
    out, work = tmp_path / "out" / "voice.safetensors", tmp_path / "work"
    calls = []

    def run(steps, **kw):
        return ft.fine_tune(data, tiny["checkpoint"], tiny["vocab"], out, work, ft.FineTuneSettings(steps=steps, **SETTINGS),
                            model_cfg=TINY_ARCH, base_name="tiny", on_step=lambda *a: calls.append(a), **kw)

    first = run(2)
    assert (first.start_step, first.steps, len(first.losses)) == (0, 2, 2)
    assert all(math.isfinite(x) for x in first.losses)
    assert [c[:2] for c in calls] == [(1, 2), (2, 2)] and [c[2] for c in calls] == list(first.losses)
    meta = ft.read_metadata(out)
    assert meta["steps"] == "2" and meta["clips"] == "2" and meta["base_model"] == "tiny"
    assert meta["weights"] == "online" and float(meta["seconds"]) == pytest.approx(data.seconds, abs=0.01)
    saved = load_file(str(out))
    assert set(saved) == {f"ema_model.{k}" for k in tiny["model_sd"]} | {"initted", "step"}
    assert int(saved["step"]) == 2
    changed = [k for k, v in tiny["model_sd"].items() if not torch.equal(saved[f"ema_model.{k}"], v)]
    assert changed  # the weights were trained

    bundle = f5.load_f5(out, tiny["vocab"], tiny["vocoder_dir"], model_cfg=TINY_ARCH)  # unchanged loader
    ref, ref_sr = load_audio(fixtures_dir / "speech_front_left.wav")
    speech, sr = f5.synthesize_clone(bundle, ref, ref_sr, "Front left", "Hello there.", seed=1, nfe_step=2)
    assert sr == SR and speech.shape[1] > 0 and np.all(np.isfinite(speech))

    calls.clear()
    resumed = run(3)
    assert (resumed.start_step, resumed.steps, len(resumed.losses)) == (2, 3, 1)
    assert calls == [(3, 3, resumed.losses[0])]
    assert ft.read_metadata(out)["steps"] == "3"
    calls.clear()
    again = run(3)
    assert (again.start_step, again.steps, again.losses, calls) == (3, 3, (), [])
    assert (work / "model_last.pt").is_file()
    assert _package_files() == before  # nothing written into site-packages


def test_interrupt_keeps_the_last_save_and_resume_continues_from_it(data, tiny, tmp_path):
    out, work = tmp_path / "voice.safetensors", tmp_path / "work"
    checks = []

    def check_interrupt():
        checks.append(1)
        if len(checks) == 2:  # before update 2: update 1 is saved (save_every=1)
            raise StandInInterrupt()

    with pytest.raises(StandInInterrupt):
        ft.fine_tune(data, tiny["checkpoint"], tiny["vocab"], out, work, ft.FineTuneSettings(steps=3, **SETTINGS),
                     model_cfg=TINY_ARCH, check_interrupt=check_interrupt)
    assert ft.read_metadata(out)["steps"] == "1"
    result = ft.fine_tune(data, tiny["checkpoint"], tiny["vocab"], out, work, ft.FineTuneSettings(steps=2, **SETTINGS),
                          model_cfg=TINY_ARCH)
    assert (result.start_step, result.steps) == (1, 2)
    fresh = ft.fine_tune(data, tiny["checkpoint"], tiny["vocab"], out, work,
                         ft.FineTuneSettings(steps=1, **SETTINGS), model_cfg=TINY_ARCH, resume=False)
    assert (fresh.start_step, fresh.steps) == (0, 1)


def test_one_clip_one_step(clips, tiny, tmp_path):
    # one batch per epoch and one step: the package's scheduler still gets a decay phase
    data = fd.prepare_finetune_data(clips[:1], tiny["vocab"], tmp_path / "data")
    result = ft.fine_tune(data, tiny["checkpoint"], tiny["vocab"], tmp_path / "v.safetensors", tmp_path / "work",
                          ft.FineTuneSettings(steps=1, **SETTINGS), model_cfg=TINY_ARCH)
    assert (result.steps, len(result.losses)) == (1, 1) and math.isfinite(result.losses[0])


def test_ema_weights_can_be_exported(data, tiny, tmp_path):
    out = tmp_path / "voice.safetensors"
    settings = ft.FineTuneSettings(steps=1, weights="ema", **SETTINGS)
    ft.fine_tune(data, tiny["checkpoint"], tiny["vocab"], out, tmp_path / "work", settings, model_cfg=TINY_ARCH)
    assert ft.read_metadata(out)["weights"] == "ema"
    f5.load_f5(out, tiny["vocab"], tiny["vocoder_dir"], model_cfg=TINY_ARCH)


def test_bad_settings_and_missing_files_are_the_pack_errors(data, tiny, tmp_path):
    def run(settings, checkpoint=tiny["checkpoint"]):
        ft.fine_tune(data, checkpoint, tiny["vocab"], tmp_path / "o.safetensors", tmp_path / "w", settings,
                     model_cfg=TINY_ARCH)

    with pytest.raises(InvalidInputError, match="steps must be at least 1"):
        run(ft.FineTuneSettings(steps=0))
    with pytest.raises(InvalidInputError, match="weights must be"):
        run(ft.FineTuneSettings(steps=1, weights="best"))
    with pytest.raises(InvalidInputError, match="raise batch_frames"):
        run(ft.FineTuneSettings(steps=1, batch_frames=50))
    with pytest.raises(ModelsMissingError, match="base checkpoint"):
        run(ft.FineTuneSettings(steps=1), checkpoint=tmp_path / "nope.safetensors")
