"""Fine-tuning F5-TTS on one voice with the ``f5-tts`` package's own ``Trainer``.

Upstream: ``f5_tts/model/trainer.py`` (``Trainer``: Accelerate, AdamW, linear warm-up then
linear decay, EMA via ``ema_pytorch``, ``DynamicBatchSampler`` batches of at most N mel frames,
``model_last.pt`` checkpoints and their resume) and ``f5_tts/train/finetune_cli.py`` (a
fine-tune starts from the released EMA weights placed as ``pretrained_*.safetensors`` in the
checkpoint folder). The CLI itself is not used: it hard-codes full-size configs, downloads from
the hub and writes under site-packages. Here everything goes to ``work_dir``:

* ``work_dir/pretrained_base.safetensors``: the base checkpoint (a link where possible), which
  the Trainer loads when there is nothing to resume;
* ``work_dir/model_last.pt``: the Trainer's own full training state (weights, EMA, optimizer,
  scheduler, update count), written every ``save_every`` updates and at the end; resume = the
  Trainer finds it and continues from its update count. For F5TTS_v1_Base it is about 5 GB.

What we add around the Trainer, without changing it: a forward hook on the model that reports
``(step, loss)`` and calls ``check_interrupt`` every update (raising stops training), a stop
after exactly ``steps`` updates (the Trainer counts epochs), and at each save an inference
checkpoint at ``output_path`` in the released layout (``ema_model.<key>`` safetensors plus
``initted``/``step``) that ``load_f5`` loads unchanged, with metadata (base model, steps,
clips, seconds, ...). ``weights="online"`` exports the trained weights, ``"ema"`` the EMA:
the EMA of a fine-tune inherits the base's 1.25 M-step decay (0.9999) and moves away from
the base only over tens of thousands of updates, so a short voice fine-tune exports the
online weights (upstream treats both as valid and leaves the choice to listening).
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

from ...errors import InvalidInputError, MySpinBotError, SpeechEngineError
from .finetune_data import FineTuneData, open_finetune_data
from .finetune_files import export_checkpoint, place_base, read_metadata  # noqa: F401 (read_metadata: re-exported)
from .loader import SAMPLE_RATE, resolve_model_config

LAST = "model_last.pt"
WEIGHTS = ("online", "ema")


@dataclass(frozen=True)
class FineTuneSettings:
    """One fine-tuning run.

    Attributes:
        steps: the update count to reach (a resumed run trains the remainder).
        learning_rate: AdamW's peak rate (the package's fine-tune default is 1e-5).
        batch_frames: mel frames per batch (the Trainer's ``batch_size_type="frame"``; 3200
            frames = 34 s of audio; lower it when the GPU runs out of memory).
        max_samples: at most this many clips per batch.
        seed: shuffling seed (``resumable_with_seed``) and noise seed.
        save_every: save the training state and the output every this many updates (0: only
            at the end).
        warmup_steps: linear warm-up length (``None``: a tenth of ``steps``, at most 300).
        max_grad_norm: gradient clipping.
        mixed_precision: Accelerate's ``"no"``, ``"fp16"`` or ``"bf16"``.
        weights: ``"online"`` or ``"ema"``: which weights the output holds (see module doc).
        num_workers: DataLoader workers (the Trainer uses persistent workers, so at least 1).
    """

    steps: int
    learning_rate: float = 1e-5
    batch_frames: int = 3200
    max_samples: int = 64
    seed: int = 0
    save_every: int = 0
    warmup_steps: int | None = None
    max_grad_norm: float = 1.0
    mixed_precision: str = "no"
    weights: str = "online"
    num_workers: int = 1

    def check(self) -> None:
        """Raises InvalidInputError for a setting out of range."""
        problems = []
        if int(self.steps) < 1:
            problems.append("steps must be at least 1")
        if not 0 < float(self.learning_rate) < 1:
            problems.append("learning_rate must be between 0 and 1")
        if int(self.batch_frames) < 1 or int(self.max_samples) < 1:
            problems.append("batch_frames and max_samples must be positive")
        if int(self.save_every) < 0:
            problems.append("save_every must be 0 or more")
        if self.mixed_precision not in ("no", "fp16", "bf16"):
            problems.append("mixed_precision must be 'no', 'fp16' or 'bf16'")
        if self.weights not in WEIGHTS:
            problems.append("weights must be 'online' or 'ema'")
        if int(self.num_workers) < 1:
            problems.append("num_workers must be at least 1 (the package's DataLoader keeps its workers)")
        if problems:
            raise InvalidInputError("; ".join(problems))

    def warmup(self) -> int:
        return max(1, int(self.warmup_steps) if self.warmup_steps is not None else min(300, int(self.steps) // 10))


@dataclass(frozen=True)
class FineTuneResult:
    """``path``: the output checkpoint; ``start_step``: updates already done when this run began;
    ``steps``: updates in the output; ``losses``: this run's losses, one per update."""

    path: Path
    start_step: int
    steps: int
    losses: tuple[float, ...]


