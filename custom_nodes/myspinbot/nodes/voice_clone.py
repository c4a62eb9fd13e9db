"""Node "MySpinBot Voice Clone (F5-TTS)": reference voice + its transcript + a text → AUDIO.

Memory: the loaded model (the engine's cached ``F5Bundle``) is handed to ComfyUI's model
management as a ``ModelPatcher``, the way ComfyUI's own upscale-model node handles a plain
torch module: ``load_models_gpu`` moves it to the GPU before each run (unloading other models
if VRAM is short) and ComfyUI moves it back to the offload device when it needs the VRAM.
When ComfyUI unloads it (the "Unload models" / "Free model and node cache" buttons and
``POST /free`` call ``unload_all_models``; memory pressure from other models does the same),
the patcher's ``ON_DETACH`` callback also drops the engine's cache entry, so the weights
leave RAM too (a moment later: ``_park``) and the next run loads them again from disk.
"""

from __future__ import annotations

import threading

import torch
from comfy_api.latest import io

from ..errors import InvalidInputError
from ..speech import f5 as f5_engine
from ._convert import audio_to_numpy, numpy_to_audio
from ._f5_finetunes import finetune_files, finetune_names, is_finetune
from ._folders import comfy_locator
from ._progress import progress_callback

VOCODER_MODEL = "vocos_mel_24khz"
PATCHER_KEY = "comfy_patcher"
LICENCE_NOTE = ("The F5-TTS weights are licensed CC-BY-NC-4.0: non-commercial use only "
                "(the F5-TTS code is MIT; the Vocos vocoder is MIT).")


def _model_names() -> list[str]:
    """F5-TTS models the manifest lists (folder ``f5_tts``), for the dropdown."""
    try:
        from ..models.manifest import load_manifest

        names = [name for name, entry in load_manifest().items() if entry.folder == "f5_tts"]
    except Exception:  # a broken manifest must not keep the node from registering
        names = []
    return names or [f5_engine.DEFAULT_MODEL]


def _model_choices() -> list[str]:
    """The dropdown: the manifest's models, then the fine-tuned voices (``myspinbot/<name>``)."""
    try:
        tuned = finetune_names()
    except Exception:  # an unreadable models folder must not keep the node from registering
        tuned = []
    return _model_names() + tuned


def _attach_patcher(bundle: f5_engine.F5Bundle, load_device, offload_device):
    """Wrap the bundle's modules in a ModelPatcher whose unload also releases the cache entry."""
    import comfy.model_patcher
    from comfy.patcher_extension import CallbacksMP

    modules = torch.nn.ModuleDict({"model": bundle.model, "vocoder": bundle.vocoder})
    patcher = comfy.model_patcher.ModelPatcher(modules, load_device=load_device, offload_device=offload_device)
    key = bundle.key

    def on_detach(detached, unpatch_all: bool) -> None:
        # load_models_gpu re-seats an already loaded model with unpatch_all=False; only a real
        # unload (LoadedModel.model_unload → detach(True)) releases the weights.
        if unpatch_all:
            f5_engine.release(key)
            _park(detached)

    patcher.add_callback(CallbacksMP.ON_DETACH, on_detach)
    bundle.extras[PATCHER_KEY] = patcher
    return patcher


_parked: list = []
_parked_lock = threading.Lock()
PARK_SECONDS = 2.0


def _park(patcher) -> None:
    """Keep an unloaded patcher (and so its weights) alive for ``PARK_SECONDS`` more.

    ComfyUI's ``free_memory`` reads ``current_loaded_models[i].model`` right after
    ``model_unload`` returns, and ``model_unload`` detaches the weights' finalizer only after the
    ON_DETACH callbacks ran: freeing the weights inside the callback would run ComfyUI's
    ``cleanup_models`` in the middle of that loop, which then fails with ``IndexError`` (and,
    from ``POST /free``, stops ComfyUI's prompt worker). Dropped from a timer thread instead."""
    with _parked_lock:
        _parked.append(patcher)
    timer = threading.Timer(PARK_SECONDS, _drop_parked, args=(patcher,))
    timer.daemon = True
    timer.start()


def _drop_parked(patcher) -> None:
    with _parked_lock:
        if any(p is patcher for p in _parked):
            _parked.remove(patcher)


