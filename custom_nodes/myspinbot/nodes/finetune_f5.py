"""Node "MySpinBot Fine-tune F5-TTS Voice": minutes of one speaker's clips with transcripts → an
F5-TTS checkpoint in ``models/f5_tts/myspinbot/<name>/`` that the voice clone node lists as
``myspinbot/<name>``.

The clips (a folder under ComfyUI's ``input/`` with a ``metadata.csv`` of ``file|text`` lines,
and/or an AUDIO batch with one transcript line per item) become the package's dataset layout
(``speech.f5.finetune_data``) and are trained by the ``f5-tts`` package's ``Trainer``
(``speech.f5.finetune``), starting from the chosen base model. Every ``save_every`` steps the
training state (``train/model_last.pt``) and the voice checkpoint are saved; running again with
``resume`` on continues from the saved step. Each step moves the progress bar, shows its loss
and checks ComfyUI's interrupt.
"""

from __future__ import annotations

import dataclasses
import logging
import shutil
from pathlib import Path

import yaml
from comfy_api.latest import io, ui

from ..errors import InvalidInputError
from ..speech import f5 as f5_engine
from ..speech.f5 import finetune as ft
from ..speech.f5 import finetune_data as fd
from ._convert import audio_to_numpy
from ._f5_finetunes import CONFIG, PREFIX, VOCAB, finetune_dir, safe_voice_name
from ._progress import progress_callback, progress_text
from .voice_clone import LICENCE_NOTE, _model_names

log = logging.getLogger("myspinbot")


def _base_files(model: str):
    """(checkpoint, vocab, model config) of a base model from the manifest's folder."""
    from ._folders import comfy_locator

    files = comfy_locator().find(model)
    checkpoint = next((p for name, p in files.items() if name.endswith((".safetensors", ".pt"))), None)
    if checkpoint is None or "vocab.txt" not in files:
        raise InvalidInputError(f"model '{model}' has no checkpoint and vocab.txt in the manifest")
    return checkpoint, files["vocab.txt"], f5_engine.model_config_for(checkpoint, model)


def _clips(folder: str, audio: dict | None, transcripts: str) -> list:
    """(name, samples, rate, text) of the AUDIO batch (one transcript line per item) and the folder."""
    import folder_paths

    clips = []
    if audio is not None:
        lines = [line.strip() for line in str(transcripts or "").splitlines() if line.strip()]
        count = int(audio["waveform"].shape[0])
        if len(lines) != count:
            raise InvalidInputError(f"the audio batch holds {count} clip(s) but 'transcripts' has {len(lines)} "
                                    "line(s): give one line per clip")
        for index, text in enumerate(lines):
            samples, rate = audio_to_numpy({"waveform": audio["waveform"][index:index + 1],
                                            "sample_rate": audio["sample_rate"]})
            clips.append((f"audio[{index}]", samples, rate, text))
    if str(folder or "").strip():
        root = Path(folder_paths.get_input_directory()).resolve()
        path = (root / folder).resolve()
        if path != root and root not in path.parents:
            raise InvalidInputError(f"folder '{folder}' is outside ComfyUI's input folder")
        clips += fd.load_clips(fd.read_metadata(path))
    if not clips:
        raise InvalidInputError("connect audio (with transcripts) or name a folder under input/ holding the clips "
                                "and a metadata.csv ('file|text' per line)")
    return clips


def _write_sidecars(target, vocab, model_cfg) -> None:
    """The fine-tune's own vocab.txt and model_config.yaml (the base's), as ``model_config_for`` reads them."""
    shutil.copyfile(vocab, target / VOCAB)
    section = f5_engine.package_config(model_cfg) if isinstance(model_cfg, str) or model_cfg is None else dict(model_cfg)
    if isinstance(model_cfg, str):
        section["name"] = model_cfg
    (target / CONFIG).write_text(yaml.safe_dump({"model": section}, sort_keys=False), encoding="utf-8")