StepCallback = Callable[[int, int, float], None]
"""``on_step(step, total_steps, loss)``: ``step`` is 1-based and absolute (resume included)."""


class _Stop(Exception):
    """Raised by our hook once ``steps`` updates are done (the Trainer counts epochs)."""


def build_model(model_cfg: str | Mapping | None, vocab_path: str | os.PathLike):
    """A fresh ``CFM`` for ``model_cfg`` (see ``loader``) with the vocab's text embedding, as
    the package's ``train.py`` builds it (mel settings of F5TTS v1, Vocos)."""
    import f5_tts.model as f5_model  # noqa: PLC0415
    from f5_tts.model.utils import get_tokenizer  # noqa: PLC0415

    name, backbone, arch, mel_spec = resolve_model_config(model_cfg)
    vocab_map, vocab_size = get_tokenizer(str(vocab_path), "custom")
    mel = dict(n_fft=1024, hop_length=256, win_length=1024, n_mel_channels=100, target_sample_rate=SAMPLE_RATE,
               mel_spec_type="vocos")
    for key in mel:
        if key in mel_spec and mel_spec[key] != mel[key]:
            raise InvalidInputError(f"model config asks for mel {key}={mel_spec[key]}; fine-tuning supports {mel[key]}")
    model_cls = getattr(f5_model, backbone, None)
    if model_cls is None:
        raise InvalidInputError(f"f5-tts has no backbone named '{backbone}'")
    transformer = model_cls(**arch, text_num_embeds=vocab_size, mel_dim=mel["n_mel_channels"])
    return f5_model.CFM(transformer=transformer, mel_spec_kwargs=mel, vocab_char_map=vocab_map)


def _batches_per_epoch(dataset, settings: FineTuneSettings) -> int:
    from torch.utils.data import SequentialSampler  # noqa: PLC0415
    from f5_tts.model.dataset import DynamicBatchSampler  # noqa: PLC0415

    sampler = DynamicBatchSampler(SequentialSampler(dataset), int(settings.batch_frames),
                                  max_samples=int(settings.max_samples), random_seed=int(settings.seed),
                                  drop_residual=False)
    if len(sampler) == 0:
        raise InvalidInputError(f"every clip is longer than batch_frames={settings.batch_frames} mel frames "
                                f"({settings.batch_frames * 256 / SAMPLE_RATE:.1f} s): raise batch_frames")
    return len(sampler)


def _reset_accelerate() -> None:
    """Accelerate keeps process-wide state; clear it so the next run may use other settings."""
    try:
        from accelerate.state import AcceleratorState, GradientState  # noqa: PLC0415

        AcceleratorState._reset_state(True)
        GradientState._reset_state()
    except (ImportError, AttributeError):
        pass


