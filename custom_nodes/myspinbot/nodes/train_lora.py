"""Node "MySpinBot Train Character LoRA": photos of one character + a trigger word -> a LoRA
in ``models/loras/myspinbot/`` that core's ``LoraLoader`` applies.

Photos (an IMAGE batch and/or a folder under ComfyUI's ``input/``) go through the pack's
dataset preparation (``training.prepare_dataset``: face-centred square crops at the training
resolution, near-duplicates and photos without a face dropped and reported, optional flips),
are captioned with the trigger word (``training.captions_for``), encoded by core's
``MakeTrainingDataset`` (VAE latents, CLIP conditioning) and trained with core's LoRA
training code (``_lora_trainer.train_lora``). The file is saved every ``save_every`` steps and
at the end, with metadata (base model hash, trigger word, steps, rank, dataset size, ...);
choosing it as ``resume_from`` continues from its saved step count to ``steps``. The ``faces``
output is the dataset's unmirrored crops, largest face first (the ``train_profile`` pipeline
saves them: the first is a character profile's reference photo).
"""

from __future__ import annotations

import itertools
import logging
from pathlib import Path

import numpy as np
import torch

from comfy_api.latest import io, ui

from ..errors import InvalidInputError, MySpinBotError
from ..training import DatasetSettings, captions_for, check_trigger, prepare_dataset
from ..training.lora_file import (LoraMeta, load_lora, load_optimizer_state, lora_rank, optimizer_path, safe_name,
                                  save_lora, save_optimizer_state, state_sha256)
from ._convert import image_to_uint8
from ._lora_trainer import RunSettings, train_lora
from ._photos import iter_photos, list_folder_photos
from ._progress import progress_text

log = logging.getLogger("myspinbot")

SUBFOLDER = "myspinbot"
NO_RESUME = "[None]"


def resume_choices() -> list[str]:
    """The ``resume_from`` dropdown: ``[None]`` and the LoRAs under ``models/loras/myspinbot/``."""
    import folder_paths

    return [NO_RESUME] + [n for n in folder_paths.get_filename_list("loras")
                          if n.replace("\\", "/").startswith(SUBFOLDER + "/") and n.endswith(".safetensors")]


def lora_path(name: str) -> tuple[Path, str]:
    """(absolute path in the first ``models/loras`` folder, the name ``LoraLoader`` lists) of a LoRA name."""
    import folder_paths

    stem = safe_name(name)
    root = Path(folder_paths.get_folder_paths("loras")[0])
    return root / SUBFOLDER / f"{stem}.safetensors", f"{SUBFOLDER}/{stem}.safetensors"


def _interruptible(photos):
    """The photos, with ComfyUI's interrupt checked before each (face search takes a while per photo)."""
    import comfy.model_management as mm

    for photo in photos:
        mm.throw_exception_if_processing_interrupted()
        yield photo


