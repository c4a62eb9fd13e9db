"""Node "MySpinBot Lip Sync Score": how well the lips in a VIDEO follow its speech (SyncNet).

Loads SyncNet from ComfyUI's ``models/syncnet`` with the strict weights-only loader (once;
kept while the file is unchanged), hands it to ComfyUI's model management as a
``ModelPatcher`` (loaded to the inference device for each run, offloaded when ComfyUI needs
the memory), runs ``lipsync.score_lipsync`` on the video's file and returns the offset,
LSE-D, LSE-C, a picture of the per-second curves and a one-line summary; its UI output
carries the same numbers under ``myspinbot_quality`` (``SyncScore.quality_block``), which
ComfyUI keeps in the prompt's history for the job service.

It is an output node (a workflow runs it without anything downstream). ``on_error="skip"``
(what the job service sets when it adds the node to a job's prompt): a video it cannot score
(no face, too short, the model missing or unusable) gives the block
``{"metric", "model", "skipped": {"code", "message"}}``, offset 0, NaN scores and a blank
curve instead of failing the prompt; an interruption still stops it.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path

import torch
from comfy_api.latest import io

from ..lipsync import ScoreSettings, load_syncnet, score_lipsync
from ..errors import MySpinBotError
from ..lipsync.syncnet_score import QUALITY_UI_KEY, skipped_quality_block
from ..lipsync.score_plot import HEIGHT as PLOT_HEIGHT, WIDTH as PLOT_WIDTH, plot_score
from ._folders import file_choices, folder_file
from ._media import TempFiles, audio_to_wav_file, video_to_file
from ._progress import progress_callback

log = logging.getLogger("myspinbot")

FOLDER = "syncnet"
SUFFIXES = (".model", ".pth", ".pt", ".safetensors")
BYTES_PER_WINDOW = 48 * 1024 * 1024  # rough activation memory of the video tower per window
ON_ERROR = ("fail", "skip")

_cache: dict[tuple, tuple[torch.nn.Module, object]] = {}
_cache_lock = threading.Lock()


def model_choices() -> list[str]:
    """The dropdown: weights in ``models/syncnet`` and the manifest's (syncnet_v2.model)."""
    return file_choices(FOLDER, SUFFIXES)


def load_model(name: str):
    """``(SyncNet, ModelPatcher)`` for ``models/syncnet/<name>``, loaded once per file version.

    Raises:
        ModelsMissingError: absent (the message names the fetch command).
        InvalidModelError: not SyncNet weights (see ``lipsync.load_syncnet``).
    """
    import comfy.model_management as mm
    import comfy.model_patcher

    path = folder_file(FOLDER, name)
    stat = path.stat()
    key = (str(path), stat.st_size, stat.st_mtime_ns)
    with _cache_lock:
        if key not in _cache:
            load_device, offload_device = mm.get_torch_device(), mm.unet_offload_device()
            model = load_syncnet(path, device=offload_device)
            patcher = comfy.model_patcher.ModelPatcher(model, load_device=load_device, offload_device=offload_device)
            _cache.clear()
            _cache[key] = (model, patcher)
        return _cache[key]