def fine_tune(data: FineTuneData, base_checkpoint: str | os.PathLike, vocab_path: str | os.PathLike,
              output_path: str | os.PathLike, work_dir: str | os.PathLike, settings: FineTuneSettings, *,
              model_cfg: str | Mapping | None = None, base_name: str = "", device: str = "cpu", resume: bool = True,
              on_step: StepCallback | None = None,
              check_interrupt: Callable[[], None] | None = None) -> FineTuneResult:
    """Fine-tune ``base_checkpoint`` on a prepared dataset with the package's ``Trainer``.

    Args:
        data: from ``finetune_data.prepare_finetune_data``.
        base_checkpoint: the released EMA checkpoint (``.safetensors``, or a ``.pt`` holding
            ``ema_model_state_dict``).
        vocab_path: its ``vocab.txt`` (the dataset's tokens were checked against it).
        output_path: the inference checkpoint to write (``.safetensors``).
        work_dir: the Trainer's checkpoint folder (training state for resume).
        settings: see ``FineTuneSettings``.
        model_cfg: the base's architecture (see ``loader``; default F5TTS_v1_Base).
        base_name: recorded in the output's metadata.
        device: ``"cpu"`` trains on the CPU; anything else lets Accelerate use the GPU.
        resume: continue from ``work_dir/model_last.pt`` when present (else start from the base).
        on_step: called after each update's forward pass with its loss (may raise to stop).
        check_interrupt: called before each update (may raise to stop: ComfyUI's interrupt).

    Returns:
        FineTuneResult. When the saved state already holds ``steps`` updates, nothing is
        trained and the output is (re)written from it.

    Raises:
        InvalidInputError: bad settings, or clips longer than ``batch_frames``.
        ModelsMissingError: the base checkpoint or vocab is absent.
        MySpinBotError (``training_diverged``): a non-finite loss.
        SpeechEngineError: the Trainer failed (out of memory, a checkpoint that does not fit).
        Whatever ``on_step`` / ``check_interrupt`` raise (the state of the last save is kept).
    """
    import torch  # noqa: PLC0415

    from .loader import _require_files  # noqa: PLC0415

    settings.check()
    base, out, work = Path(base_checkpoint), Path(output_path), Path(work_dir)
    _require_files({"base checkpoint": base, "vocab": Path(vocab_path)})
    work.mkdir(parents=True, exist_ok=True)
    if not resume:
        for old in work.glob("model_*.pt"):
            old.unlink()
    dataset = open_finetune_data(data.directory)
    total = int(settings.steps)
    per_epoch = _batches_per_epoch(dataset, settings)
    # The Trainer's schedule decays over epochs * batches updates after the warm-up: leave it at least one.
    epochs = math.ceil(max(total, settings.warmup() + 1) / per_epoch)
    place_base(base, work)
    metadata = {"format": "myspinbot-f5-finetune", "base_model": base_name or base.stem, "clips": str(data.clips),
                "seconds": f"{data.seconds:.2f}", "learning_rate": repr(float(settings.learning_rate)),
                "seed": str(int(settings.seed)), "weights": settings.weights,
                "batch_frames": str(int(settings.batch_frames))}
    never = 10 ** 12
    losses: list[float] = []
    run = {"start": 0, "saved": -1}
    devices = [torch.cuda.current_device()] if device != "cpu" and torch.cuda.is_available() else []
    try:
        with torch.inference_mode(False), torch.enable_grad(), torch.random.fork_rng(devices=devices):
            torch.manual_seed(int(settings.seed))
            from f5_tts.model.trainer import Trainer  # noqa: PLC0415

            model = build_model(model_cfg, vocab_path)
            trainer = Trainer(model, epochs, float(settings.learning_rate), num_warmup_updates=settings.warmup(),
                              save_per_updates=never, last_per_updates=int(settings.save_every) or never,
                              keep_last_n_checkpoints=0, checkpoint_path=str(work),
                              batch_size_per_gpu=int(settings.batch_frames), batch_size_type="frame",
                              max_samples=int(settings.max_samples), max_grad_norm=float(settings.max_grad_norm),
                              logger=None, mel_spec_type="vocos",
                              accelerate_kwargs={"cpu": device == "cpu", "mixed_precision": settings.mixed_precision})
            package_load, package_save = trainer.load_checkpoint, trainer.save_checkpoint

            def load_checkpoint() -> int:
                run["start"] = int(package_load())
                if run["start"] >= total:
                    raise _Stop
                return run["start"]

            def save_checkpoint(update, last=False) -> None:
                if last and run["saved"] == int(update):
                    return  # the Trainer's end-of-training save of a state just saved
                package_save(update, last=last)
                if last:
                    export_checkpoint(trainer, out, int(update), settings.weights, metadata)
                    run["saved"] = int(update)

            trainer.load_checkpoint, trainer.save_checkpoint = load_checkpoint, save_checkpoint

            def before(_module, _args, _kwargs=None):
                if run["start"] + len(losses) >= total:
                    raise _Stop
                if check_interrupt is not None:
                    check_interrupt()

            def after(_module, _args, output):
                loss = float(output[0].detach())
                if not math.isfinite(loss):
                    raise MySpinBotError(f"training diverged (loss {loss}): lower the learning rate",
                                         code="training_diverged")
                losses.append(loss)
                if on_step is not None:
                    on_step(run["start"] + len(losses), total, loss)

            hooks = [model.register_forward_pre_hook(before), model.register_forward_hook(after)]
            try:
                trainer.train(dataset, num_workers=int(settings.num_workers), resumable_with_seed=int(settings.seed))
            except _Stop:
                done = run["start"] + len(losses)
                if not losses:  # the saved state already holds the steps: export it
                    export_checkpoint(trainer, out, done, settings.weights, metadata)
                elif run["saved"] != done:
                    save_checkpoint(done, last=True)
            finally:
                for hook in hooks:
                    hook.remove()
    except (MySpinBotError, _Stop):
        raise
    except (RuntimeError, ValueError, KeyError, OSError) as exc:
        raise SpeechEngineError(f"F5-TTS fine-tuning failed: {exc}", details={"work_dir": str(work)}) from exc
    finally:
        _reset_accelerate()
    return FineTuneResult(out, run["start"], run["start"] + len(losses), tuple(losses))
