"""A LoRA training run made of ComfyUI core's own training pieces (``comfy_extras/nodes_train.py``,
core 0.33), with what core's ``TrainLoraNode`` lacks for a character trainer: a per-step
callback (loss, interrupt check, checkpoint every N steps) and an exact resume.

The run follows ``TrainLoraNode.execute`` step for step, calling core's functions rather
than copying them: ``_process_latents_standard_mode`` / ``_process_conditioning`` /
``_prepare_latents_and_count`` / ``_validate_and_expand_conditioning`` for the dataset,
``_setup_lora_adapters`` for the adapters (LoRA on every weight, ``BiasDiff`` on 1-D weights
and biases), ``_create_optimizer`` (AdamW) and ``_create_loss_function`` (MSE), core's
gradient checkpointing ``patch`` / ``unpatch``, ``TrainSampler`` + ``TrainGuider`` and
``_run_training_loop``. Differences, all additive:

* ``TrainSampler``'s ``loss_callback`` is ours: it reports the step and its loss, checks for
  an interrupt, and saves a checkpoint every ``save_every`` steps (the callback of step ``i``
  runs before that step's optimizer update, so the tensors then hold ``i`` steps).
* Resume: core's ``_setup_lora_adapters`` loads the ``lora_up`` / ``lora_down`` / ``alpha``
  tensors of an existing LoRA but starts the ``.diff`` / ``.diff_b`` (norm and bias) parts
  at zero; we copy them back too, and the noise seeds continue where the saved run stopped
  (core seeds step ``i`` with ``seed + 1000 * i``; a run resumed at step ``k`` starts from
  ``seed + 1000 * k``).

Everything runs in ``torch.inference_mode(False)`` on a deep copy of the model, as in core;
the returned tensors are detached. The optimizer's state (AdamW's moments and step count)
is handed to ``on_save`` with the tensors and given back on resume, so a resumed run updates
as the uninterrupted one would (its random draws differ: core reseeds per step but draws the
batch indices and noise levels from the global generator).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

import torch

log = logging.getLogger("myspinbot")

ALGORITHM = "LoRA"
OPTIMIZER = "AdamW"
LOSS = "MSE"


@dataclass(frozen=True)
class RunSettings:
    """One training run.

    Attributes:
        total_steps: the step count to reach (a resumed run trains ``total_steps - start_step``).
        start_step: steps already in ``existing`` (0 for a new LoRA).
        learning_rate, rank, batch_size, seed: as in core's ``TrainLoraNode``.
        save_every: checkpoint period in steps (0: only at the end).
        training_dtype: ``"fp32"`` or ``"bf16"`` (compute dtype of the model while training).
        lora_dtype: ``"fp32"`` or ``"bf16"`` (dtype of the trained tensors).
        gradient_checkpointing: core's checkpointing of the UNet's top-level blocks.
    """

    total_steps: int
    start_step: int = 0
    learning_rate: float = 5e-4
    rank: int = 8
    batch_size: int = 1
    seed: int = 0
    save_every: int = 0
    training_dtype: str = "bf16"
    lora_dtype: str = "bf16"
    gradient_checkpointing: bool = True


StepCallback = Callable[[int, int, float], None]
"""``on_step(step, total_steps, loss)``: ``step`` is 1-based and absolute (resume included)."""
SaveCallback = Callable[[int, dict, dict], None]
"""``on_save(steps_done, tensors, optimizer_state)``: detached CPU copies of the LoRA tensors and
of the optimizer's state (:func:`optimizer_tensors`) after ``steps_done`` steps."""


def _snapshot(lora_sd: dict[str, torch.Tensor], dtype: torch.dtype) -> dict[str, torch.Tensor]:
    return {k: v.detach().to(device="cpu", dtype=dtype).clone() for k, v in lora_sd.items()}