class FineTuneF5Voice(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="MySpinBotFineTuneF5Voice",
            display_name="MySpinBot Fine-tune F5-TTS Voice",
            category="MySpinBot/training",
            description="Fine-tunes F5-TTS on minutes of one speaker's speech (clips of 0.3-30 s with exact "
            "transcripts) with the f5-tts package's own trainer. Saves models/f5_tts/myspinbot/<name>/ every "
            "'save_every' steps and at the end; the voice clone node lists it as myspinbot/<name>. Needs a GPU "
            "for useful step counts (F5TTS_v1_Base: about 16 GB of VRAM at 3200 frames per batch; the training "
            "state kept for resume is about 5 GB). " + LICENCE_NOTE,
            is_output_node=True,
            inputs=[
                io.Combo.Input("base_model", options=_model_names(), default=f5_engine.DEFAULT_MODEL,
                               tooltip="The F5-TTS model to start from (models/f5_tts/<name>/)."),
                io.String.Input("output_name", default="voice",
                                tooltip="Folder and file name under models/f5_tts/myspinbot/."),
                io.String.Input("folder", default="", optional=True,
                                tooltip="A folder under ComfyUI's input/ holding the clips and a metadata.csv "
                                "('file|text' per line, file relative to the folder)."),
                io.Audio.Input("audio", optional=True, tooltip="And/or clips as an AUDIO batch (one clip per item)."),
                io.String.Input("transcripts", default="", multiline=True, optional=True,
                                tooltip="Exactly what is said in each item of 'audio', one line per item."),
                io.Int.Input("steps", default=2000, min=1, max=1000000, tooltip="Total optimizer updates."),
                io.Float.Input("learning_rate", default=0.00001, min=0.0000001, max=0.01, step=0.0000001),
                io.Int.Input("batch_frames", default=3200, min=100, max=100000,
                             tooltip="Mel frames per batch (3200 = 34 s of audio); lower it if VRAM runs out."),
                io.Int.Input("seed", default=0, min=0, max=0xFFFFFFFF),
                io.Int.Input("save_every", default=200, min=0, max=1000000,
                             tooltip="Save every this many steps (0: only at the end)."),
                io.Boolean.Input("resume", default=True,
                                 tooltip="Continue from this name's saved training state (off: start again from the base)."),
                io.Combo.Input("weights", options=list(ft.WEIGHTS), default="online", advanced=True,
                               tooltip="Which weights to save: the trained ones, or their moving average (EMA: "
                               "only useful after tens of thousands of steps)."),
            ],
            outputs=[
                io.Combo.Output("model", tooltip="The voice as the voice clone node's 'model' lists it (myspinbot/<name>)."),
                io.String.Output("model_name", tooltip="The same name, as text."),
                io.Int.Output("steps", tooltip="Steps the saved voice has been trained for."),
                io.Custom("LOSS_MAP").Output("loss", tooltip="This run's losses, for core's Plot Loss Graph."),
                io.String.Output("report"),
            ],
            hidden=[io.Hidden.unique_id],
        )

    @classmethod
    def execute(cls, base_model: str, output_name: str, folder: str = "", audio=None, transcripts: str = "",
                steps: int = 2000, learning_rate: float = 1e-5, batch_frames: int = 3200, seed: int = 0,
                save_every: int = 200, resume: bool = True, weights: str = "online") -> io.NodeOutput:
        import comfy.model_management as mm
        import torch

        name = safe_voice_name(output_name)
        settings = ft.FineTuneSettings(steps=int(steps), learning_rate=float(learning_rate),
                                       batch_frames=int(batch_frames), seed=int(seed), save_every=int(save_every),
                                       weights=weights)
        settings.check()
        checkpoint, vocab, model_cfg = _base_files(base_model)
        target = finetune_dir(name)
        data = fd.prepare_finetune_data(_clips(folder, audio, transcripts), vocab, target / "train" / "data")
        _write_sidecars(target, vocab, model_cfg)
        device = mm.get_torch_device()
        on_cuda = device.type == "cuda"
        if on_cuda and torch.cuda.is_bf16_supported():
            settings = dataclasses.replace(settings, mixed_precision="bf16")
        mm.unload_all_models()  # training needs the memory
        mm.soft_empty_cache()
        node_id = cls.hidden.unique_id if cls.hidden is not None else None
        bar = progress_callback(int(steps))

        def on_step(step: int, total: int, loss: float) -> None:
            bar(step, total)  # raises InterruptProcessingException when cancelled
            progress_text(node_id, f"step {step}/{total}  loss {loss:.4f}")
            log.info("myspinbot F5 fine-tune %s: step %d/%d loss %.5f", name, step, total, loss)

        result = ft.fine_tune(data, checkpoint, vocab, target / f"{name}.safetensors", target / "train", settings,
                              model_cfg=model_cfg, base_name=base_model, device="cuda" if on_cuda else "cpu",
                              resume=bool(resume), on_step=on_step,
                              check_interrupt=mm.throw_exception_if_processing_interrupted)
        listed = PREFIX + name
        last = f", last loss {result.losses[-1]:.4f}" if result.losses else ""
        text = (f"{data.clips} clips, {data.seconds:.1f} s of speech; trained steps {result.start_step + 1}-"
                f"{result.steps}{last}; saved {listed}") if result.losses else \
            f"{data.clips} clips, {data.seconds:.1f} s of speech; already trained for {result.steps} steps; saved {listed}"
        return io.NodeOutput(listed, listed, result.steps, {"loss": list(result.losses)}, text, ui=ui.PreviewText(text))