def load_bundle(model_name: str) -> f5_engine.F5Bundle:
    """Find the model files (``ModelsMissingError`` if absent), load them once (cached) and
    have ComfyUI place them on its inference device."""
    import comfy.model_management as mm

    locator = comfy_locator()
    vocoder_files = locator.find(VOCODER_MODEL)
    if is_finetune(model_name):  # models/f5_tts/myspinbot/<name>/: its model_config.yaml names the architecture
        checkpoint, vocab = finetune_files(model_name)
        files = {"vocab.txt": vocab}
    else:
        files = locator.find(model_name)
        checkpoint = next((p for name, p in files.items() if name.endswith((".safetensors", ".pt"))), None)
    if checkpoint is None or "vocab.txt" not in files:
        raise InvalidInputError(f"model '{model_name}' has no checkpoint and vocab.txt in the manifest")
    load_device, offload_device = mm.get_torch_device(), mm.unet_offload_device()
    dtype = torch.float16 if load_device.type == "cuda" and mm.should_use_fp16(load_device) else None
    bundle = f5_engine.get_f5(checkpoint, files["vocab.txt"], vocoder_files["config.yaml"].parent,
                              device=offload_device, model_cfg=f5_engine.model_config_for(checkpoint, model_name), dtype=dtype)
    patcher = bundle.extras.get(PATCHER_KEY) or _attach_patcher(bundle, load_device, offload_device)
    mm.load_models_gpu([patcher], force_full_load=True)
    return bundle


class VoiceCloneF5(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="MySpinBotVoiceCloneF5",
            display_name="MySpinBot Voice Clone (F5-TTS)",
            category="MySpinBot/speech",
            description="Speaks a text in the voice of a short reference recording with F5-TTS "
            "(zero-shot voice cloning; the reference is cut to at most 12 s, long texts are "
            "generated sentence by sentence and cross-faded). Needs the F5TTS_v1_Base and "
            "vocos_mel_24khz models. " + LICENCE_NOTE,
            inputs=[
                io.Audio.Input("ref_audio", tooltip="A clean recording of the voice to clone, 3-12 s. A longer one is cut at a pause "
                               "before 12 s (ref_text should then say only what is spoken in the kept part)."),
                io.String.Input("ref_text", default="", tooltip="Exactly what is said in ref_audio (required: no speech recognition is run)."),
                io.String.Input("text", multiline=True, default="Hello from myspinbot.", tooltip="What to say."),
                io.Float.Input("speed", default=1.0, min=0.3, max=2.0, step=0.05, tooltip="Speaking speed (1.0 = the reference's pace)."),
                io.Int.Input("seed", default=0, min=0, max=0xFFFFFFFFFFFFFFFF, control_after_generate=True,
                             tooltip="Same seed, same settings: same audio."),
                io.Float.Input("cross_fade", default=f5_engine.DEFAULT_CROSS_FADE_S, min=0.0, max=1.0, step=0.01,
                               tooltip="Seconds of cross-fade between the generated chunks."),
                io.Int.Input("nfe_steps", default=f5_engine.DEFAULT_NFE_STEPS, min=4, max=64,
                             tooltip="Sampling steps per chunk (more: slower, a little cleaner)."),
                io.Combo.Input("model", options=_model_choices(), default=f5_engine.DEFAULT_MODEL,
                               tooltip="F5-TTS checkpoint (models/f5_tts/<name>/), or a voice fine-tuned with "
                               "'MySpinBot Fine-tune F5-TTS Voice' (myspinbot/<name>). " + LICENCE_NOTE),
            ],
            outputs=[io.Audio.Output("audio", tooltip="The cloned voice, mono 24 kHz.")],
        )

    @classmethod
    def execute(cls, ref_audio: dict, ref_text: str, text: str, speed: float, seed: int, cross_fade: float,
                nfe_steps: int, model: str) -> io.NodeOutput:
        import comfy.model_management as mm

        f5_engine.normalise_ref_text(ref_text)  # fail fast, before loading 1.3 GB
        if not str(text).strip():
            raise InvalidInputError("text is empty: nothing to say")
        samples, sample_rate = audio_to_numpy(ref_audio)
        bundle = load_bundle(model)

        progress = None

        def on_chunk(done: int, total: int) -> None:
            nonlocal progress
            if progress is None:
                progress = progress_callback(total)
            progress(done, total)  # raises InterruptProcessingException when cancelled

        out, out_rate = f5_engine.synthesize_clone(
            bundle, samples, sample_rate, ref_text, text, speed=speed, seed=seed, cross_fade_s=cross_fade,
            nfe_step=nfe_steps, on_chunk=on_chunk, check_interrupt=mm.throw_exception_if_processing_interrupted,
        )
        return io.NodeOutput(numpy_to_audio(out, out_rate))