def optimizer_tensors(optimizer: torch.optim.Optimizer, lora_sd: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The optimizer's per-parameter state (AdamW: ``step``, ``exp_avg``, ``exp_avg_sq``) as
    ``{"<lora key>:<state name>": CPU tensor}``, keyed by the LoRA tensor names so that a later
    run can give each moment back to the same parameter."""
    out = {}
    for key, param in lora_sd.items():
        for name, value in optimizer.state.get(param, {}).items():
            if isinstance(value, torch.Tensor):
                out[f"{key}:{name}"] = value.detach().to("cpu").clone().contiguous()
    return out


def restore_optimizer(optimizer: torch.optim.Optimizer, lora_sd: dict[str, torch.Tensor],
                      saved: dict[str, torch.Tensor]) -> int:
    """Put :func:`optimizer_tensors` back into ``optimizer`` (same parameter set, any device);
    returns how many parameters got their state back. Entries for unknown keys are ignored."""
    by_key: dict[str, dict[str, torch.Tensor]] = {}
    for name, value in saved.items():
        key, _, state_name = name.rpartition(":")
        by_key.setdefault(key, {})[state_name] = value
    restored = 0
    for key, param in lora_sd.items():
        state = by_key.get(key)
        if not state:
            continue
        # clones: tensors read during ComfyUI's inference mode cannot be updated in place outside it
        optimizer.state[param] = {n: v.clone() if n == "step" else v.to(device=param.device, dtype=param.dtype).clone()
                                  for n, v in state.items()}
        restored += 1
    return restored


def train_lora(model, latents: list[dict], conditioning: list, settings: RunSettings,
               existing: dict[str, torch.Tensor] | None = None, existing_optimizer: dict[str, torch.Tensor] | None = None,
               *, on_step: StepCallback | None = None,
               on_save: SaveCallback | None = None) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor], list[float]]:
    """Train a LoRA for ``model`` on encoded images.

    Args:
        model: core ``ModelPatcher`` (MODEL), left untouched (a deep copy is trained).
        latents: ``[{"samples": [1, C, h, w]}, ...]`` as core's ``MakeTrainingDataset`` outputs,
            all the same size.
        conditioning: one conditioning list per latent (or one for all).
        settings: see :class:`RunSettings`.
        existing: tensors of the LoRA to continue (``start_step`` > 0).
        existing_optimizer: the optimizer state saved with them (:func:`optimizer_tensors`), if any.
        on_step: called after each step's loss (may raise to stop: ComfyUI's interrupt).
        on_save: called every ``save_every`` steps (not at the end: the caller saves the result).

    Returns:
        (the LoRA's tensors, detached on the CPU in ``lora_dtype``; the optimizer state; the
        losses of this run's steps).
    """
    import comfy.model_management as mm
    import comfy_extras.nodes_train as core
    import node_helpers

    existing = dict(existing or {})
    remaining = int(settings.total_steps) - int(settings.start_step)
    losses: list[float] = []
    with torch.inference_mode(False):
        mp = model.clone(force_deepcopy=True)
        lora_dtype = node_helpers.string_to_torch_dtype(settings.lora_dtype)
        dtype = node_helpers.string_to_torch_dtype(settings.training_dtype)
        mp.set_model_compute_dtype(dtype)
        data = core._process_latents_standard_mode(latents)
        positive = core._process_conditioning(conditioning)
        data, num_images, multi_res = core._prepare_latents_and_count(data, dtype, False)
        positive = core._validate_and_expand_conditioning(positive, num_images, False)
        mp.model.requires_grad_(False).train()

        lora_sd, adapters = core._setup_lora_adapters(mp, existing, ALGORITHM, lora_dtype, int(settings.rank))
        with torch.no_grad():
            for key, param in lora_sd.items():
                if key.endswith((".diff", ".diff_b")) and key in existing:
                    param.copy_(existing[key].to(param))
        optimizer = core._create_optimizer(OPTIMIZER, lora_sd.values(), float(settings.learning_rate))
        if existing_optimizer:
            log.info("myspinbot LoRA: optimizer state restored for %d tensors",
                     restore_optimizer(optimizer, lora_sd, existing_optimizer))
        criterion = core._create_loss_function(LOSS)
        if settings.gradient_checkpointing:
            for module in core.find_modules_at_depth(mp.model.diffusion_model, depth=1):
                core.patch(module)
        mm.load_models_gpu([mp], memory_required=1e20, force_full_load=True)

        def loss_callback(loss: float) -> None:
            done = settings.start_step + len(losses)  # steps whose update is in the tensors
            if on_save is not None and settings.save_every and len(losses) and done % settings.save_every == 0:
                on_save(done, _snapshot(lora_sd, lora_dtype), optimizer_tensors(optimizer, lora_sd))
            losses.append(float(loss))
            if on_step is not None:
                on_step(done + 1, int(settings.total_steps), float(loss))

        seed = int(settings.seed) + 1000 * int(settings.start_step)
        sampler = core.TrainSampler(criterion, optimizer, loss_callback=loss_callback,
                                    batch_size=int(settings.batch_size), grad_acc=1, total_steps=remaining,
                                    seed=seed, training_dtype=dtype,
                                    real_dataset=data if multi_res else None)
        guider = core.TrainGuider(mp)
        guider.set_conds(positive)
        try:
            mm.in_training = True
            core._run_training_loop(guider, sampler, data, num_images, seed, False, multi_res)
        finally:
            mm.in_training = False
            for module in mp.model.modules():
                core.unpatch(module)
        result, state = _snapshot(lora_sd, lora_dtype), optimizer_tensors(optimizer, lora_sd)
        del sampler, optimizer, adapters, guider, mp
    return result, state, losses