class LipSyncScore(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="MySpinBotLipSyncScore",
            display_name="MySpinBot Lip Sync Score",
            category="MySpinBot/lipsync",
            is_output_node=True,
            description="Measures lip sync with SyncNet (Chung & Zisserman 2016) as Wav2Lip's paper does: the face is "
            "tracked and cropped at 25 fps, 0.2 s windows of mouth motion and of speech (MFCC) are embedded, and "
            "their distance is searched over audio offsets of +-15 frames. Outputs the best offset (0 = in sync), "
            "LSE-D (mean distance at that offset, lower is better) and LSE-C (confidence, higher is better).",
            inputs=[
                io.Video.Input("video", tooltip="A video of one speaking face."),
                io.Combo.Input("syncnet_model", options=model_choices(),
                               tooltip="SyncNet weights in models/syncnet (python install.py --models syncnet_v2)."),
                io.Audio.Input("audio", optional=True,
                               tooltip="Score against this speech instead of the video's own audio track."),
                io.Int.Input("vshift", default=15, min=1, max=50,
                             tooltip="Offsets searched on each side, in frames at 25 fps (the authors: 15)."),
                io.Int.Input("detect_every", default=5, min=1, max=25,
                             tooltip="Detect the face on every n-th frame and interpolate between (1 = every frame, slower)."),
                io.Int.Input("batch_size", default=20, min=1, max=256, tooltip="Windows per SyncNet call."),
                io.Combo.Input("on_error", options=list(ON_ERROR), default="fail", optional=True,
                               tooltip="fail: a video that cannot be scored (no face, too short) fails the run; "
                               "skip: it gives offset 0, NaN scores and the reason in the summary instead "
                               "(the job API scores every video this way)."),
            ],
            outputs=[
                io.Int.Output("offset", tooltip="Best audio-video offset in frames at 25 fps; positive: the audio is "
                              "ahead of the lips, negative: behind."),
                io.Float.Output("lse_d", tooltip="LSE-D: mean SyncNet distance at the best offset (lower is better)."),
                io.Float.Output("lse_c", tooltip="LSE-C: median minus minimum of the mean distances over offsets "
                                "(higher is better)."),
                io.Image.Output("curve", tooltip="Confidence and distance per second, as a picture."),
                io.String.Output("summary", tooltip="The scores in one line."),
            ],
        )

    @classmethod
    def validate_inputs(cls, syncnet_model: str) -> bool | str:
        if not str(syncnet_model).lower().endswith(SUFFIXES):
            return f"syncnet_model must be a {', '.join(SUFFIXES)} file, got {syncnet_model!r}"
        if syncnet_model not in model_choices():
            return f"{syncnet_model!r} is neither in models/syncnet nor in the pack's model manifest"
        return True

    @classmethod
    def execute(cls, video, syncnet_model: str, audio: dict | None = None, vshift: int = 15, detect_every: int = 5,
                batch_size: int = 20, on_error: str = "fail") -> io.NodeOutput:
        import comfy.model_management as mm

        settings = ScoreSettings(vshift=int(vshift), batch_size=int(batch_size), detect_every=int(detect_every))
        if on_error != "skip":
            return _scored(_score(video, syncnet_model, audio, settings), syncnet_model)
        try:
            return _scored(_score(video, syncnet_model, audio, settings), syncnet_model)
        except mm.InterruptProcessingException:
            raise
        except Exception as err:  # noqa: BLE001 - skip mode: any failure becomes the block's reason
            return _skipped(syncnet_model, err)


def _score(video, syncnet_model: str, audio: dict | None, settings: ScoreSettings):
    """``score_lipsync`` on the VIDEO's file (and the AUDIO, if given), with model management."""
    import comfy.model_management as mm
    import folder_paths

    model, patcher = load_model(syncnet_model)
    temp = TempFiles(Path(folder_paths.get_temp_directory()) / "myspinbot", "lipsync_score_in")
    try:
        path = video_to_file(video, temp)
        speech = audio_to_wav_file(audio, temp) if audio is not None else None
        mm.load_models_gpu([patcher], memory_required=settings.batch_size * BYTES_PER_WINDOW, force_full_load=True)
        bar = {}

        def progress(done: int, total: int) -> None:
            if "cb" not in bar:
                bar["cb"] = progress_callback(total)
            bar["cb"](done, total)  # also raises InterruptProcessingException when cancelled

        return score_lipsync(model, path, speech, settings, progress)
    finally:
        temp.cleanup()


def _scored(score, syncnet_model: str) -> io.NodeOutput:
    picture = plot_score(score.conf_per_second, score.dist_per_second, score.offset, score.lse_d, score.lse_c)
    curve = torch.from_numpy(picture).float().div_(255.0).unsqueeze(0)
    log.info("myspinbot lip sync score: %s", score.summary)
    return io.NodeOutput(int(score.offset), float(score.lse_d), float(score.lse_c), curve, score.summary,
                         ui={QUALITY_UI_KEY: [score.quality_block(syncnet_model)]})


def _skipped(syncnet_model: str, err: Exception) -> io.NodeOutput:
    """Skip mode's answer to ``err``: the reason in the block and the summary, nothing raised."""
    if isinstance(err, MySpinBotError):
        code, message = err.code, err.message
    else:
        code, message = "score_failed", f"{type(err).__name__}: {err}"
    log.warning("myspinbot lip sync score skipped: [%s] %s", code, message)
    blank = torch.ones(1, PLOT_HEIGHT, PLOT_WIDTH, 3)
    return io.NodeOutput(0, float("nan"), float("nan"), blank, f"not scored: [{code}] {message}",
                         ui={QUALITY_UI_KEY: [skipped_quality_block(syncnet_model, code, message)]})