class TrainCharacterLora(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="MySpinBotTrainCharacterLora",
            display_name="MySpinBot Train Character LoRA",
            category="MySpinBot/training",
            description="Trains a LoRA of one character from 10-20 photos with ComfyUI core's LoRA training: the face "
            "in each photo is cropped square with a margin and resized to the training resolution; photos without "
            "a face and near-duplicates are dropped (listed in 'report'). Captions carry the trigger word. The LoRA "
            "is saved to models/loras/myspinbot/<lora_name>.safetensors every 'save_every' steps and at the end; "
            "pick it as 'resume_from' to continue an interrupted run. Load it with core's Load LoRA.",
            is_output_node=True,
            inputs=[
                io.Model.Input("model", tooltip="Base model from core's Load Checkpoint (SD1.5 or SDXL)."),
                io.Clip.Input("clip", tooltip="Its text encoder (encodes the captions)."),
                io.Vae.Input("vae", tooltip="Its VAE (encodes the photos)."),
                io.String.Input("trigger_word", default="zxq person",
                                tooltip="The word that will call up the character in prompts."),
                io.String.Input("lora_name", default="character",
                                tooltip="File name under models/loras/myspinbot/ (without .safetensors)."),
                io.Image.Input("images", optional=True, tooltip="Photos of the character (a batch)."),
                io.String.Input("folder", default="", optional=True,
                                tooltip="And/or a folder under ComfyUI's input/ with the photos (png, jpg, webp)."),
                io.String.Input("captions", default="", multiline=True, optional=True,
                                tooltip="Empty: 'a photo of {trigger}'. One line: a template for every photo. "
                                "One line per photo (batch first, then the folder in name order). {trigger} "
                                "is replaced; a caption without the trigger word gets it prepended."),
                io.Int.Input("steps", default=500, min=1, max=100000, tooltip="Total optimizer steps."),
                io.Float.Input("learning_rate", default=0.0005, min=0.0000001, max=1.0, step=0.0000001),
                io.Int.Input("rank", default=16, min=1, max=128, tooltip="LoRA rank."),
                io.Int.Input("batch_size", default=1, min=1, max=64),
                io.Int.Input("resolution", default=512, min=64, max=2048, step=8,
                             tooltip="Side of the square training crops, px (SD1.5: 512, SDXL: 1024)."),
                io.Int.Input("seed", default=0, min=0, max=0xFFFFFFFFFFFFFFFF),
                io.Boolean.Input("flip", default=True, tooltip="Add a mirrored copy of every photo."),
                io.Float.Input("margin", default=0.6, min=0.0, max=3.0, step=0.05,
                               tooltip="Space around the face on each side, as a fraction of the face's size."),
                io.Int.Input("save_every", default=100, min=0, max=100000,
                             tooltip="Save the LoRA every this many steps (0: only at the end)."),
                io.Combo.Input("resume_from", options=resume_choices(), default=NO_RESUME,
                               tooltip="A LoRA saved by this node: training continues from its step count."),
                io.Combo.Input("training_dtype", options=["bf16", "fp32"], default="bf16",
                               tooltip="Compute dtype while training (fp32 on CPUs without fast bf16)."),
                io.Boolean.Input("gradient_checkpointing", default=True, advanced=True,
                                 tooltip="Recompute the UNet blocks' activations in the backward pass: less "
                                 "memory, about a third more time per step."),
            ],
            outputs=[
                io.String.Output("lora_name", tooltip="The LoRA as core's Load LoRA lists it (myspinbot/<name>.safetensors)."),
                io.Int.Output("steps", tooltip="Steps the saved LoRA has been trained for."),
                io.Custom("LOSS_MAP").Output("loss", tooltip="This run's losses, for core's Plot Loss Graph."),
                io.String.Output("report", tooltip="Which photos were used and why the others were not."),
                io.Image.Output("faces", tooltip="The dataset's face crops (no mirrored copies), the largest face "
                                "first: the first is the character's reference photo."),
            ],
            hidden=[io.Hidden.unique_id],
        )

    @classmethod
    def execute(cls, model, clip, vae, trigger_word: str, lora_name: str, images=None, folder: str = "",
                captions: str = "", steps: int = 500, learning_rate: float = 5e-4, rank: int = 16,
                batch_size: int = 1, resolution: int = 512, seed: int = 0, flip: bool = True, margin: float = 0.6,
                save_every: int = 100, resume_from: str = NO_RESUME, training_dtype: str = "bf16",
                gradient_checkpointing: bool = True) -> io.NodeOutput:
        import comfy.model_management as mm
        import folder_paths
        from comfy_extras.nodes_dataset import MakeTrainingDataset

        node_id = cls.hidden.unique_id if cls.hidden is not None else None
        trigger = check_trigger(trigger_word)
        target, listed_name = lora_path(lora_name)
        existing, existing_optimizer, start, meta_before = {}, None, 0, None
        resuming = bool(resume_from) and resume_from != NO_RESUME
        resume_path = Path(folder_paths.get_full_path_or_raise("loras", resume_from)) if resuming else None
        if target.exists() and (resume_path is None or resume_path.resolve() != target.resolve()):
            raise InvalidInputError(f"{listed_name} exists: choose another lora_name, or pick it as resume_from "
                                    "to continue its training")
        base_hash = state_sha256(model.model.diffusion_model.state_dict().items())
        if resume_path is not None:
            existing, meta_before = load_lora(resume_path)
            start = meta_before.steps
            existing_optimizer = load_optimizer_state(optimizer_path(resume_path), start)
            if meta_before.base_model_sha256 != base_hash:
                raise InvalidInputError(f"resume_from was trained on another base model (sha256 "
                                        f"{meta_before.base_model_sha256[:12]}..., this one {base_hash[:12]}...)")
            if lora_rank(existing) not in (None, int(rank)):
                raise InvalidInputError(f"resume_from has rank {lora_rank(existing)}, not {rank}: set rank to match")
            if meta_before.trigger_word != trigger:
                raise InvalidInputError(f"resume_from was trained with the trigger word '{meta_before.trigger_word}'")

        count = int(images.shape[0]) if images is not None else 0
        names = [f"image {i + 1}" for i in range(count)]
        files = list_folder_photos(folder_paths.get_input_directory(), folder.strip()) if (folder or "").strip() else []
        names += [f.name for f in files]
        if not names:
            raise InvalidInputError("connect images or name a folder under input/ with photos of the character")
        photos = _interruptible(itertools.chain((image_to_uint8(images, i) for i in range(count)), iter_photos(files)))
        prepared = prepare_dataset(photos, names, DatasetSettings(resolution=int(resolution), margin=float(margin),
                                                                  flip=bool(flip)))
        report = prepared.report()
        log.info("myspinbot LoRA dataset: %s", report.replace("\n", "; "))
        if not prepared.images:
            raise InvalidInputError("no photo is usable for training:\n" + report,
                                    details={"dropped": [d.__dict__ for d in prepared.dropped]})
        texts = captions_for(len(names), prepared.sources, trigger, captions or "")

        def meta(done: int) -> LoraMeta:
            return LoraMeta(trigger_word=trigger, steps=done, target_steps=int(steps), rank=int(rank),
                            dataset_size=len(prepared.images), base_model=type(model.model.model_config).__name__,
                            base_model_sha256=base_hash, resolution=int(resolution),
                            learning_rate=float(learning_rate), seed=int(seed), batch_size=int(batch_size),
                            captions=tuple(dict.fromkeys(texts)))

        if start >= int(steps):
            if existing:
                save_lora(target, existing, meta(start))
            text = report + f"\nalready trained for {start} steps"
            return io.NodeOutput(listed_name, start, {"loss": []}, text, face_batch(prepared), ui=ui.PreviewText(text))

        mm.throw_exception_if_processing_interrupted()
        batch = [torch.from_numpy(np.asarray(img, dtype=np.float32) / 255.0)[None] for img in prepared.images]
        unique = list(dict.fromkeys(texts))  # one caption for all: core encodes it once and repeats it
        latents, conditioning = MakeTrainingDataset.execute(images=batch, vae=[vae], clip=[clip],
                                                            texts=unique if len(unique) == 1 else texts).args

        def on_step(step: int, total: int, loss: float) -> None:
            mm.throw_exception_if_processing_interrupted()
            progress_text(node_id, f"step {step}/{total}  loss {loss:.4f}")
            log.info("myspinbot LoRA %s: step %d/%d loss %.5f", listed_name, step, total, loss)

        def on_save(done: int, tensors: dict, optimizer_state: dict) -> None:
            save_optimizer_state(optimizer_path(target), optimizer_state, done)
            save_lora(target, tensors, meta(done))
            log.info("myspinbot LoRA %s: saved at step %d", listed_name, done)

        settings = RunSettings(total_steps=int(steps), start_step=start, learning_rate=float(learning_rate),
                               rank=int(rank), batch_size=int(batch_size), seed=int(seed),
                               save_every=int(save_every), training_dtype=training_dtype, lora_dtype="fp32",
                               gradient_checkpointing=bool(gradient_checkpointing))
        tensors, optimizer_state, losses = train_lora(model, latents, conditioning, settings, existing,
                                                      existing_optimizer, on_step=on_step, on_save=on_save)
        if not all(np.isfinite(losses)):
            raise MySpinBotError(f"training diverged (loss {losses[-1]}): lower the learning rate",
                                 code="training_diverged")
        on_save(int(steps), tensors, optimizer_state)
        text = report + f"\ntrained steps {start + 1}-{steps}, last loss {losses[-1]:.4f}; saved {listed_name}"
        return io.NodeOutput(listed_name, int(steps), {"loss": losses}, text, face_batch(prepared),
                             ui=ui.PreviewText(text))


def face_batch(prepared) -> torch.Tensor:
    """The dataset's unmirrored crops as an IMAGE batch ``[N, R, R, 3]`` float32 0..1, ordered by the
    size of their crop box in the source photo, largest first (the most detailed face leads)."""
    order = [i for i, flipped in enumerate(prepared.flipped) if not flipped]
    side = {src: box[2] - box[0] for src, box in prepared.boxes.items()}
    order.sort(key=lambda i: -side.get(prepared.sources[i], 0))
    return torch.stack([torch.from_numpy(np.asarray(prepared.images[i], dtype=np.float32) / 255.0) for i in order])
